// The credentials providers of include/sfstream/credentials.hpp: SOAP login, the OAuth 2.0
// grants, a static token and a user callback, over transport::async_http_request.
#include "sfstream/credentials.hpp"

#include <atomic>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>

#include "sfstream/detail/redact.hpp"
#include "soap_auth/login_request.hpp"
#include "soap_auth/login_response.hpp"
#include "src/auth/form.hpp"
#include "src/auth/jwt.hpp"
#include "src/auth/oauth_reply.hpp"
#include "src/transport/http_client.hpp"
#include "src/transport/options.hpp"

namespace sfstream {
namespace {

namespace asio = boost::asio;

error_info make_error(errc code, std::string context, std::string text = {}) {
  error_info info{make_error_code(code), {}};
  info.diag.context = std::move(context);
  info.diag.server_text = std::move(text);
  return info;
}

// The login host's origin ("https://host[:port]") from the configured URL, or an error.
error_info login_base_url(const std::string& configured, bool sandbox, std::string& base) {
  std::string text = configured.empty()
                         ? std::string(sandbox ? sandbox_login_url : production_login_url)
                         : configured;
  error_info why;
  auto parsed = transport::url::parse(text, &why);
  if (!parsed) {
    if (!why) why = make_error(errc::invalid_url, {});
    why.diag.context = "reading the login URL";
    return why;
  }
  base = parsed->origin();
  return {};
}

using http_handler = std::function<void(error_info, transport::http_response)>;

/// What every provider shares: the token cache, coalescing of concurrent requests, redaction of
/// its secrets, logging, and HTTP to the login host.
class provider_base : public credentials_provider,
                      public std::enable_shared_from_this<provider_base> {
 public:
  provider_base(asio::any_io_executor executor, network_options network, logger log,
                std::string description)
      : executor_(std::move(executor)),
        network_(std::move(network)),
        log_(std::move(log)),
        description_(std::move(description)) {
    if (network_.proxy) add_secret(network_.proxy->password);
  }

  void async_token(bool force_refresh, token_handler done) override {
    std::unique_lock lock(mutex_);
    if (cached_ && !force_refresh) {
      asio::post(executor_, [done = std::move(done), token = *cached_]() mutable {
        done({}, std::move(token));
      });
      return;
    }
    waiters_.push_back(std::move(done));
    if (fetching_) return;
    fetching_ = true;
    lock.unlock();
    log(log_level::info,
        (force_refresh ? "refreshing credentials: " : "getting credentials: ") + description_);
    auto self = shared_from_this();
    asio::post(executor_, [self, force_refresh] {
      self->fetch(force_refresh, [self](error_info error, access_token token) {
        self->complete(std::move(error), std::move(token));
      });
    });
  }

  std::string describe() const override { return description_; }

 protected:
  using fetch_handler = std::function<void(error_info, access_token)>;

  /// Gets a new token; calls `done` exactly once. `force_refresh`: the last token was refused.
  virtual void fetch(bool force_refresh, fetch_handler done) = 0;

  void add_secret(const std::string& secret) {
    if (secret.empty()) return;
    std::lock_guard lock(secrets_mutex_);
    secrets_.push_back(secret);
    std::string encoded = auth::encode_form_component(secret);
    if (encoded != secret) secrets_.push_back(std::move(encoded));
  }

  std::string redact(std::string_view text) const {
    std::lock_guard lock(secrets_mutex_);
    return detail::redact(text, secrets_);
  }

  void log(log_level level, std::string_view text) const {
    if (log_.enabled(level)) log_.log(level, redact(text));
  }

  /// POSTs to `url_text`; transport errors come back unchanged (apart from redaction).
  void http_post(const std::string& url_text, transport::http_request request, http_handler done) {
    error_info why;
    auto target = transport::url::parse(url_text, &why);
    if (!target) {
      if (!why) why = make_error(errc::invalid_url, "reading the login URL");
      return done(std::move(why), {});
    }
    transport::transport_options options = transport::make_transport_options(network_, &why);
    if (why) return done(std::move(why), {});
    if (!tls_ && target->is_https()) {
      tls_ = transport::make_client_tls_context(options, &why);
      if (!tls_) {
        if (!why) why = make_error(errc::tls_error, "creating the TLS context");
        return done(std::move(why), {});
      }
    }
    log(log_level::debug, request.method + " " + target->to_string());
    transport::async_http_request(executor_, tls_, options, *target, std::move(request),
                                  options.request_timeout, std::move(done));
  }

  const std::string& description() const noexcept { return description_; }

 private:
  void complete(error_info error, access_token token) {
    if (error) {
      error.diag.context = redact(error.diag.context);
      error.diag.server_code = redact(error.diag.server_code);
      error.diag.server_text = redact(error.diag.server_text);
      // The client reports it (a warning when it retries, the run's error when it cannot).
      log(log_level::debug, "login failed (" + description_ + "): " + error.to_string());
      token = {};
    } else {
      add_secret(token.token);
      log(log_level::info,
          "login succeeded: instance " + token.instance_url +
              (token.user_id.empty() ? std::string() : ", user " + token.user_id) +
              (token.organization_id.empty() ? std::string() : ", org " + token.organization_id));
    }
    std::vector<token_handler> waiters;
    {
      std::lock_guard lock(mutex_);
      if (!error) cached_ = token;
      waiters.swap(waiters_);
      fetching_ = false;
    }
    for (auto& waiter : waiters) {
      asio::post(executor_,
                 [waiter = std::move(waiter), error, token]() mutable { waiter(error, token); });
    }
  }

  asio::any_io_executor executor_;
  network_options network_;
  logger log_;
  std::string description_;
  std::shared_ptr<asio::ssl::context> tls_;

  std::mutex mutex_;
  std::optional<access_token> cached_;
  bool fetching_ = false;
  std::vector<token_handler> waiters_;

  mutable std::mutex secrets_mutex_;
  std::vector<std::string> secrets_;
};

// ---- SOAP login -----------------------------------------------------------------------------

class soap_login_provider final : public provider_base {
 public:
  soap_login_provider(asio::any_io_executor executor, soap_login_options options,
                      network_options network, logger log)
      : provider_base(std::move(executor), std::move(network), std::move(log),
                      describe_options(options)),
        options_(std::move(options)) {
    add_secret(options_.password);
    add_secret(options_.security_token);
    add_secret(options_.password + options_.security_token);
  }

