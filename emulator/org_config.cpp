// org_options::parse_json_list: the "orgs" part of the emulator config file.
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "emulator/emulator.hpp"

namespace sfstream::emulator {

std::optional<std::vector<org_options>> org_options::parse_json_list(const std::string& json,
                                                                     error_info* why) {
  auto fail = [&](const std::string& text) -> std::optional<std::vector<org_options>> {
    if (why) {
      why->code = make_error_code(errc::invalid_config);
      why->diag.context = "reading the emulator orgs config";
      why->diag.server_text = text;
    }
    return std::nullopt;
  };
  rapidjson::Document doc;
  doc.Parse(json.c_str(), json.size());
  if (doc.HasParseError())
    return fail(std::string("not JSON: ") + rapidjson::GetParseError_En(doc.GetParseError()));
  if (!doc.IsObject()) return fail("the config must be a JSON object");
  std::vector<org_options> out;
  auto list = doc.FindMember("orgs");
  if (list == doc.MemberEnd()) return out;
  if (!list->value.IsArray()) return fail("orgs must be an array");
  for (const auto& o : list->value.GetArray()) {
    if (!o.IsObject()) return fail("each org must be an object");
    auto text = [&](const rapidjson::Value& v, const char* key) -> std::optional<std::string> {
      auto it = v.FindMember(key);
      if (it == v.MemberEnd() || !it->value.IsString()) return std::nullopt;
      return std::string(it->value.GetString(), it->value.GetStringLength());
    };
    org_options org;
    auto name = text(o, "name");
    if (!name || name->empty()) return fail("each org needs a non-empty string \"name\"");
    org.name = *name;
    const std::string where = "org '" + org.name + "': ";
    auto id = text(o, "orgId");
    if (!id || (id->size() != 15 && id->size() != 18))
      return fail(where + "\"orgId\" must be a 15- or 18-character org id");
    org.org_id = *id;
    auto users = o.FindMember("users");
    if (users == o.MemberEnd() || !users->value.IsArray() || users->value.Empty())
      return fail(where + "\"users\" must be a non-empty array");
    for (const auto& u : users->value.GetArray()) {
      if (!u.IsObject()) return fail(where + "each user must be an object");
      emulator_user user;
      auto username = text(u, "username");
      auto password = text(u, "password");
      auto user_id = text(u, "userId");
      if (!username || !password || !user_id)
        return fail(where + "each user needs string \"username\", \"password\" and \"userId\"");
      user.username = *username;
      user.password = *password;
      user.user_id = *user_id;
      user.security_token = text(u, "securityToken").value_or("");
      auto trusted = u.FindMember("trustedIp");
      if (trusted != u.MemberEnd()) {
        if (!trusted->value.IsBool()) return fail(where + "\"trustedIp\" must be a boolean");
        user.trusted_ip = trusted->value.GetBool();
      }
      org.users.push_back(std::move(user));
    }
    for (const char* key : {"dailyEventLimit", "concurrentClientLimit", "port"}) {
      auto it = o.FindMember(key);
      if (it == o.MemberEnd()) continue;
      if (!it->value.IsUint64()) return fail(where + "\"" + key + "\" must be a whole number");
      const std::uint64_t v = it->value.GetUint64();
      if (std::string_view(key) == "dailyEventLimit") org.daily_event_limit = v;
      if (std::string_view(key) == "concurrentClientLimit") org.concurrent_client_limit = v;
      if (std::string_view(key) == "port") {
        if (v > 65535) return fail(where + "\"port\" must be at most 65535");
        org.port = static_cast<std::uint16_t>(v);
      }
    }
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    o.Accept(w);
    error_info data_why;
    auto data = data::data_options::parse_json(sb.GetString(), &data_why);
    if (!data) return fail(where + data_why.diag.server_text);
    org.data = std::move(*data);
    out.push_back(std::move(org));
  }
  return out;
}

}  // namespace sfstream::emulator
