#include "cli/options.hpp"
#include "cli/output.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>

namespace sfstream::cli {

namespace {

constexpr std::array<option_spec, 20> connection_specs{{
    {"login-url", true, "SF_LOGIN_URL"},
    {"sandbox", false, ""},
    {"username", true, "SF_USERNAME"},
    {"password", true, "SF_PASSWORD"},
    {"security-token", true, "SF_SECURITY_TOKEN"},
    {"access-token", true, "SF_ACCESS_TOKEN"},
    {"instance-url", true, "SF_INSTANCE_URL"},
    {"oauth", true, ""},
    {"client-id", true, "SF_CLIENT_ID"},
    {"client-secret", true, "SF_CLIENT_SECRET"},
    {"refresh-token", true, "SF_REFRESH_TOKEN"},
    {"jwt-key-file", true, "SF_JWT_KEY_FILE"},
    {"api-version", true, ""},
    {"soap-version", true, ""},
    {"ca-file", true, ""},
    {"proxy", true, ""},
    {"timeout", true, ""},
    {"verbose", false, "", 'v'},
    {"help", false, "", 'h'},
    {"enterprise", false, ""},
}};

const option_spec* find_spec(std::span<const option_spec> specs, std::string_view name) {
  for (const auto& s : specs) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

const option_spec* find_short(std::span<const option_spec> specs, char c) {
  for (const auto& s : specs) {
    if (s.short_name != '\0' && s.short_name == c) return &s;
  }
  return nullptr;
}

std::optional<std::string> env(std::string_view name) {
  if (name.empty()) return std::nullopt;
  const char* v = std::getenv(std::string(name).c_str());
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

}  // namespace

std::span<const option_spec> connection_options() {
  return connection_specs;
}

std::optional<std::string> parsed_args::value(std::string_view name) const {
  if (auto v = command_line_value(name)) return v;
  if (auto it = env_of_.find(name); it != env_of_.end()) return env(it->second);
  return std::nullopt;
}

std::optional<std::string> parsed_args::command_line_value(std::string_view name) const {
  if (auto it = values_.find(name); it != values_.end()) return it->second;
  return std::nullopt;
}

bool parsed_args::given(std::string_view name) const {
  return flags_.find(name) != flags_.end() || values_.find(name) != values_.end();
}

std::optional<parsed_args> parse_args(std::span<char* const> args,
                                      std::span<const option_spec> specs, std::string& error) {
  parsed_args out;
  for (const auto& s : specs) {
    if (!s.env.empty()) out.env_of_.emplace(std::string(s.name), std::string(s.env));
  }
  bool options_done = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (options_done || arg.size() < 2 || arg[0] != '-') {
      out.positionals_.emplace_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    const option_spec* spec = nullptr;
    std::optional<std::string> inline_value;
    std::string shown;
    if (arg.substr(0, 2) == "--") {
      std::string_view name = arg.substr(2);
      if (auto eq = name.find('='); eq != std::string_view::npos) {
        inline_value = std::string(name.substr(eq + 1));
        name = name.substr(0, eq);
      }
      spec = find_spec(specs, name);
      shown = "--" + std::string(name);
    } else if (arg.size() == 2) {
      spec = find_short(specs, arg[1]);
      shown = std::string(arg);
    }
    if (spec == nullptr) {
      error = "unknown option '" + std::string(arg.substr(0, arg.find('='))) + "'";
      return std::nullopt;
    }
    if (!spec->takes_value) {
      if (inline_value) {
        error = "option " + shown + " takes no value";
        return std::nullopt;
      }
      out.flags_.emplace(spec->name);
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= args.size()) {
        error = "option " + shown + " needs a value";
        return std::nullopt;
      }
      inline_value = std::string(args[++i]);
    }
    out.values_[std::string(spec->name)] = std::move(*inline_value);
  }
  return out;
}

std::optional<std::chrono::milliseconds> parse_seconds(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  for (char c : text) {
    if ((c < '0' || c > '9') && c != '.') return std::nullopt;
  }
  double seconds = 0;
  std::istringstream in{std::string(text)};
  in >> seconds;
  if (!in || !in.eof() || !std::isfinite(seconds) || seconds < 0 || seconds > 1e9)
    return std::nullopt;
  return std::chrono::milliseconds(static_cast<long long>(std::llround(seconds * 1000.0)));
}

std::optional<long long> parse_count(std::string_view text) {
  long long v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size() || v < 0) return std::nullopt;
  return v;
}

std::string check_api_version(std::string_view text) {
  const auto dot = text.find('.');
  const auto digits = [](std::string_view part) {
    return !part.empty() && part.size() <= 3 &&
           part.find_first_not_of("0123456789") == std::string_view::npos;
  };
  if (dot == std::string_view::npos || !digits(text.substr(0, dot)) ||
      !digits(text.substr(dot + 1))) {
    return "--api-version must look like 59.0 (got '" + std::string(text) + "')";
  }
  const auto major = *parse_count(text.substr(0, dot));
  if (major < 37) {
    return "--api-version " + std::string(text) + " is not supported: the Streaming API needs " +
           std::string(oldest_api_version) + " or later (e.g. 59.0)";
  }
  return {};
}

std::optional<network_options> network_from(const parsed_args& args, std::string& error) {
  network_options n;
  if (auto ca = args.value("ca-file")) n.ca_file = *ca;
  if (auto proxy = args.value("proxy")) {
    // http://[user[:password]@]host:port — the credentials go apart so they are never logged.
    std::string text = *proxy;
    proxy_options p;
    const auto scheme_end = text.find("://");
    if (scheme_end == std::string::npos) {
      error = "--proxy must look like http://[user:password@]host:port";
      return std::nullopt;
    }
    const auto authority_begin = scheme_end + 3;
    const auto at = text.find('@', authority_begin);
    const auto slash = text.find('/', authority_begin);
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
      const std::string userinfo = text.substr(authority_begin, at - authority_begin);
      const auto colon = userinfo.find(':');
      p.username = userinfo.substr(0, colon);
      if (colon != std::string::npos) p.password = userinfo.substr(colon + 1);
      text.erase(authority_begin, at + 1 - authority_begin);
    }
    p.url = text;
    n.proxy = std::move(p);
  }
  return n;
}