 private:
  static std::string describe_options(const soap_login_options& o) {
    std::string base;
    if (login_base_url(o.login_url, o.sandbox, base)) base = "(invalid login URL)";
    return "SOAP login as " + o.username + " at " + base + " (API " + o.soap_version + ")";
  }

  void fetch(bool, fetch_handler done) override {
    std::string base;
    if (auto why = login_base_url(options_.login_url, options_.sandbox, base))
      return done(std::move(why), {});
    soap_auth::login_request login;
    if (auto why = soap_auth::build_login_request(
            options_.username, options_.password + options_.security_token, options_.soap_version,
            options_.enterprise_wsdl ? soap_auth::wsdl::enterprise : soap_auth::wsdl::partner,
            login)) {
      return done(std::move(why), {});
    }
    transport::http_request request;
    request.method = "POST";
    request.headers.assign(login.headers.begin(), login.headers.end());
    request.body = std::move(login.body);
    http_post(
        base + login.target, std::move(request),
        [done](error_info error, transport::http_response response) {
          if (error) return done(std::move(error), {});
          soap_auth::login_result result;
          if (auto why = soap_auth::parse_login_response(response.body, response.status, result)) {
            return done(std::move(why), {});
          }
          done({}, access_token{std::move(result.session_id), std::move(result.instance_url),
                                std::move(result.user_id), std::move(result.organization_id),
                                "Bearer"});
        });
  }

  soap_login_options options_;
};

// ---- OAuth 2.0 ------------------------------------------------------------------------------

/// The token endpoint exchange shared by every grant.
class oauth_provider : public provider_base {
 public:
  oauth_provider(asio::any_io_executor executor, oauth_endpoint endpoint, network_options network,
                 logger log, const std::string& what)
      : provider_base(std::move(executor), std::move(network), std::move(log),
                      describe_endpoint(endpoint, what)),
        endpoint_(std::move(endpoint)) {
    add_secret(endpoint_.client_secret);
  }

 protected:
  static std::string describe_endpoint(const oauth_endpoint& e, const std::string& what) {
    std::string base;
    if (login_base_url(e.login_url, e.sandbox, base)) base = "(invalid login URL)";
    return "OAuth 2.0 " + what + " at " + base;
  }

  error_info base_url(std::string& base) const {
    return login_base_url(endpoint_.login_url, endpoint_.sandbox, base);
  }

  /// Posts `form` to the token endpoint; `on_reply` sees every parsed success.
  void request_token(std::string form, fetch_handler done,
                     std::function<void(const auth::oauth_token&)> on_reply = {}) {
    std::string base;
    if (auto why = base_url(base)) return done(std::move(why), {});
    transport::http_request request;
    request.method = "POST";
    request.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                       {"Accept", "application/json"}};
    request.body = std::move(form);
    http_post(base + "/services/oauth2/token", std::move(request),
              [done, on_reply](error_info error, transport::http_response response) {
                if (error) return done(std::move(error), {});
                auth::oauth_token token;
                if (auto why = auth::parse_oauth_reply(response.body, response.status, token)) {
                  return done(std::move(why), {});
                }
                if (on_reply) on_reply(token);
                done({}, access_token{std::move(token.access_token), std::move(token.instance_url),
                                      std::move(token.user_id), std::move(token.organization_id),
                                      std::move(token.token_type)});
              });
  }

