// `sfstream login`: logs in with the configured credentials and prints who and where, never a
// secret unless --show-token asks for the access token.
#include <algorithm>
#include <array>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <rapidjson/document.h>
#include <boost/asio/io_context.hpp>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "cli/output.hpp"
#include "sfstream/rest.hpp"

namespace sfstream::cli {

namespace {

const char* const login_help =
    "usage: sfstream login [options]\n"
    "\n"
    "Logs in and prints one JSON object on stdout:\n"
    "  {\"instance_url\":...,\"user_id\":...,\"organization_id\":...}\n"
    "The session id / access token is printed (as \"access_token\") only with --show-token.\n"
    "A failed login exits 3 with the Salesforce fault code on stderr, e.g.\n"
    "  sfstream: login failed: INVALID_LOGIN: Invalid username, password, security token; ...\n"
    "\n"
    "credentials (environment variables in parentheses are used when the option is absent):\n"
    "  --username U --password P [--security-token T]   SOAP login (SF_USERNAME, SF_PASSWORD,\n"
    "                                                   SF_SECURITY_TOKEN)\n"
    "  --access-token T --instance-url URL              check nothing, print the instance\n"
    "                                                   (SF_ACCESS_TOKEN, SF_INSTANCE_URL)\n"
    "  --oauth password|refresh-token|client-credentials|jwt  with --client-id (SF_CLIENT_ID),\n"
    "      --client-secret (SF_CLIENT_SECRET), --refresh-token (SF_REFRESH_TOKEN),\n"
    "      --jwt-key-file (SF_JWT_KEY_FILE), --username/--password as the flow needs\n"
    "  --login-url URL     login host (SF_LOGIN_URL; default https://login.salesforce.com)\n"
    "  --sandbox           use https://test.salesforce.com when --login-url is not given\n"
    "  --soap-version V    SOAP login() API version (default 64.0; 31.0-64.0)\n"
    "  --enterprise        SOAP login on the enterprise endpoint\n"
    "  --ca-file PEM       trust this CA besides the system store\n"
    "  --proxy URL         http://[user:password@]host:port CONNECT proxy\n"
    "  --timeout SECONDS   request deadline (default 30)\n"
    "  --show-token        include the access token (a secret) in the output\n"
    "  -v, --verbose       log on stderr\n"
    "\n"
    "exit codes: 0 logged in; 1 network or other failure; 2 usage; 3 authentication failed.\n";

/// Asks the org's userinfo endpoint who `token` belongs to and fills its user and organization
/// ids. A token given as such (--access-token) is checked nowhere else: a refused one is an
/// authentication error (errc::auth_invalid_session, exit code 3).
error_info identify(boost::asio::io_context& io, std::shared_ptr<credentials_provider> credentials,
                    const network_options& network, access_token& token) {
  rest_options options;
  options.credentials = std::move(credentials);
  options.network = network;
  rest_client rest(io.get_executor(), options);
  std::optional<error_info> outcome;
  rest.async_request(
      "GET", "/services/oauth2/userinfo", {},
      [&](error_info why, unsigned status, std::string body) {
        if (!why) {
          rapidjson::Document doc;
          doc.Parse(body.c_str(), body.size());
          auto text = [&doc](const char* name) {
            return doc.IsObject() && doc.HasMember(name) && doc[name].IsString()
                       ? std::string(doc[name].GetString())
                       : std::string();
          };
          token.user_id = text("user_id");
          token.organization_id = text("organization_id");
          if (token.user_id.empty() || token.organization_id.empty()) {
            why = error_info{errc::auth_bad_response,
                             {"", "the userinfo reply names no user_id and organization_id",
                              "reading /services/oauth2/userinfo"}};
          }
        } else if (status == 403 || status == 401) {
          why.code = make_error_code(errc::auth_invalid_session);
          why.diag.server_text = "the access token was refused (" + std::to_string(status) + " " +
                                 why.diag.server_text + ")";
        }
        outcome = std::move(why);
      });
  while (!outcome && io.run_one() > 0) {
  }
  if (!outcome)
    return error_info{errc::timeout, {"", "no answer", "reading /services/oauth2/userinfo"}};
  return *outcome;
}

}  // namespace

int run_login(std::span<char* const> args) {
  auto base = connection_options();
  std::vector<option_spec> specs(base.begin(), base.end());
  specs.push_back({"show-token", false, ""});
  std::string error;
  auto parsed = parse_args(args, specs, error);
  if (!parsed) return usage_error("login", error);
  if (parsed->given("help")) {
    std::fputs(login_help, stdout);
    return exit_ok;
  }
  if (!parsed->positionals().empty())
    return usage_error("login", "unexpected argument '" + parsed->positionals()[0] + "'");
  register_secrets(*parsed);
  auto network = network_from(*parsed, error);
  if (!network) return usage_error("login", error);
  if (network->proxy) add_secret(network->proxy->password);
  if (auto t = parsed->value("timeout")) {
    auto v = parse_seconds(*t);
    if (!v || v->count() == 0)
      return usage_error("login", "--timeout needs a positive number of seconds");
    network->request_timeout = *v;
    network->connect_timeout = std::min(network->connect_timeout, *v);
  }
  const logger log = stderr_logger(parsed->given("verbose"));

  boost::asio::io_context io;
  auto credentials = credentials_from(*parsed, io.get_executor(), *network, log, error);
  if (!credentials) return usage_error("login", error);

  std::optional<std::pair<error_info, access_token>> result;
  credentials->async_token(false, [&result](error_info why, access_token token) {
    result.emplace(std::move(why), std::move(token));
  });
  while (!result && io.run_one() > 0) {
  }
  if (!result) {
    print_error("login failed: no answer");
    return exit_failure;
  }
  auto& [why, token] = *result;
  if (!why && (token.user_id.empty() || token.organization_id.empty())) {
    // The loop above ran `io` out of work, which stops it: it must be restarted before it
    // runs anything again.
    io.restart();
    why = identify(io, credentials, *network, token);
  }
  if (why) return report_failure("login failed", why);
  std::string out = "{\"instance_url\":" + json_string(token.instance_url) +
                    ",\"user_id\":" + json_string(token.user_id) +
                    ",\"organization_id\":" + json_string(token.organization_id);
  if (parsed->given("show-token")) out += ",\"access_token\":" + json_string(token.token);
  out += "}";
  print_line(out);
  return exit_ok;
}

}  // namespace sfstream::cli
