#include "emulator/control/control_api.hpp"

#include <optional>
#include <string_view>
#include <variant>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "emulator/cometd/cometd_server.hpp"
#include "emulator/control/data_controls.hpp"

namespace sfstream::emulator::control {

namespace {

transport::http_response reply(unsigned status, std::string body) {
  transport::http_response r;
  r.status = status;
  r.reason = status == 200   ? "OK"
             : status == 400 ? "Bad Request"
             : status == 404 ? "Not Found"
                             : "Method Not Allowed";
  r.headers = {{"Content-Type", "application/json;charset=UTF-8"}};
  r.body = std::move(body);
  return r;
}

transport::http_response bad(std::string_view why) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("error");
  w.String(why.data(), static_cast<rapidjson::SizeType>(why.size()));
  w.EndObject();
  return reply(400, sb.GetString());
}

transport::http_response ok(std::string_view extra_key = {}, std::string_view extra_value = {}) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("ok");
  w.Bool(true);
  if (!extra_key.empty()) {
    w.Key(extra_key.data(), static_cast<rapidjson::SizeType>(extra_key.size()));
    w.String(extra_value.data(), static_cast<rapidjson::SizeType>(extra_value.size()));
  }
  w.EndObject();
  return reply(200, sb.GetString());
}

std::optional<std::int64_t> int_field(const rapidjson::Value& body, const char* name) {
  auto it = body.FindMember(name);
  if (it == body.MemberEnd() || !it->value.IsInt64()) return std::nullopt;
  return it->value.GetInt64();
}

std::string string_field(const rapidjson::Value& body, const char* name) {
  auto it = body.FindMember(name);
  if (it == body.MemberEnd() || !it->value.IsString()) return {};
  return it->value.GetString();
}

/// Reads a non-negative count (default 1 when absent).
std::optional<std::size_t> count_field(const rapidjson::Value& body) {
  if (!body.HasMember("count")) return 1;
  auto n = int_field(body, "count");
  if (!n || *n < 0) return std::nullopt;
  return static_cast<std::size_t>(*n);
}

/// Decodes standard base64 (padding optional); nullopt for any other character.
std::optional<std::string> decode_base64(std::string_view text) {
  std::string out;
  unsigned value = 0;
  int bits = 0;
  for (char ch : text) {
    if (ch == '=') break;
    int digit = -1;
    if (ch >= 'A' && ch <= 'Z')
      digit = ch - 'A';
    else if (ch >= 'a' && ch <= 'z')
      digit = ch - 'a' + 26;
    else if (ch >= '0' && ch <= '9')
      digit = ch - '0' + 52;
    else if (ch == '+')
      digit = 62;
    else if (ch == '/')
      digit = 63;
    if (digit < 0) return std::nullopt;
    value = (value << 6) | static_cast<unsigned>(digit);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((value >> bits) & 0xFFu);
    }
  }
  return out;
}

/// Replaces every `placeholder` in `text` by `value`.
std::string substitute(std::string text, std::string_view placeholder, std::string_view value) {
  for (auto at = text.find(placeholder); at != std::string::npos;
       at = text.find(placeholder, at + value.size())) {
    text.replace(at, placeholder.size(), value);
  }
  return text;
}

/// The reply fault a /_emulator/faults/event-reply body asks for, or the reason it is refused.
std::variant<fault, std::string> parse_reply_fault(const rapidjson::Value& body) {
  static const std::pair<std::string_view, fault_kind> kinds[] = {
      {"cut", fault_kind::cut},
      {"reset", fault_kind::reset},
      {"hold", fault_kind::hold},
      {"oversize", fault_kind::oversize},
      {"malformed", fault_kind::malformed},
      {"unknown-client", fault_kind::unknown_client},
      {"401", fault_kind::unauthorized},
      {"503", fault_kind::http_503},
      {"too-busy", fault_kind::too_busy},
      {"disconnect", fault_kind::disconnect},
      {"rotate-affinity", fault_kind::rotate_affinity}};
  const std::string kind = string_field(body, "kind");
  fault fault;
  bool known = false;
  for (const auto& [name, k] : kinds) {
    if (kind == name) {
      fault.kind = k;
      known = true;
    }
  }
  if (!known) {
    return std::string(
        "kind must be cut, reset, hold, oversize, malformed, unknown-client, 401, 503, too-busy, "
        "disconnect or rotate-affinity");
  }
  if (fault.kind == fault_kind::cut ||
      fault.kind == fault_kind::oversize) {
    auto bytes = int_field(body, "bytes");
    if (!bytes || *bytes < 0) return std::string("bytes must be a non-negative integer");
    fault.bytes = static_cast<std::size_t>(*bytes);
  }
  if (fault.kind == fault_kind::hold) {
    auto ms = int_field(body, "milliseconds");
    if (!ms || *ms <= 0) return std::string("milliseconds must be a positive integer");
    fault.delay = std::chrono::milliseconds{*ms};
  }
  if (fault.kind == fault_kind::malformed)
    fault.message = string_field(body, "message");
  return fault;
}

