// `sfstream topic create|list|delete`: PushTopic records through the REST API.
#include <cstdio>
#include <string>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <boost/asio/io_context.hpp>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "cli/output.hpp"
#include "cli/rest.hpp"

namespace sfstream::cli {

namespace {

const char* const topic_help =
    "usage: sfstream topic create NAME QUERY [--notify-for-fields All|Referenced|Select|Where]\n"
    "                             [--operations create,update,delete,undelete]\n"
    "                             [--topic-api-version V] [connection options]\n"
    "       sfstream topic list [connection options]\n"
    "       sfstream topic delete NAME [connection options]\n"
    "\n"
    "Manages PushTopic records through REST (/services/data/vXX.X/sobjects/PushTopic and /query).\n"
    "create prints {\"id\":...,\"name\":...,\"channel\":\"/topic/NAME\"}; list prints one JSON "
    "line\n"
    "per PushTopic; delete prints {\"id\":...,\"deleted\":true}.\n"
    "QUERY is SOQL selecting Id, e.g. \"SELECT Id, Name, Industry FROM Account\".\n"
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

/// Prints each record of a query reply (without "attributes"); returns the nextRecordsUrl.
std::string print_records(const std::string& body, std::size_t& printed) {
  rapidjson::Document d;
  d.Parse(body.c_str(), body.size());
  if (d.HasParseError() || !d.IsObject()) return {};
  auto records = d.FindMember("records");
  if (records != d.MemberEnd() && records->value.IsArray()) {
    for (auto& r : records->value.GetArray()) {
      if (!r.IsObject()) continue;
      r.RemoveMember("attributes");
      rapidjson::StringBuffer sb;
      rapidjson::Writer<rapidjson::StringBuffer> w(sb);
      r.Accept(w);
      print_line(std::string(sb.GetString(), sb.GetSize()));
      ++printed;
    }
  }
  auto next = d.FindMember("nextRecordsUrl");
  if (next != d.MemberEnd() && next->value.IsString()) return next->value.GetString();
  return {};
}

/// Turns an absolute REST path (/services/data/vXX.X/query/...) into one relative to the root.
std::string relative_path(const std::string& url) {
  const std::string prefix = "/services/data/v";
  if (url.compare(0, prefix.size(), prefix) != 0) return url;
  const auto slash = url.find('/', prefix.size());
  return slash == std::string::npos ? std::string("/") : url.substr(slash);
}

}  // namespace

int run_topic(std::span<char* const> args) {
  auto base = connection_options();
  std::vector<option_spec> specs(base.begin(), base.end());
  specs.push_back({"notify-for-fields", true, ""});
  specs.push_back({"operations", true, ""});
  specs.push_back({"topic-api-version", true, ""});
  std::string error;
  auto parsed = parse_args(args, specs, error);
  if (!parsed) return usage_error("topic", error);
  if (parsed->given("help")) {
    std::fputs(topic_help, stdout);
    return exit_ok;
  }
  const auto& pos = parsed->positionals();
  if (pos.empty()) return usage_error("topic", "give create, list or delete");
  const std::string& action = pos[0];
  std::string body;
  if (action == "create") {
    if (pos.size() != 3) return usage_error("topic", "create needs NAME and QUERY");
    const std::string notify = parsed->value("notify-for-fields").value_or("Referenced");
    if (notify != "All" && notify != "Referenced" && notify != "Select" && notify != "Where") {
      return usage_error("topic", "--notify-for-fields must be All, Referenced, Select or Where");
    }
    bool ops[4] = {true, true, true, true};
    if (auto o = parsed->value("operations")) {
      ops[0] = ops[1] = ops[2] = ops[3] = false;
      std::string list = *o + ",";
      for (std::size_t start = 0, comma; (comma = list.find(',', start)) != std::string::npos;
           start = comma + 1) {
        const std::string op = list.substr(start, comma - start);
        if (op == "create")
          ops[0] = true;
        else if (op == "update")
          ops[1] = true;
        else if (op == "delete")
          ops[2] = true;
        else if (op == "undelete")
          ops[3] = true;
        else
          return usage_error("topic",
                             "--operations takes create,update,delete,undelete (got '" + op + "')");
      }
    }
    const std::string topic_version =
        parsed->value("topic-api-version").value_or(parsed->value("api-version").value_or("59.0"));
    if (!parse_seconds(topic_version))
      return usage_error("topic", "--topic-api-version must look like 59.0");
    auto flag = [](bool b) { return b ? "true" : "false"; };
    body = "{\"Name\":" + json_string(pos[1]) + ",\"Query\":" + json_string(pos[2]) +
           ",\"ApiVersion\":" + topic_version + ",\"NotifyForFields\":" + json_string(notify) +
           ",\"NotifyForOperationCreate\":" + flag(ops[0]) +
           ",\"NotifyForOperationUpdate\":" + flag(ops[1]) +
           ",\"NotifyForOperationDelete\":" + flag(ops[2]) +
           ",\"NotifyForOperationUndelete\":" + flag(ops[3]) + "}";
  } else if (action == "list") {
    if (pos.size() != 1) return usage_error("topic", "list takes no argument");
  } else if (action == "delete") {
    if (pos.size() != 2) return usage_error("topic", "delete needs NAME");
  } else {
    return usage_error("topic", "unknown action '" + action + "': give create, list or delete");
  }

  boost::asio::io_context io;
  std::unique_ptr<blocking_rest> session;
  if (auto code = open_rest_session("topic", *parsed, io, session)) return *code;
  blocking_rest& rest = *session;

  rest_reply reply;
  if (action == "create") {
    if (auto why = rest.call("POST", "/sobjects/PushTopic", body, reply))
      return report_failure("creating the PushTopic", why);
    print_line("{\"id\":" + json_string(json_id(reply.body)) + ",\"name\":" + json_string(pos[1]) +
               ",\"channel\":" + json_string("/topic/" + pos[1]) + "}");
    return exit_ok;
  }
  if (action == "list") {
    std::string path =
        "/query?q=" + url_encode(
                          "SELECT Id, Name, Query, ApiVersion, NotifyForFields, "
                          "NotifyForOperationCreate, NotifyForOperationUpdate, "
                          "NotifyForOperationDelete, NotifyForOperationUndelete, IsActive "
                          "FROM PushTopic ORDER BY Name");
    std::size_t printed = 0;
    for (int page = 0; page < 1000 && !path.empty(); ++page) {
      if (auto why = rest.call("GET", path, "", reply)) return report_failure("listing PushTopics", why);
      const std::string next = print_records(reply.body, printed);
      path = next.empty() ? std::string() : relative_path(next);
    }
    return exit_ok;
  }
  // delete
  const std::string query =
      "/query?q=" + url_encode("SELECT Id FROM PushTopic WHERE Name = " + soql_literal(pos[1]));
  if (auto why = rest.call("GET", query, "", reply)) return report_failure("finding the PushTopic", why);
  const std::string id = first_record_id(reply.body);
  if (id.empty()) {
    print_error("no PushTopic named '" + pos[1] + "'");
    return exit_failure;
  }
  if (auto why = rest.call("DELETE", "/sobjects/PushTopic/" + id, "", reply))
    return report_failure("deleting the PushTopic", why);
  print_line("{\"id\":" + json_string(id) + ",\"deleted\":true}");
  return exit_ok;
}

}  // namespace sfstream::cli
