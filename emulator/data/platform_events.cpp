// Platform event publish (POST sobjects/<Name>__e).
#include "emulator/data/rest_api_impl.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include <rapidjson/error/en.h>

namespace sfstream::emulator::data {

op_result rest_api_impl::publish_event(const object_def& event, const rapidjson::Value& body, const caller& who, int version) {
  field_map values;
  api_error error;
  if (!convert_fields(event, body, true, values, error)) return {{}, error};
  std::vector<std::string> missing_fields;
  for (const auto& f : event.fields)
    if (f.required && !values.count(f.name)) missing_fields.push_back(f.name);
  if (!missing_fields.empty()) {
    std::string list;
    for (const auto& m : missing_fields) list += (list.empty() ? "" : ", ") + m;
    return {{}, api_error{"REQUIRED_FIELD_MISSING", "Required fields are missing: [" + list + "]", missing_fields}};
  }
  const std::string id = ids_.next(event.key_prefix);
  const std::string event_uuid = uuid();
  const std::string user = effective(who).user_id;
  // Every event carries its EventUuid; the CometD endpoint leaves it out for subscribers on an
  // endpoint older than 52.0, as Salesforce does (the subscriber's version decides, not the
  // publisher's). The publish reply names the uuid from REST 52.0 on.
  const bool uuid_in_reply = version >= 52;
  bus_.publish("/event/" + event.name, [&](std::int64_t replay_id, clock::time_point at) {
    rapidjson::StringBuffer buffer;
    json_writer w(buffer);
    w.StartObject();
    w.Key("schema");
    w.String(event.schema_id);
    w.Key("payload");
    w.StartObject();
    w.Key("CreatedDate");
    w.String(format_datetime(at));
    w.Key("CreatedById");
    w.String(user);
    for (const auto& f : event.fields) {
      if (f.origin == field_origin::system) continue;
      write_key(w, f.name);
      write_value(w, value_of(values, f.name), date_style::streaming);
    }
    w.EndObject();
    w.Key("event");
    w.StartObject();
    w.Key("EventUuid");
    w.String(event_uuid);
    w.Key("replayId");
    w.Int64(replay_id);
    w.EndObject();
    w.EndObject();
    return std::string(buffer.GetString());
  });
  last_event_uuid_ = uuid_in_reply ? event_uuid : std::string();
  return {id, std::nullopt};
}

}  // namespace sfstream::emulator::data
