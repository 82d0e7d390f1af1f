// `sfstream publish`: a platform event (POST sobjects/Name__e) or a generic push
// (POST sobjects/StreamingChannel/<id>/push) through the REST API.
#include <cstdio>
#include <string>
#include <vector>

#include <rapidjson/document.h>
#include <boost/asio/io_context.hpp>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "cli/output.hpp"
#include "cli/rest.hpp"

namespace sfstream::cli {

namespace {

const char* const publish_help =
    "usage: sfstream publish [connection options] /event/Name__e '{\"Field__c\":\"value\"}'\n"
    "       sfstream publish [connection options] /u/channel 'payload text'\n"
    "\n"
    "Publishes a platform event (POST /services/data/vXX.X/sobjects/Name__e with the JSON object\n"
    "as its fields) or pushes a generic event to a StreamingChannel (found by name, then\n"
    "POST .../sobjects/StreamingChannel/<id>/push with the payload string). Prints the org's\n"
    "JSON reply on stdout.\n"
    "\n"
    "connection options: as for 'sfstream subscribe' (--username, --password, --security-token,\n"
    "--login-url, --access-token, --instance-url, --oauth ..., --api-version (REST, default\n"
    "59.0), --ca-file, --proxy, --timeout, -v) with the same SF_* environment variables.\n"
    "\n"
    "exit codes: 0 done; 1 the org refused or the network failed; 2 usage; 3 authentication "
    "failed.\n";

std::string soql_literal(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

}  // namespace

int run_publish(std::span<char* const> args) {
  auto base = connection_options();
  std::vector<option_spec> specs(base.begin(), base.end());
  std::string error;
  auto parsed = parse_args(args, specs, error);
  if (!parsed) return usage_error("publish", error);
  if (parsed->given("help")) {
    std::fputs(publish_help, stdout);
    return exit_ok;
  }
  const auto& pos = parsed->positionals();
  if (pos.size() != 2) return usage_error("publish", "give a CHANNEL and a PAYLOAD");
  const std::string& channel = pos[0];
  const std::string& payload = pos[1];
  const bool is_event = channel.rfind("/event/", 0) == 0 && channel.size() > 10 &&
                        channel.compare(channel.size() - 3, 3, "__e") == 0;
  const bool is_generic = channel.rfind("/u/", 0) == 0 && channel.size() > 3;
  if (!is_event && !is_generic) {
    return usage_error("publish",
                       "CHANNEL must be /event/Name__e or /u/name (got '" + channel + "')");
  }
  if (is_event) {
    rapidjson::Document d;
    d.Parse(payload.c_str(), payload.size());
    if (d.HasParseError() || !d.IsObject()) {
      return usage_error("publish",
                         "the payload of a platform event must be a JSON object of its fields");
    }
  }
  boost::asio::io_context io;
  std::unique_ptr<blocking_rest> session;
  if (auto code = open_rest_session("publish", *parsed, io, session)) return *code;
  blocking_rest& rest = *session;

  rest_reply reply;
  if (is_event) {
    const std::string object = channel.substr(7);
    if (auto why = rest.call("POST", "/sobjects/" + object, payload, reply))
      return report_failure("publishing " + object, why);
    print_line(reply.body);
    return exit_ok;
  }

  const std::string query =
      "/query?q=" +
      url_encode("SELECT Id FROM StreamingChannel WHERE Name = " + soql_literal(channel));
  if (auto why = rest.call("GET", query, "", reply))
    return report_failure("finding the StreamingChannel", why);
  const std::string id = first_record_id(reply.body);
  if (id.empty()) {
    print_error("no StreamingChannel named '" + channel + "'");
    return exit_failure;
  }
  const std::string body =
      "{\"pushEvents\":[{\"payload\":" + json_string(payload) + ",\"userIds\":[]}]}";
  if (auto why = rest.call("POST", "/sobjects/StreamingChannel/" + id + "/push", body, reply)) {
    return report_failure("pushing to " + channel, why);
  }
  print_line(reply.body);
  return exit_ok;
}

}  // namespace sfstream::cli