  oauth_endpoint endpoint_;
};

class oauth_password_provider final : public oauth_provider {
 public:
  oauth_password_provider(asio::any_io_executor executor, oauth_password_options options,
                          network_options network, logger log)
      : oauth_provider(std::move(executor), options.endpoint, std::move(network), std::move(log),
                       "password grant as " + options.username),
        options_(std::move(options)) {
    add_secret(options_.password);
    add_secret(options_.security_token);
    add_secret(options_.password + options_.security_token);
  }

 private:
  void fetch(bool, fetch_handler done) override {
    const std::string password = options_.password + options_.security_token;
    request_token(auth::encode_form({{"grant_type", "password"},
                                     {"client_id", endpoint_.client_id},
                                     {"client_secret", endpoint_.client_secret},
                                     {"username", options_.username},
                                     {"password", password}}),
                  std::move(done));
  }

  oauth_password_options options_;
};

class oauth_refresh_token_provider final : public oauth_provider {
 public:
  oauth_refresh_token_provider(asio::any_io_executor executor, oauth_refresh_token_options options,
                               network_options network, logger log)
      : oauth_provider(std::move(executor), options.endpoint, std::move(network), std::move(log),
                       "refresh-token grant"),
        refresh_token_(std::move(options.refresh_token)) {
    add_secret(refresh_token_);
  }

 private:
  void fetch(bool, fetch_handler done) override {
    std::string refresh_token;
    {
      std::lock_guard lock(token_mutex_);
      refresh_token = refresh_token_;
    }
    if (refresh_token.empty()) {
      return done(make_error(errc::auth_no_credentials, "OAuth 2.0 refresh-token grant",
                             "no refresh token is configured"),
                  {});
    }
    std::string form = endpoint_.client_secret.empty()
                           ? auth::encode_form({{"grant_type", "refresh_token"},
                                                {"client_id", endpoint_.client_id},
                                                {"refresh_token", refresh_token}})
                           : auth::encode_form({{"grant_type", "refresh_token"},
                                                {"client_id", endpoint_.client_id},
                                                {"client_secret", endpoint_.client_secret},
                                                {"refresh_token", refresh_token}});
    auto self = std::static_pointer_cast<oauth_refresh_token_provider>(shared_from_this());
    request_token(std::move(form), std::move(done), [self](const auth::oauth_token& token) {
      if (token.refresh_token.empty()) return;
      self->add_secret(token.refresh_token);
      std::lock_guard lock(self->token_mutex_);
      self->refresh_token_ = token.refresh_token;
    });
  }

  std::mutex token_mutex_;
  std::string refresh_token_;
};

class oauth_client_credentials_provider final : public oauth_provider {
 public:
  oauth_client_credentials_provider(asio::any_io_executor executor,
                                    oauth_client_credentials_options options,
                                    network_options network, logger log)
      : oauth_provider(std::move(executor), std::move(options.endpoint), std::move(network),
                       std::move(log), "client-credentials grant") {}

 private:
  void fetch(bool, fetch_handler done) override {
    request_token(auth::encode_form({{"grant_type", "client_credentials"},
                                     {"client_id", endpoint_.client_id},
                                     {"client_secret", endpoint_.client_secret}}),
                  std::move(done));
  }
};

class oauth_jwt_provider final : public oauth_provider {
 public:
  oauth_jwt_provider(asio::any_io_executor executor, oauth_jwt_options options,
                     network_options network, logger log)
      : oauth_provider(std::move(executor), options.endpoint, std::move(network), std::move(log),
                       "JWT bearer grant as " + options.username),
        options_(std::move(options)) {
    add_secret(options_.private_key_pem);
  }

 private:
  void fetch(bool, fetch_handler done) override {
    std::string audience = options_.audience;
    if (audience.empty()) {
      if (auto why = base_url(audience)) return done(std::move(why), {});
    }
    const auto now = std::chrono::system_clock::now();
    const auto exp = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch() +
                                                                      options_.assertion_lifetime);
    std::string assertion;
    if (auto why = auth::build_jwt_assertion(
            {endpoint_.client_id, options_.username, audience, exp.count()},
            options_.private_key_pem, assertion)) {
      return done(std::move(why), {});
    }
    add_secret(assertion);
    request_token(auth::encode_form({{"grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"},
                                     {"assertion", assertion}}),
                  std::move(done));
  }

