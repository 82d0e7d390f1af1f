// The /services/data routes: versions, resources, sobjects, and dispatch to the other concerns.
#include "emulator/data/rest_api_impl.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include <rapidjson/error/en.h>

namespace sfstream::emulator::data {

transport::http_response rest_api_impl::method_not_allowed(const std::string& method, const std::string& allowed) {
  auto r = error_response(405, {"METHOD_NOT_ALLOWED", "HTTP Method '" + method + "' not allowed. Allowed are " + allowed, {}});
  r.headers.emplace_back("Allow", allowed);
  return r;
}

std::string rest_api_impl::create_reply(const std::string& id, const std::vector<std::pair<std::string, std::string>>& notes) {
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartObject();
  w.Key("id");
  w.String(id);
  w.Key("success");
  w.Bool(true);
  w.Key("errors");
  w.StartArray();
  for (const auto& [code, message] : notes) {
    w.StartObject();
    w.Key("statusCode");
    w.String(code);
    w.Key("message");
    w.String(message);
    w.Key("fields");
    w.StartArray();
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return buffer.GetString();
}

transport::http_response rest_api_impl::handle(const transport::http_request& req, const caller& who) {
  const std::string& target = req.target;
  const std::size_t question = target.find('?');
  const std::string path = target.substr(0, question);
  const auto params = question == std::string::npos ? std::map<std::string, std::string>{}
                                                     : parse_query_string(std::string_view(target).substr(question + 1));
  const auto parts = split_path(path);
  if (parts.size() < 2 || parts[0] != "services" || parts[1] != "data") return error_response(404, not_found());
  if (auto spent = api_requests_.charge(clock_.now())) return error_response(403, *spent);
  if (parts.size() == 2) {
    if (req.method != "GET") return method_not_allowed(req.method, "GET");
    return versions();
  }
  const auto version = parse_version(parts[2], options_);
  if (!version) return error_response(404, not_found());
  const std::vector<std::string> rest(parts.begin() + 3, parts.end());
  if (rest.empty()) {
    if (req.method != "GET") return method_not_allowed(req.method, "GET");
    return resources(*version);
  }
  const std::string& resource = rest[0];
  if (resource == "limits" && rest.size() == 1) {
    if (req.method != "GET") return method_not_allowed(req.method, "GET");
    return limits();
  }
  if (resource == "query" || resource == "queryAll") {
    if (req.method != "GET") return method_not_allowed(req.method, "GET");
    if (rest.size() == 1) {
      auto q = params.find("q");
      if (q == params.end() || q->second.empty())
        return error_response(400, {"MALFORMED_QUERY", "A query string has to be specified", {}});
      return run_query(*version, q->second, resource == "queryAll", batch_size(req));
    }
    if (rest.size() == 2) return next_page(*version, rest[1]);
    return error_response(404, not_found());
  }
  if (resource == "sobjects") return handle_sobjects(req, who, *version, rest);
  return error_response(404, not_found());
}

transport::http_response rest_api_impl::handle_sobjects(const transport::http_request& req, const caller& who, int version,
                                         const std::vector<std::string>& rest) {
  if (rest.size() < 2) return error_response(404, not_found());
  const object_def* object = schema_.find(rest[1]);
  if (!object) return error_response(404, not_found());
  std::string client;
  if (const std::string* h = transport::find_header(req.headers, "Sforce-Call-Options")) {
    const std::size_t at = h->find("client=");
    if (at != std::string::npos) client = h->substr(at + 7, h->find(',', at) == std::string::npos ? std::string::npos : h->find(',', at) - at - 7);
  }
  transaction txn = begin(who, origin_for(version, client));
  if (rest.size() == 2) {
    if (req.method != "POST") return method_not_allowed(req.method, "POST");
    op_result r = create(object->name, req.body, who, txn, version);
    if (!r) return error_response(status_for(*r.error), *r.error);
    if (object->kind == object_kind::platform_event && !last_event_uuid_.empty())
      return json_response(201, create_reply(r.id, {{"OPERATION_ENQUEUED", last_event_uuid_}}));
    return json_response(201, create_reply(r.id, {}));
  }
  const std::string& id = rest[2];
  if (rest.size() == 4 && rest[3] == "push" && object->name == "StreamingChannel") {
    const record* channel = locate(object->name, id);
    if (!channel || channel->deleted) return error_response(404, missing(object->name, id));
    return handle_push(req.method, *channel, req.body);
  }
  if (rest.size() == 4 && rest[3] == "undelete") {
    if (req.method != "POST") return method_not_allowed(req.method, "POST");
    op_result r = undelete(object->name, id, who, txn);
    if (!r) return error_response(status_for(*r.error), *r.error);
    return json_response(204, {});
  }
  if (rest.size() == 3 && rest[2] == "deleted" && object->kind != object_kind::platform_event) {
    if (req.method != "GET") return method_not_allowed(req.method, "GET");
    const auto question = req.target.find('?');
    return get_deleted(*object, question == std::string::npos
                                    ? std::map<std::string, std::string>{}
                                    : parse_query_string(std::string_view(req.target).substr(question + 1)));
  }
  if (rest.size() != 3 || object->kind == object_kind::platform_event) return error_response(404, not_found());
  if (req.method == "GET") {
    const record* r = locate(object->name, id);
    if (!r || r->deleted) return error_response(404, missing(object->name, id));
    const auto question = req.target.find('?');
    if (question != std::string::npos) {
      auto params = parse_query_string(std::string_view(req.target).substr(question + 1));
      if (auto fields = params.find("fields"); fields != params.end()) {
        std::vector<const field_def*> only;
        std::string_view list = fields->second;
        while (!list.empty()) {
          const std::size_t comma = list.find(',');
          std::string name(list.substr(0, comma));
          name.erase(std::remove(name.begin(), name.end(), ' '), name.end());
          const field_def* f = object->find_field(name);
          if (!f)
            return error_response(400, {"INVALID_FIELD", "No such column '" + name + "' on sobject of type " + object->name, {}});
          only.push_back(f);
          if (comma == std::string_view::npos) break;
          list.remove_prefix(comma + 1);
        }
        return json_response(200, render_record(version, *r, &only));
      }
    }
    return json_response(200, render_record(version, *r, nullptr));
  }
  if (req.method == "PATCH") {
    op_result r = update(object->name, id, req.body, who, txn);
    if (!r) return error_response(status_for(*r.error), *r.error);
    return json_response(204, {});
  }
  if (req.method == "DELETE") {
    op_result r = remove(object->name, id, who, txn);
    if (!r) return error_response(status_for(*r.error), *r.error);
    return json_response(204, {});
  }
  return method_not_allowed(req.method, "GET,PATCH,DELETE");
}

transport::http_response rest_api_impl::versions() const {
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartArray();
  for (int v = options_.min_api_version; v <= options_.max_api_version; ++v) {
    w.StartObject();
    w.Key("label");
    w.String(release_label(v));
    w.Key("url");
    w.String("/services/data/v" + version_text(v));
    w.Key("version");
    w.String(version_text(v));
    w.EndObject();
  }
  w.EndArray();
  return json_response(200, buffer.GetString());
}

transport::http_response rest_api_impl::resources(int version) const {
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartObject();
  for (const char* r : {"sobjects", "query", "queryAll", "limits"}) {
    w.Key(r);
    w.String("/services/data/v" + version_text(version) + "/" + r);
  }
  w.EndObject();
  return json_response(200, buffer.GetString());
}

}  // namespace sfstream::emulator::data
