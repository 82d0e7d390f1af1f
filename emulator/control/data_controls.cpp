#include "emulator/control/data_controls.hpp"

#include <chrono>
#include <string>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "emulator/data/values.hpp"

namespace sfstream::emulator::control {
namespace {

transport::http_response json_reply(unsigned status, const std::string& key, const std::string& value, bool ok) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  if (ok) {
    w.Key("ok");
    w.Bool(true);
  }
  if (!key.empty()) {
    w.Key(key.c_str(), static_cast<rapidjson::SizeType>(key.size()));
    w.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
  }
  w.EndObject();
  transport::http_response r;
  r.status = status;
  r.reason = status == 200 ? "OK" : "Bad Request";
  r.headers = {{"Content-Type", "application/json;charset=UTF-8"}};
  r.body = sb.GetString();
  return r;
}

transport::http_response refused(const std::string& why) { return json_reply(400, "error", why, false); }

const rapidjson::Value* member(const rapidjson::Value& body, const char* name) {
  const auto it = body.FindMember(name);
  return it == body.MemberEnd() ? nullptr : &it->value;
}

transport::http_response commit_late(org_emulator& org, const rapidjson::Value& body) {
  const auto* object = member(body, "object");
  const auto* fields = member(body, "fields");
  const auto* id = member(body, "id");
  if (!object || !object->IsString() || !fields || !fields->IsObject() || (id && !id->IsString()))
    return refused("give \"object\" (a name), \"fields\" (an object) and optionally \"id\" (a string)");
  std::chrono::system_clock::time_point stamp;
  if (const auto* ago = member(body, "secondsAgo"); ago && ago->IsNumber() && ago->GetDouble() >= 0) {
    stamp = org.clock().now() -
            std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::duration<double>(ago->GetDouble()));
  } else if (const auto* at = member(body, "systemModstamp"); at && at->IsString()) {
    const auto canonical = data::parse_datetime(at->GetString());
    if (!canonical) return refused("systemModstamp must be a datetime like 2024-05-01T12:00:00.000Z");
    // Compared in milliseconds first: a far future date does not fit a system_clock time point.
    const std::int64_t ms = data::epoch_ms(*canonical);
    if (ms > std::chrono::duration_cast<std::chrono::milliseconds>(org.clock().now().time_since_epoch()).count())
      return refused("INVALID_ARGUMENT: a late commit is stamped before the emulator clock");
    stamp = std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
  } else {
    return refused("give \"secondsAgo\" (0 or more) or \"systemModstamp\"");
  }
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  fields->Accept(w);
  const auto r = org.rest().commit_late(object->GetString(), id ? id->GetString() : "", sb.GetString(), stamp);
  if (!r) return refused(r.error->error_code + ": " + r.error->message);
  return json_reply(200, "id", r.id, true);
}

transport::http_response api_allocation(org_emulator& org, const rapidjson::Value& body) {
  const auto* max = member(body, "max");
  const auto* remaining = member(body, "remaining");
  if (!max || !max->IsUint64() || (remaining && !remaining->IsUint64()))
    return refused("give \"max\" (0: unlimited) and optionally \"remaining\", whole numbers");
  org.rest().set_api_allocation(max->GetUint64(), remaining ? remaining->GetUint64() : max->GetUint64());
  return json_reply(200, {}, {}, true);
}

}  // namespace

std::optional<transport::http_response> handle_data_control(org_emulator& org, std::string_view path,
                                                            const rapidjson::Value& body) {
  if (path == "/_emulator/data/commit-late") return commit_late(org, body);
  if (path == "/_emulator/data/api-allocation") return api_allocation(org, body);
  return std::nullopt;
}

}  // namespace sfstream::emulator::control
