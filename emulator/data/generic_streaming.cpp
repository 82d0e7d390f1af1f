// Generic streaming: StreamingChannel lookup and the push resource (GET/POST).
#include "emulator/data/rest_api_impl.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include <rapidjson/error/en.h>

namespace sfstream::emulator::data {

const record* rest_api_impl::find_channel(const std::string& name_or_id) const {
  if (const record* r = store_.find(name_or_id); r && r->object->name == "StreamingChannel" && !r->deleted) return r;
  for (const auto& [id, r] : store_.of("StreamingChannel"))
    if (!r.deleted && value_of(r.fields, "Name") == field_value(name_or_id)) return &r;
  return nullptr;
}

op_result rest_api_impl::push(const record& channel, const std::string& payload,
               std::vector<std::string> user_ids) {
  if (payload.size() > generic_payload_limit)
    return {{}, api_error{"STRING_TOO_LONG",
                          "payload: data value too large (max length=" + std::to_string(generic_payload_limit) + ")",
                          {"payload"}}};
  const std::string name = std::get<std::string>(value_of(channel.fields, "Name"));
  bus_.declare_channel(name, retention::hours_24);
  const std::int64_t replay = bus_.publish(name, [&](std::int64_t replay_id, clock::time_point at) {
    rapidjson::StringBuffer buffer;
    json_writer w(buffer);
    w.StartObject();
    w.Key("event");
    w.StartObject();
    w.Key("createdDate");
    w.String(format_datetime(at));
    w.Key("replayId");
    w.Int64(replay_id);
    w.EndObject();
    w.Key("payload");
    w.String(payload);
    w.EndObject();
    return std::string(buffer.GetString());
  }, std::move(user_ids));
  return {std::to_string(replay), std::nullopt};
}

transport::http_response rest_api_impl::handle_push(const std::string& method, const record& channel, const std::string& body) {
  if (method == "GET") {
    rapidjson::StringBuffer buffer;
    json_writer w(buffer);
    w.StartObject();
    const std::string& name = std::get<std::string>(value_of(channel.fields, "Name"));
    w.Key("OnlineUserIds");
    w.StartArray();
    for (const auto& user : bus_.online_users(name)) w.String(user);
    w.EndArray();
    w.Key("ChannelName");
    w.String(name);
    w.EndObject();
    return json_response(200, buffer.GetString());
  }
  if (method != "POST") return method_not_allowed(method, "GET,POST");
  rapidjson::Document doc;
  api_error error;
  if (!parse_body(body, doc, error)) return error_response(400, error);
  if (!doc.IsObject() || !doc.HasMember("pushEvents") || !doc["pushEvents"].IsArray())
    return error_response(400, {"JSON_PARSER_ERROR", "The request body must be {\"pushEvents\":[{\"payload\":…,\"userIds\":[…]}]}", {}});
  struct push_event {
    std::string payload;
    std::vector<std::string> user_ids;  // empty: every subscriber
  };
  std::vector<push_event> events;
  for (const auto& e : doc["pushEvents"].GetArray()) {
    if (!e.IsObject() || !e.HasMember("payload") || !e["payload"].IsString())
      return error_response(400, {"JSON_PARSER_ERROR", "Each push event needs a string payload", {}});
    if (e.HasMember("userIds") && !e["userIds"].IsArray())
      return error_response(400, {"JSON_PARSER_ERROR", "userIds must be an array of User ids", {}});
    if (e["payload"].GetStringLength() > generic_payload_limit)
      return error_response(400, {"STRING_TOO_LONG",
                                  "payload: data value too large (max length=" + std::to_string(generic_payload_limit) + ")",
                                  {"payload"}});
    push_event p{std::string(e["payload"].GetString(), e["payload"].GetStringLength()), {}};
    if (e.HasMember("userIds")) {
      for (const auto& u : e["userIds"].GetArray()) {
        if (!u.IsString())
          return error_response(400, {"JSON_PARSER_ERROR", "userIds must be an array of User ids", {}});
        std::string id(u.GetString(), u.GetStringLength());
        if (std::find(p.user_ids.begin(), p.user_ids.end(), id) == p.user_ids.end())
          p.user_ids.push_back(std::move(id));
      }
    }
    events.push_back(std::move(p));
  }
  const std::string name = std::get<std::string>(value_of(channel.fields, "Name"));
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartArray();
  for (auto& p : events) {
    // Salesforce: fanoutCount -1 without userIds; with them, the subscribers reached, and
    // userOnlineStatus says per user whether one of its clients is subscribed.
    std::int64_t fanout = p.user_ids.empty() ? -1 : 0;
    std::vector<std::pair<std::string, bool>> online;
    for (const auto& user : p.user_ids) {
      const std::size_t n = bus_.subscribers(name, user);
      fanout += static_cast<std::int64_t>(n);
      online.emplace_back(user, n > 0);
    }
    push(channel, p.payload, p.user_ids);
    w.StartObject();
    w.Key("fanoutCount");
    w.Int64(fanout);
    w.Key("userOnlineStatus");
    w.StartObject();
    for (const auto& [user, is_online] : online) {
      w.Key(user.c_str(), static_cast<rapidjson::SizeType>(user.size()));
      w.Bool(is_online);
    }
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  return json_response(200, buffer.GetString());
}

}  // namespace sfstream::emulator::data
