#include "emulator/cometd/bayeux_replies.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace sfstream::emulator::cometd {

namespace {

using writer = rapidjson::Writer<rapidjson::StringBuffer>;

void put(writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}
void key(writer& w, std::string_view s) {
  w.Key(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}
void raw(writer& w, std::string_view json, rapidjson::Type type) {
  w.RawValue(json.data(), json.size(), type);
}

void put_id(writer& w, const message_id& id) {
  if (!id.json.empty()) {
    key(w, "id");
    raw(w, id.json, id.type);
  }
}

}  // namespace

message_id read_id(const rapidjson::Value& message) {
  message_id id;
  auto it = message.FindMember("id");
  if (it == message.MemberEnd() || it->value.IsNull()) {
    return id;
  }
  if (it->value.IsString() || it->value.IsNumber()) {
    rapidjson::StringBuffer sb;
    writer w(sb);
    it->value.Accept(w);
    id.json = sb.GetString();
    id.type = it->value.GetType();
  }
  return id;
}

std::string string_member(const rapidjson::Value& v, const char* name) {
  auto it = v.FindMember(name);
  if (it == v.MemberEnd() || !it->value.IsString()) {
    return {};
  }
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

std::string build_reply(std::string_view client_id, std::string_view channel, const message_id& id,
                        const std::string* subscription, std::string_view error, advice_kind advice,
                        std::string_view failure_reason, std::chrono::milliseconds timeout) {
  rapidjson::StringBuffer sb;
  writer w(sb);
  w.StartObject();
  if (!client_id.empty()) {
    key(w, "clientId");
    put(w, client_id);
  }
  if (advice == advice_kind::multiple_clients) {
    // As captured:
    // {"interval":2000,"multiple-clients":true,"reconnect":"retry","timeout":110000}.
    key(w, "advice");
    w.StartObject();
    key(w, "interval");
    w.Int(2000);
    key(w, "multiple-clients");
    w.Bool(true);
    key(w, "reconnect");
    put(w, "retry");
    key(w, "timeout");
    w.Int64(timeout.count());
    w.EndObject();
  }
  if (advice == advice_kind::retry_first) {
    key(w, "advice");
    w.StartObject();
    key(w, "interval");
    w.Int(0);
    key(w, "timeout");
    w.Int64(timeout.count());
    key(w, "reconnect");
    put(w, "retry");
    w.EndObject();
  }
  key(w, "channel");
  put(w, channel);
  put_id(w, id);
  if (subscription != nullptr) {
    key(w, "subscription");
    put(w, *subscription);
  }
  if (!failure_reason.empty()) {
    key(w, "ext");
    w.StartObject();
    key(w, "sfdc");
    w.StartObject();
    key(w, "failureReason");
    put(w, failure_reason);
    w.EndObject();
    w.EndObject();
  }
  if (!error.empty()) {
    key(w, "error");
    put(w, error);
  }
  if (advice == advice_kind::stop) {
    key(w, "advice");
    w.StartObject();
    key(w, "reconnect");
    put(w, "none");
    key(w, "interval");
    w.Int(0);
    w.EndObject();
  }
  key(w, "successful");
  w.Bool(error.empty());
  w.EndObject();
  return sb.GetString();
}


std::string build_handshake_denied(const message_id& id, std::string_view reason) {
  rapidjson::StringBuffer sb;
  writer w(sb);
  w.StartObject();
  key(w, "ext");
  w.StartObject();
  key(w, "sfdc");
  w.StartObject();
  key(w, "failureReason");
  put(w, reason);
  w.EndObject();
  key(w, "replay");
  w.Bool(true);
  key(w, "payload.format");
  w.Bool(true);
  w.EndObject();
  key(w, "advice");
  w.StartObject();
  key(w, "reconnect");
  put(w, "none");
  w.EndObject();
  key(w, "channel");
  put(w, "/meta/handshake");
  put_id(w, id);
  key(w, "error");
  put(w, "403::Handshake denied");
  key(w, "successful");
  w.Bool(false);
  w.EndObject();
  return sb.GetString();
}


std::string build_handshake(const message_id& id, std::string_view client_id) {
  rapidjson::StringBuffer sb;
  writer w(sb);
  w.StartObject();
  key(w, "ext");
  w.StartObject();
  key(w, "replay");
  w.Bool(true);
  key(w, "payload.format");
  w.Bool(true);
  w.EndObject();
  key(w, "minimumVersion");
  put(w, "1.0");
  key(w, "clientId");
  put(w, client_id);
  key(w, "supportedConnectionTypes");
  w.StartArray();
  put(w, "long-polling");
  w.EndArray();
  key(w, "channel");
  put(w, "/meta/handshake");
  put_id(w, id);
  key(w, "version");
  put(w, "1.0");
  key(w, "successful");
  w.Bool(true);
  w.EndObject();
  return sb.GetString();
}

std::string build_unknown_client(std::string_view channel, const message_id& id,
                                 std::string_view reconnect, std::string_view client_id) {
  rapidjson::StringBuffer sb;
  writer w(sb);
  w.StartObject();
  if (!client_id.empty()) {
    key(w, "clientId");
    put(w, client_id);
  }
  key(w, "advice");
  w.StartObject();
  key(w, "interval");
  w.Int(0);
  key(w, "reconnect");
  put(w, reconnect);
  w.EndObject();
  key(w, "channel");
  put(w, channel);
  put_id(w, id);
  key(w, "error");
  put(w, "403::Unknown client");
  key(w, "successful");
  w.Bool(false);
  w.EndObject();
  return sb.GetString();
}


std::string build_server_disconnect(std::string_view client_id) {
  rapidjson::StringBuffer sb;
  writer w(sb);
  w.StartObject();
  key(w, "channel");
  put(w, "/meta/disconnect");
  key(w, "clientId");
  put(w, client_id);
  key(w, "successful");
  w.Bool(true);
  w.EndObject();
  return sb.GetString();
}


std::string build_disconnect_reply(std::string_view client_id, const message_id& id) {
  rapidjson::StringBuffer sb;
  writer w(sb);
  w.StartObject();
  key(w, "channel");
  put(w, "/meta/disconnect");
  key(w, "clientId");
  put(w, client_id);
  put_id(w, id);
  key(w, "successful");
  w.Bool(true);
  w.EndObject();
  return sb.GetString();
}

std::string join_messages(const std::vector<std::string>& parts) {
  std::string body = "[";
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i != 0) body += ',';
    body += parts[i];
  }
  body += ']';
  return body;
}


transport::http_response json_http(unsigned status, std::string reason, std::string body) {
  transport::http_response r;
  r.status = status;
  r.reason = std::move(reason);
  r.headers = {{"Content-Type", "application/json;charset=UTF-8"}};
  r.body = std::move(body);
  return r;
}

transport::http_response bayeux_http(const std::vector<std::string>& parts,
                                     const std::vector<std::string>& cookies) {
  auto r = json_http(200, "OK", join_messages(parts));
  for (const auto& c : cookies) r.headers.emplace_back("Set-Cookie", c);
  return r;
}

transport::http_response http_503_page() {
  transport::http_response r;
  r.status = 503;
  r.reason = "Service Unavailable";
  r.headers = {{"Content-Type", "text/html;charset=UTF-8"}};
  r.body = "<html><body><h1>503 Service Unavailable</h1></body></html>";
  return r;
}

}  // namespace sfstream::emulator::cometd