transport::http_response data_result(const data::op_result& r) {
  if (!r) return bad(r.error->error_code + ": " + r.error->message);
  return ok("id", r.id);
}

}  // namespace

transport::http_response handle_control(org_emulator& org, const transport::http_request& request) {
  std::string_view path = request.target;
  path = path.substr(0, path.find('?'));
  if (path == "/_emulator/status" && request.method == "GET") {
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    w.StartObject();
    w.Key("clients");
    w.Uint64(org.client_count());
    w.Key("clockOffsetMs");
    w.Int64(org.clock().offset().count());
    w.Key("pendingReplyFaults");
    w.Uint64(org.cometd().pending_reply_faults());
    w.Key("spoiledEvents");
    w.Uint64(org.cometd().spoiled_events());
    w.EndObject();
    return reply(200, sb.GetString());
  }
  if (request.method != "POST") {
    return reply(405, R"({"error":"control endpoints accept POST only"})");
  }
  rapidjson::Document body;
  if (request.body.empty()) {
    body.SetObject();
  } else if (body.Parse(request.body.c_str(), request.body.size()).HasParseError() ||
             !body.IsObject()) {
    return bad("the body must be a JSON object");
  }

  if (path == "/_emulator/clock/advance") {
    std::int64_t ms = 0;
    if (auto v = int_field(body, "milliseconds")) ms += *v;
    if (auto v = int_field(body, "seconds")) ms += *v * 1000;
    if (auto v = int_field(body, "hours")) ms += *v * 3'600'000;
    if (ms <= 0) return bad("give a positive milliseconds, seconds or hours");
    org.advance_clock(std::chrono::milliseconds{ms});
    return ok();
  }
  if (path == "/_emulator/sessions/expire") {
    org.expire_all_sessions();
    return ok();
  }
  if (path == "/_emulator/cometd/forget-clients") {
    org.forget_all_clients();
    return ok();
  }
  if (path == "/_emulator/cometd/rotate-affinity") {
    org.rotate_affinity_cookie();
    return ok();
  }
  if (path == "/_emulator/cometd/daily-event-limit") {
    auto limit = int_field(body, "limit");
    if (!limit || *limit < 0) return bad("limit must be a non-negative integer (0: unlimited)");
    const bool reset = body.HasMember("reset") && body["reset"].IsBool() && body["reset"].GetBool();
    org.cometd().set_daily_event_limit(static_cast<std::uint64_t>(*limit), reset);
    return ok();
  }
  if (path == "/_emulator/cometd/disconnect") {
    org.disconnect_all_clients();
    return ok();
  }
  if (path == "/_emulator/faults/drop-connections") {
    auto n = count_field(body);
    if (!n) return bad("count must be a non-negative integer");
    org.drop_next_connections(*n);
    return ok();
  }
  if (path == "/_emulator/faults/cometd") {
    auto n = count_field(body);
    if (!n) return bad("count must be a non-negative integer");
    const std::string kind = string_field(body, "kind");
    if (kind == "503") {
      org.fail_next_cometd_requests(*n, fault_kind::http_503);
    } else if (kind == "not-json") {
      org.fail_next_cometd_requests(*n, fault_kind::not_json);
    } else {
      return bad("kind must be \"503\" or \"not-json\"");
    }
    return ok();
  }
  if (path == "/_emulator/faults/delay") {
    auto ms = int_field(body, "milliseconds");
    if (!ms || *ms < 0) return bad("milliseconds must be a non-negative integer");
    org.set_reply_delay(std::chrono::milliseconds{*ms});
    return ok();
  }
  if (path == "/_emulator/faults/too-busy") {
    auto n = count_field(body);
    if (!n) return bad("count must be a non-negative integer");
    org.make_too_busy(*n);
    return ok();
  }
  if (path == "/_emulator/faults/bayeux") {
    static const std::pair<std::string_view, fault_kind> kinds[] = {
        {"too-busy", fault_kind::too_busy},
        {"connection-limit", fault_kind::connection_limit},
        {"multiple-clients", fault_kind::multiple_clients},
        {"unknown-client-final", fault_kind::unknown_client_final},
        {"unknown-client-page", fault_kind::unknown_client_page},
        {"session-user-mismatch", fault_kind::session_user_mismatch},
        {"bare-subscribe-failure", fault_kind::bare_subscribe_failure},
        {"invalid-replay-id", fault_kind::invalid_replay_id},
        {"unanswered-disconnect", fault_kind::unanswered_disconnect}};
    auto n = count_field(body);
    if (!n) return bad("count must be a non-negative integer");
    const std::string kind = string_field(body, "kind");
    for (const auto& [name, fault] : kinds) {
      if (kind == name) {
        org.inject_bayeux_fault(fault, *n);
        return ok();
      }
    }
    return bad(
        "kind must be too-busy, connection-limit, multiple-clients, unknown-client-final, "
        "unknown-client-page, session-user-mismatch, bare-subscribe-failure, invalid-replay-id or "
        "unanswered-disconnect");
  }
  if (path == "/_emulator/faults/event-reply") {
    auto n = count_field(body);
    if (!n) return bad("count must be a non-negative integer");
    auto parsed = parse_reply_fault(body);
    if (auto* why = std::get_if<std::string>(&parsed)) return bad(*why);
    org.cometd().spoil_next_event_replies(std::get<fault>(std::move(parsed)), *n);
    return ok();
  }
  if (path == "/_emulator/cometd/publish-raw") {
    const std::string channel = string_field(body, "channel");
    if (channel.empty() || channel.front() != '/')
      return bad("channel must be a channel name such as /u/Hostile");
    std::string data;
    if (body.HasMember("data_base64")) {
      auto decoded = decode_base64(string_field(body, "data_base64"));
      if (!decoded) return bad("data_base64 must be base64 text");
      data = std::move(*decoded);
    } else if (body.HasMember("data") && body["data"].IsString()) {
      data.assign(body["data"].GetString(), body["data"].GetStringLength());
    } else {
      return bad(
          "data (a string holding the raw JSON text of the data object) or data_base64 is "
          "required");
    }
    auto n = count_field(body);
    if (!n || *n == 0 || *n > 100'000) return bad("count must be an integer from 1 to 100000");
    std::size_t pad = 0;
    if (body.HasMember("pad_bytes")) {
      auto p = int_field(body, "pad_bytes");
      if (!p || *p < 0 || *p > 64 * 1024 * 1024)
        return bad("pad_bytes must be an integer from 0 to 67108864");
      pad = static_cast<std::size_t>(*p);
    }
    const std::string padded = substitute(data, "{{pad}}", std::string(pad, 'x'));
    std::vector<std::int64_t> ids;
    for (std::size_t i = 0; i < *n; ++i) {
      ids.push_back(
          org.cometd().publish_raw(channel, substitute(padded, "{{index}}", std::to_string(i))));
    }
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    w.StartObject();
    w.Key("ok");
    w.Bool(true);
    w.Key("replayIds");
    w.StartArray();
    for (auto id : ids) w.Int64(id);
    w.EndArray();
    w.EndObject();
    return reply(200, sb.GetString());
  }
  if (path == "/_emulator/cdc/gap") {
    const std::string entity = string_field(body, "entity");
    const std::string type = string_field(body, "changeType");
    std::vector<std::string> ids;
    auto it = body.FindMember("ids");
    if (it != body.MemberEnd() && it->value.IsArray()) {
      for (const auto& v : it->value.GetArray()) {
        if (!v.IsString()) return bad("ids must be strings");
        ids.emplace_back(v.GetString());
      }
    }
    if (entity.empty()) return bad("entity is required");
    if (type == "GAP_OVERFLOW") return data_result(org.rest().emit_overflow(entity));
    data::gap_type gap{};
    if (type == "GAP_CREATE")
      gap = data::gap_type::gap_create;
    else if (type == "GAP_UPDATE")
      gap = data::gap_type::gap_update;
    else if (type == "GAP_DELETE")
      gap = data::gap_type::gap_delete;
    else if (type == "GAP_UNDELETE")
      gap = data::gap_type::gap_undelete;
    else
      return bad(
          "changeType must be GAP_CREATE, GAP_UPDATE, GAP_DELETE, GAP_UNDELETE or GAP_OVERFLOW");
    return data_result(org.rest().emit_gap_events(entity, ids, gap));
  }
  if (path == "/_emulator/cdc/overflow") {
    const std::string entity = string_field(body, "entity");
    if (entity.empty()) return bad("entity is required");
    return data_result(org.rest().emit_overflow(entity));
  }
  if (path == "/_emulator/cdc/bulk-change") {
    const std::string entity = string_field(body, "entity");
    auto n = int_field(body, "count");
    if (entity.empty() || !n || *n <= 0) return bad("entity and a positive count are required");
    return data_result(org.rest().bulk_change(entity, static_cast<std::size_t>(*n)));
  }
  if (auto answer = handle_data_control(org, path, body)) return std::move(*answer);
  return reply(404, R"({"error":"unknown control path"})");
}

}  // namespace sfstream::emulator::control
