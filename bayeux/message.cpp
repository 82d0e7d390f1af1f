#include "bayeux/message.hpp"
#include "sfstream/detail/json_text.hpp"

#include <charconv>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace sfstream::bayeux {
namespace {

error_info protocol_error(std::string text) {
  error_info e{make_error_code(errc::protocol_error), {}};
  e.diag.server_text = std::move(text);
  e.diag.context = "parsing a Bayeux reply";
  return e;
}

bool is_ws(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::size_t skip_ws(std::string_view s, std::size_t i) noexcept {
  while (i < s.size() && is_ws(s[i])) ++i;
  return i;
}

// Given valid JSON and `i` at the '{' of an object, returns the index one past its '}'.
// String-aware: braces inside strings (and escaped quotes) do not count.
std::size_t object_end(std::string_view s, std::size_t i) noexcept {
  int depth = 0;
  bool in_string = false;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return i + 1;
    }
  }
  return std::string_view::npos;
}

// The slices of the top-level objects of a valid JSON body (an array of objects or a single
// object). Empty when the shape is not that.
std::vector<std::string_view> object_slices(std::string_view body) {
  std::vector<std::string_view> out;
  std::size_t i = skip_ws(body, 0);
  if (i >= body.size()) return out;
  if (body[i] == '{') {
    const auto end = object_end(body, i);
    if (end != std::string_view::npos) out.push_back(body.substr(i, end - i));
    return out;
  }
  if (body[i] != '[') return out;
  i = skip_ws(body, i + 1);
  while (i < body.size() && body[i] != ']') {
    if (body[i] != '{') return {};
    const auto end = object_end(body, i);
    if (end == std::string_view::npos) return {};
    out.push_back(body.substr(i, end - i));
    i = skip_ws(body, end);
    if (i < body.size() && body[i] == ',') i = skip_ws(body, i + 1);
  }
  return out;
}

std::string compact(const rapidjson::Value& v) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  v.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::optional<std::int64_t> int64_of(const rapidjson::Value& v) {
  if (v.IsInt64()) return v.GetInt64();
  if (v.IsString()) {
    std::int64_t out = 0;
    const char* first = v.GetString();
    const char* last = first + v.GetStringLength();
    auto [ptr, ec] = std::from_chars(first, last, out);
    if (ec == std::errc{} && ptr == last && first != last) return out;
  }
  return std::nullopt;
}

std::string string_of(const rapidjson::Value& v) {
  return std::string(v.GetString(), v.GetStringLength());
}

// Reads the typed fields of one message object; returns a text saying what is wrong, or "".
std::string read_fields(const rapidjson::Value& obj, message& m) {
  for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it) {
    const std::string_view key(it->name.GetString(), it->name.GetStringLength());
    const rapidjson::Value& v = it->value;
    if (key == "channel") {
      if (!v.IsString()) return "\"channel\" is not a string";
      m.channel = string_of(v);
    } else if (key == "id") {
      if (v.IsString()) {
        m.id = string_of(v);
      } else if (v.IsNumber()) {
        m.id = compact(v);
      } else if (!v.IsNull()) {
        return "\"id\" is neither a string nor a number";
      }
    } else if (key == "clientId") {
      if (v.IsString()) {
        m.client_id = string_of(v);
      } else if (!v.IsNull()) {
        return "\"clientId\" is not a string";
      }
    } else if (key == "successful") {
      if (!v.IsBool()) return "\"successful\" is not a boolean";
      m.successful = v.GetBool();
    } else if (key == "error") {
      if (v.IsString()) {
        m.error = string_of(v);
      } else if (!v.IsNull()) {
        m.error = compact(v);
      }
    } else if (key == "subscription") {
      if (v.IsString()) {
        m.subscription = string_of(v);
      }
    } else if (key == "advice") {
      if (v.IsNull()) continue;
      if (!v.IsObject()) return "\"advice\" is not an object";
      bayeux::advice a;
      for (auto f = v.MemberBegin(); f != v.MemberEnd(); ++f) {
        const std::string_view name(f->name.GetString(), f->name.GetStringLength());
        const rapidjson::Value& fv = f->value;
        if (name == "reconnect" && fv.IsString()) {
          const auto r = string_of(fv);
          if (r == "retry") a.reconnect = reconnect_advice::retry;
          if (r == "handshake") a.reconnect = reconnect_advice::handshake;
          if (r == "none") a.reconnect = reconnect_advice::none;
        } else if (name == "interval") {
          a.interval = int64_of(fv);
        } else if (name == "timeout") {
          a.timeout = int64_of(fv);
        } else if (name == "multiple-clients" && fv.IsBool()) {
          a.multiple_clients = fv.GetBool();
        }
      }
      m.advice = a;
    } else if (key == "ext") {
      if (v.IsNull()) continue;
      m.ext = compact(v);
      if (v.IsObject()) {
        auto sfdc = v.FindMember("sfdc");
        if (sfdc != v.MemberEnd() && sfdc->value.IsObject()) {
          auto reason = sfdc->value.FindMember("failureReason");
          if (reason != sfdc->value.MemberEnd() && reason->value.IsString()) {
            m.failure_reason = string_of(reason->value);
          }
        }
      }
    } else if (key == "data") {
      m.has_data = true;
      if (v.IsObject()) {
        auto event = v.FindMember("event");
        if (event != v.MemberEnd() && event->value.IsObject()) {
          auto replay = event->value.FindMember("replayId");
          if (replay != event->value.MemberEnd()) {
            m.has_replay_id = true;
            m.replay_id = int64_of(replay->value);
          }
        }
      }
    }
  }
  return {};
}

}  // namespace

