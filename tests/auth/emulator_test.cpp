// Credentials providers against the org emulator's SOAP login and OAuth token endpoint, which
// are written from Salesforce's documented behaviour, independently of the client.
#include <doctest/doctest.h>

#include <ostream>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "emulator/emulator.hpp"
#include "flow_support.hpp"

using namespace auth_flow;
using namespace sfstream;

namespace {

struct emulator_fixture {
  explicit emulator_fixture(emulator::emulator_options options = {})
      : org(io.get_executor(), std::move(options)) {}
  ~emulator_fixture() { org.stop(); }

  network_options network() const {
    network_options n;
    n.ca_file = org.ca_file();
    n.proxy_from_environment = false;
    n.request_timeout = std::chrono::seconds(10);
    return n;
  }

  token_outcome get(credentials_provider& provider, bool force = false) {
    auto out = std::make_shared<token_outcome>();
    provider.async_token(force, [out](error_info e, access_token t) {
      out->error = std::move(e);
      out->token = std::move(t);
      ++out->calls;
    });
    REQUIRE(run_until(io, [&] { return out->calls > 0; }));
    return *out;
  }

  boost::asio::io_context io;
  emulator::org_emulator org;
};

}  // namespace

TEST_CASE("SOAP login with password and security token succeeds against the emulator") {
  emulator_fixture fx;
  const auto& user = fx.org.options().users.at(0);
  soap_login_options options{
      fx.org.login_url(), user.username, user.password, user.security_token, "64.0", false, false};
  auto provider = make_soap_login_provider(fx.io.get_executor(), options, fx.network());
  const token_outcome got = fx.get(*provider);
  REQUIRE_MESSAGE(!got.error, got.error.to_string());
  CHECK_FALSE(got.token.token.empty());
  CHECK(got.token.instance_url == fx.org.base_url());
  CHECK(got.token.user_id == user.user_id);
  CHECK(got.token.organization_id == fx.org.options().org_id);
}

TEST_CASE("SOAP login faults from the emulator map to their errors") {
  emulator_fixture fx;
  const auto& user = fx.org.options().users.at(0);
  soap_login_options wrong{
      fx.org.login_url(), user.username, "wrong", user.security_token, "64.0", false, false};
  CHECK(fx.get(*make_soap_login_provider(fx.io.get_executor(), wrong, fx.network())).error.code ==
        errc::auth_invalid_login);
  soap_login_options no_token{
      fx.org.login_url(), user.username, user.password, "", "64.0", false, false};
  CHECK(
      fx.get(*make_soap_login_provider(fx.io.get_executor(), no_token, fx.network())).error.code ==
      errc::auth_must_use_security_token);
}

TEST_CASE("OAuth password and client-credentials grants succeed against the emulator") {
  emulator_fixture fx;
  const auto& user = fx.org.options().users.at(0);
  const auto& client = fx.org.options().oauth_clients.at(0);
  oauth_password_options password;
  password.endpoint = {fx.org.login_url(), false, client.client_id, client.client_secret};
  password.username = user.username;
  password.password = user.password;
  password.security_token = user.security_token;
  const token_outcome got =
      fx.get(*make_oauth_password_provider(fx.io.get_executor(), password, fx.network()));
  REQUIRE_MESSAGE(!got.error, got.error.to_string());
  CHECK(got.token.instance_url == fx.org.base_url());
  CHECK(got.token.user_id == user.user_id);

  password.endpoint.client_secret = "wrong";
  const token_outcome bad =
      fx.get(*make_oauth_password_provider(fx.io.get_executor(), password, fx.network()));
  CHECK(bad.error.code == errc::auth_oauth_error);
  CHECK(bad.error.diag.server_code == "invalid_client");

  oauth_client_credentials_options cc;
  cc.endpoint = {fx.org.login_url(), false, client.client_id, client.client_secret};
  const token_outcome cc_got =
      fx.get(*make_oauth_client_credentials_provider(fx.io.get_executor(), cc, fx.network()));
  CHECK_MESSAGE(!cc_got.error, cc_got.error.to_string());
}

TEST_CASE("the OAuth JWT bearer grant succeeds against the emulator with the matching public key") {
  EVP_PKEY* key = EVP_RSA_gen(2048);
  REQUIRE(key);
  auto pem = [&](bool priv) {
    BIO* bio = BIO_new(BIO_s_mem());
    if (priv) {
      PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
    } else {
      PEM_write_bio_PUBKEY(bio, key);
    }
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    std::string text(data, static_cast<std::size_t>(n));
    BIO_free(bio);
    return text;
  };
  const std::string private_pem = pem(true);
  emulator::emulator_options options;
  options.oauth_clients = {{"jwt-client", "jwt-secret", pem(false)}};
  EVP_PKEY_free(key);
  emulator_fixture fx(options);

  oauth_jwt_options jwt;
  jwt.endpoint = {fx.org.login_url(), false, "jwt-client", ""};
  jwt.username = fx.org.options().users.at(0).username;
  jwt.private_key_pem = private_pem;
  const token_outcome got =
      fx.get(*make_oauth_jwt_provider(fx.io.get_executor(), jwt, fx.network()));
  REQUIRE_MESSAGE(!got.error, got.error.to_string());
  CHECK(got.token.instance_url == fx.org.base_url());
}
