// `sfstream login`: logs in with the configured credentials and prints who and where, never a
// secret unless --show-token asks for the access token.
#include <algorithm>
#include <array>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "cli/output.hpp"

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
  if (why) {
    print_error("login failed: " + describe(why));
    const int code = exit_code_for(why);
    return code == exit_ok ? exit_failure : code;
  }
  std::string out = "{\"instance_url\":" + json_string(token.instance_url) +
                    ",\"user_id\":" + json_string(token.user_id) +
                    ",\"organization_id\":" + json_string(token.organization_id);
  if (parsed->given("show-token")) out += ",\"access_token\":" + json_string(token.token);
  out += "}";
  print_line(out);
  return exit_ok;
}

}  // namespace sfstream::cli
