#include "src/auth/oauth_reply.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include "sfstream/detail/redact.hpp"

namespace sfstream::auth {
namespace {

constexpr std::string_view context_text = "OAuth token request";

std::string_view trim(std::string_view text) noexcept {
  constexpr std::string_view space = " \t\r\n";
  const auto first = text.find_first_not_of(space);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(space) - first + 1);
}

// Printable ASCII, bounded: server text fit for a one-line diagnostic.
std::string sanitize(std::string_view text, std::size_t limit = 300) {
  std::string out;
  for (char c : trim(text)) {
    if (out.size() >= limit) {
      out += "...";
      break;
    }
    const auto byte = static_cast<unsigned char>(c);
    out += (byte >= 0x20 && byte != 0x7f) ? c : ' ';
  }
  return detail::redact_known_patterns(out);
}

error_info bad_response(unsigned http_status, std::string text) {
  error_info info{make_error_code(errc::auth_bad_response), {}};
  info.diag.context = std::string(context_text);
  if (http_status != 0) info.diag.server_code = "HTTP " + std::to_string(http_status);
  info.diag.server_text = std::move(text);
  return info;
}

std::string string_member(const rapidjson::Value& object, const char* name) {
  auto it = object.FindMember(name);
  if (it == object.MemberEnd() || !it->value.IsString()) return {};
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

bool looks_like_html(std::string_view body) {
  const std::string_view head = trim(body).substr(0, 64);
  std::string lower;
  for (char c : head) lower += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  return lower.starts_with("<!doctype html") || lower.starts_with("<html") ||
         lower.starts_with("<?xml");
}

}  // namespace

bool parse_identity_url(std::string_view id_url, std::string& organization_id,
                        std::string& user_id) {
  const auto marker = id_url.rfind("/id/");
  if (marker == std::string_view::npos) return false;
  std::string_view rest = id_url.substr(marker + 4);
  rest = rest.substr(0, rest.find_first_of("?#"));
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos) return false;
  const std::string_view org = rest.substr(0, slash);
  const std::string_view user = rest.substr(slash + 1);
  auto is_id = [](std::string_view v) {
    if (v.size() != 15 && v.size() != 18) return false;
    for (char c : v) {
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
        return false;
    }
    return true;
  };
  if (!is_id(org) || !is_id(user)) return false;
  organization_id = std::string(org);
  user_id = std::string(user);
  return true;
}

error_info parse_oauth_reply(std::string_view body, unsigned http_status, oauth_token& token) {
  if (trim(body).empty()) return bad_response(http_status, "the token reply is empty");
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (doc.HasParseError()) {
    if (looks_like_html(body))
      return bad_response(http_status, "the token reply is an HTML or XML page, not JSON");
    return bad_response(http_status, std::string("the token reply is not valid JSON (") +
                                         rapidjson::GetParseError_En(doc.GetParseError()) +
                                         " at offset " + std::to_string(doc.GetErrorOffset()) +
                                         "); it may be truncated");
  }

  // Some Salesforce endpoints answer errors as [{"errorCode": ..., "message": ...}].
  if (doc.IsArray() && !doc.Empty() && doc[0].IsObject() && doc[0].HasMember("errorCode")) {
    error_info info{make_error_code(errc::auth_oauth_error), {}};
    info.diag.context = std::string(context_text);
    info.diag.server_code = sanitize(string_member(doc[0], "errorCode"), 80);
    info.diag.server_text = sanitize(string_member(doc[0], "message"));
    return info;
  }
  if (!doc.IsObject())
    return bad_response(http_status, "the token reply is JSON but not an object");

  if (doc.HasMember("error")) {
    error_info info{make_error_code(errc::auth_oauth_error), {}};
    info.diag.context = std::string(context_text);
    info.diag.server_code = sanitize(string_member(doc, "error"), 80);
    if (info.diag.server_code.empty()) info.diag.server_code = "(unnamed error)";
    info.diag.server_text = sanitize(string_member(doc, "error_description"));
    return info;
  }

  oauth_token out;
  out.access_token = string_member(doc, "access_token");
  out.instance_url = string_member(doc, "instance_url");
  while (!out.instance_url.empty() && out.instance_url.back() == '/') out.instance_url.pop_back();
  out.id = string_member(doc, "id");
  out.token_type = string_member(doc, "token_type");
  if (out.token_type.empty()) out.token_type = "Bearer";
  out.issued_at = string_member(doc, "issued_at");
  out.signature = string_member(doc, "signature");
  out.refresh_token = string_member(doc, "refresh_token");
  out.scope = string_member(doc, "scope");
  if (out.access_token.empty()) {
    return bad_response(http_status, "the token reply has neither an access_token nor an error");
  }
  if (!(out.instance_url.starts_with("https://") || out.instance_url.starts_with("http://")) ||
      out.instance_url.find_first_of(" \t\r\n") != std::string::npos) {
    return bad_response(http_status,
                        "the token reply has no usable instance_url (an absolute https URL)");
  }
  parse_identity_url(out.id, out.organization_id, out.user_id);
  token = std::move(out);
  return {};
}

}  // namespace sfstream::auth
