#include "serve/connection_credentials.hpp"

namespace sfstream::serve {

std::shared_ptr<credentials_provider> make_credentials(boost::asio::any_io_executor executor,
                                                       const auth_config& auth,
                                                       const network_options& network,
                                                       const logger& log) {
  oauth_endpoint endpoint;
  endpoint.login_url = auth.login_url;
  endpoint.sandbox = auth.sandbox;
  endpoint.client_id = auth.client_id;
  endpoint.client_secret = auth.client_secret;
  switch (auth.flow) {
    case auth_flow::soap: {
      soap_login_options o;
      o.login_url = auth.login_url;
      o.sandbox = auth.sandbox;
      o.username = auth.username;
      o.password = auth.password;
      o.security_token = auth.security_token;
      o.soap_version = auth.soap_version;
      o.enterprise_wsdl = auth.enterprise_wsdl;
      return make_soap_login_provider(std::move(executor), std::move(o), network, log);
    }
    case auth_flow::oauth_password: {
      oauth_password_options o;
      o.endpoint = std::move(endpoint);
      o.username = auth.username;
      o.password = auth.password;
      o.security_token = auth.security_token;
      return make_oauth_password_provider(std::move(executor), std::move(o), network, log);
    }
    case auth_flow::oauth_refresh_token: {
      oauth_refresh_token_options o;
      o.endpoint = std::move(endpoint);
      o.refresh_token = auth.refresh_token;
      return make_oauth_refresh_token_provider(std::move(executor), std::move(o), network, log);
    }
    case auth_flow::oauth_client_credentials: {
      oauth_client_credentials_options o;
      o.endpoint = std::move(endpoint);
      return make_oauth_client_credentials_provider(std::move(executor), std::move(o), network,
                                                    log);
    }
    case auth_flow::oauth_jwt: {
      oauth_jwt_options o;
      o.endpoint = std::move(endpoint);
      o.username = auth.username;
      o.private_key_pem = auth.private_key_pem;
      o.audience = auth.audience;
      return make_oauth_jwt_provider(std::move(executor), std::move(o), network, log);
    }
    case auth_flow::static_token: {
      access_token t;
      t.token = auth.access_token;
      t.instance_url = auth.instance_url;
      return make_static_token_provider(std::move(executor), std::move(t));
    }
  }
  return nullptr;
}

}  // namespace sfstream::serve