bool message::is_meta() const noexcept {
  return channel.size() >= 6 && std::string_view(channel).substr(0, 6) == "/meta/";
}

result<std::vector<message>> parse_reply(std::string_view body) {
  if (body.empty()) return protocol_error("the reply body is empty");
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (doc.HasParseError()) {
    return protocol_error(std::string("the reply is not valid JSON: ") +
                          rapidjson::GetParseError_En(doc.GetParseError()) + " at offset " +
                          std::to_string(doc.GetErrorOffset()));
  }
  if (!doc.IsArray() && !doc.IsObject()) {
    return protocol_error("the reply is neither a JSON array nor an object");
  }
  if (doc.IsArray()) {
    for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
      if (!doc[i].IsObject()) {
        return protocol_error("reply element " + std::to_string(i) + " is not an object");
      }
    }
  }
  const auto slices = object_slices(body);
  const std::size_t count = doc.IsArray() ? doc.Size() : 1;
  if (slices.size() != count) {
    return protocol_error("the reply's message boundaries could not be found");
  }
  std::vector<message> out;
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const rapidjson::Value& obj = doc.IsArray() ? doc[static_cast<rapidjson::SizeType>(i)]
                                                : static_cast<rapidjson::Value&>(doc);
    message m;
    if (auto what = read_fields(obj, m); !what.empty()) {
      return protocol_error("reply element " + std::to_string(i) + ": " + what);
    }
    m.json = std::string(slices[i]);
    out.push_back(std::move(m));
  }
  return out;
}


namespace {

void append_field(std::string& out, std::string_view key, std::string_view value) {
  if (out.size() > 1) out.push_back(',');
  detail::append_json_string(out, key);
  out.push_back(':');
  detail::append_json_string(out, value);
}

}  // namespace

std::string encode_handshake(std::string_view id) {
  std::string out = "{";
  append_field(out, "channel", "/meta/handshake");
  append_field(out, "version", "1.0");
  append_field(out, "minimumVersion", "1.0");
  out += R"(,"supportedConnectionTypes":["long-polling"],"ext":{"replay":true})";
  append_field(out, "id", id);
  out.push_back('}');
  return out;
}

std::string encode_connect(std::string_view client_id, std::string_view id, bool timeout_zero) {
  std::string out = "{";
  append_field(out, "channel", "/meta/connect");
  append_field(out, "clientId", client_id);
  append_field(out, "connectionType", "long-polling");
  if (timeout_zero) out += R"(,"advice":{"timeout":0})";
  append_field(out, "id", id);
  out.push_back('}');
  return out;
}

std::string encode_subscribe(std::string_view client_id, std::string_view channel,
                             std::string_view replay_key, std::int64_t replay_from,
                             std::string_view id) {
  std::string out = "{";
  append_field(out, "channel", "/meta/subscribe");
  append_field(out, "clientId", client_id);
  append_field(out, "subscription", channel);
  out += R"(,"ext":{"replay":{)";
  detail::append_json_string(out, replay_key);
  out.push_back(':');
  out += std::to_string(replay_from);
  out += "}}";
  append_field(out, "id", id);
  out.push_back('}');
  return out;
}

std::string encode_unsubscribe(std::string_view client_id, std::string_view channel,
                               std::string_view id) {
  std::string out = "{";
  append_field(out, "channel", "/meta/unsubscribe");
  append_field(out, "clientId", client_id);
  append_field(out, "subscription", channel);
  append_field(out, "id", id);
  out.push_back('}');
  return out;
}

std::string encode_disconnect(std::string_view client_id, std::string_view id) {
  std::string out = "{";
  append_field(out, "channel", "/meta/disconnect");
  append_field(out, "clientId", client_id);
  append_field(out, "id", id);
  out.push_back('}');
  return out;
}

std::string encode_batch(std::span<const std::string> messages) {
  std::size_t size = 2;
  for (const auto& m : messages) size += m.size() + 1;
  std::string out;
  out.reserve(size);
  out.push_back('[');
  for (std::size_t i = 0; i < messages.size(); ++i) {
    if (i != 0) out.push_back(',');
    out += messages[i];
  }
  out.push_back(']');
  return out;
}

}  // namespace sfstream::bayeux