std::shared_ptr<credentials_provider> credentials_from(const parsed_args& args,
                                                       boost::asio::any_io_executor executor,
                                                       const network_options& network,
                                                       const logger& log, std::string& error) {
  const std::string login_url = args.value("login-url").value_or("");
  const bool sandbox = args.given("sandbox");
  auto require = [&](std::string_view name,
                     std::string_view env_name) -> std::optional<std::string> {
    auto v = args.value(name);
    if (!v) {
      error = "missing --" + std::string(name) +
              (env_name.empty() ? std::string() : " (or " + std::string(env_name) + ")");
    }
    return v;
  };
  oauth_endpoint endpoint;
  endpoint.login_url = login_url;
  endpoint.sandbox = sandbox;

  if (auto flow = args.command_line_value("oauth")) {
    auto client_id = require("client-id", "SF_CLIENT_ID");
    if (!client_id) return nullptr;
    endpoint.client_id = *client_id;
    endpoint.client_secret = args.value("client-secret").value_or("");
    if (*flow == "password") {
      oauth_password_options o;
      o.endpoint = std::move(endpoint);
      auto user = require("username", "SF_USERNAME");
      if (!user) return nullptr;
      auto pass = require("password", "SF_PASSWORD");
      if (!pass) return nullptr;
      o.username = *user;
      o.password = *pass;
      o.security_token = args.value("security-token").value_or("");
      return make_oauth_password_provider(executor, std::move(o), network, log);
    }
    if (*flow == "refresh-token") {
      oauth_refresh_token_options o;
      o.endpoint = std::move(endpoint);
      auto token = require("refresh-token", "SF_REFRESH_TOKEN");
      if (!token) return nullptr;
      o.refresh_token = *token;
      return make_oauth_refresh_token_provider(executor, std::move(o), network, log);
    }
    if (*flow == "client-credentials") {
      if (endpoint.client_secret.empty()) {
        error = "missing --client-secret (or SF_CLIENT_SECRET) for --oauth client-credentials";
        return nullptr;
      }
      oauth_client_credentials_options o;
      o.endpoint = std::move(endpoint);
      return make_oauth_client_credentials_provider(executor, std::move(o), network, log);
    }
    if (*flow == "jwt") {
      oauth_jwt_options o;
      o.endpoint = std::move(endpoint);
      auto user = require("username", "SF_USERNAME");
      if (!user) return nullptr;
      auto key_file = require("jwt-key-file", "SF_JWT_KEY_FILE");
      if (!key_file) return nullptr;
      std::ifstream in(*key_file, std::ios::binary);
      std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (!in.good() && !in.eof()) pem.clear();
      if (pem.empty()) {
        error = "cannot read the JWT private key file '" + *key_file + "'";
        return nullptr;
      }
      o.username = *user;
      o.private_key_pem = std::move(pem);
      return make_oauth_jwt_provider(executor, std::move(o), network, log);
    }
    error =
        "--oauth must be password, refresh-token, client-credentials or jwt (got '" + *flow + "')";
    return nullptr;
  }

  const bool soap_on_command_line =
      args.command_line_value("username") || args.command_line_value("password");
  const bool static_token = args.command_line_value("access-token") ||
                            (!soap_on_command_line && args.value("access-token"));
  if (static_token) {
    auto token = args.value("access-token");
    auto instance = require("instance-url", "SF_INSTANCE_URL");
    if (!instance) {
      error += " with --access-token";
      return nullptr;
    }
    access_token t;
    t.token = *token;
    t.instance_url = *instance;
    return make_static_token_provider(executor, std::move(t));
  }

  soap_login_options o;
  o.login_url = login_url;
  o.sandbox = sandbox;
  auto user = args.value("username");
  if (!user) {
    error =
        "no credentials: give --username and --password (SOAP login), --access-token with "
        "--instance-url, or --oauth FLOW (or the SF_* environment variables)";
    return nullptr;
  }
  auto pass = require("password", "SF_PASSWORD");
  if (!pass) return nullptr;
  o.username = *user;
  o.password = *pass;
  o.security_token = args.value("security-token").value_or("");
  if (auto v = args.value("soap-version")) o.soap_version = *v;
  o.enterprise_wsdl = args.given("enterprise");
  return make_soap_login_provider(executor, std::move(o), network, log);
}

void register_secrets(const parsed_args& args) {
  for (const char* name :
       {"password", "security-token", "access-token", "client-secret", "refresh-token"}) {
    if (auto v = args.value(name)) add_secret(*v);
  }
}

}  // namespace sfstream::cli