  oauth_jwt_options options_;
};

// ---- static and callback ------------------------------------------------------------------

class static_token_provider final : public provider_base {
 public:
  static_token_provider(asio::any_io_executor executor, access_token token)
      : provider_base(std::move(executor), {}, {}, "static access token for " + token.instance_url),
        token_(std::move(token)) {
    add_secret(token_.token);
  }

 private:
  void fetch(bool force_refresh, fetch_handler done) override {
    if (force_refresh) {
      // The server refused this very token, and nothing can refresh a token given as such:
      // handing it out again would only be refused again, forever.
      return done(make_error(errc::auth_invalid_session, "static access token",
                             "the access token was refused: it has expired or was revoked, and a "
                             "static token cannot be refreshed. Get a new one (e.g. "
                             "`sfstream login --show-token` or `sf org display`) and run again, "
                             "or use credentials that can log in again (--username/--password, "
                             "--oauth)"),
                  {});
    }
    if (token_.token.empty()) {
      return done(
          make_error(errc::auth_no_credentials, "static access token", "the access token is empty"),
          {});
    }
    std::string base;
    if (auto why = login_base_url(token_.instance_url, false, base);
        why || token_.instance_url.empty()) {
      if (!why) why = make_error(errc::invalid_config, {});
      why.diag.context = "static access token";
      why.diag.server_text = "the instance URL must be an absolute https URL";
      return done(std::move(why), {});
    }
    access_token token = token_;
    token.instance_url = base;
    done({}, std::move(token));
  }

  access_token token_;
};

class callback_provider final : public provider_base {
 public:
  callback_provider(asio::any_io_executor executor, token_callback callback,
                    std::string description)
      : provider_base(std::move(executor), {}, {}, std::move(description)),
        callback_(std::move(callback)) {}

 private:
  void fetch(bool force_refresh, fetch_handler done) override {
    if (!callback_) {
      return done(
          make_error(errc::auth_no_credentials, description(), "no token callback was given"), {});
    }
    // The user may call back from any thread, more than once by mistake: only the first counts.
    auto called = std::make_shared<std::atomic<bool>>(false);
    auto once = [called, done, this](error_info error, access_token token) {
      if (called->exchange(true)) return;
      if (!error && token.token.empty()) {
        error = make_error(errc::auth_no_credentials, description(),
                           "the token callback returned an empty token");
      }
      done(std::move(error), std::move(token));
    };
    try {
      callback_(force_refresh, once);
    } catch (...) {
      once(make_error(errc::handler_failed, description(), "the token callback threw an exception"),
           {});
    }
  }

  token_callback callback_;
};

}  // namespace

std::shared_ptr<credentials_provider> make_soap_login_provider(asio::any_io_executor executor,
                                                               soap_login_options options,
                                                               network_options network,
                                                               logger log) {
  return std::make_shared<soap_login_provider>(std::move(executor), std::move(options),
                                               std::move(network), std::move(log));
}

std::shared_ptr<credentials_provider> make_oauth_password_provider(asio::any_io_executor executor,
                                                                   oauth_password_options options,
                                                                   network_options network,
                                                                   logger log) {
  return std::make_shared<oauth_password_provider>(std::move(executor), std::move(options),
                                                   std::move(network), std::move(log));
}

std::shared_ptr<credentials_provider> make_oauth_refresh_token_provider(
    asio::any_io_executor executor, oauth_refresh_token_options options, network_options network,
    logger log) {
  return std::make_shared<oauth_refresh_token_provider>(std::move(executor), std::move(options),
                                                        std::move(network), std::move(log));
}

std::shared_ptr<credentials_provider> make_oauth_client_credentials_provider(
    asio::any_io_executor executor, oauth_client_credentials_options options,
    network_options network, logger log) {
  return std::make_shared<oauth_client_credentials_provider>(
      std::move(executor), std::move(options), std::move(network), std::move(log));
}

std::shared_ptr<credentials_provider> make_oauth_jwt_provider(asio::any_io_executor executor,
                                                              oauth_jwt_options options,
                                                              network_options network, logger log) {
  return std::make_shared<oauth_jwt_provider>(std::move(executor), std::move(options),
                                              std::move(network), std::move(log));
}

std::shared_ptr<credentials_provider> make_static_token_provider(asio::any_io_executor executor,
                                                                 access_token token) {
  return std::make_shared<static_token_provider>(std::move(executor), std::move(token));
}

std::shared_ptr<credentials_provider> make_callback_provider(asio::any_io_executor executor,
                                                             token_callback fetch,
                                                             std::string description) {
  return std::make_shared<callback_provider>(std::move(executor), std::move(fetch),
                                             std::move(description));
}

}  // namespace sfstream
