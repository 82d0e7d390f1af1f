#include "soap_auth/login_response.hpp"

#include <array>
#include <charconv>
#include <cstring>

#include <tinyxml2.h>

#include "sfstream/detail/redact.hpp"

namespace sfstream::soap_auth {
namespace {

using tinyxml2::XMLElement;

constexpr std::string_view context_text = "SOAP login";

std::string_view local_name(const char* name) noexcept {
  std::string_view text = name ? name : "";
  if (auto colon = text.rfind(':'); colon != std::string_view::npos) text.remove_prefix(colon + 1);
  return text;
}

const XMLElement* child(const XMLElement* parent, std::string_view local) noexcept {
  if (!parent) return nullptr;
  for (const XMLElement* e = parent->FirstChildElement(); e; e = e->NextSiblingElement()) {
    if (local_name(e->Name()) == local) return e;
  }
  return nullptr;
}

std::string_view trim(std::string_view text) noexcept {
  constexpr std::string_view space = " \t\r\n";
  const auto first = text.find_first_not_of(space);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(space) - first + 1);
}

bool is_nil(const XMLElement* e) noexcept {
  for (const tinyxml2::XMLAttribute* a = e->FirstAttribute(); a; a = a->Next()) {
    if (local_name(a->Name()) == "nil") {
      std::string_view value = trim(a->Value() ? a->Value() : "");
      return value == "true" || value == "1";
    }
  }
  return false;
}

// The element's text (all text children joined), trimmed; empty for nil or absent elements.
std::string text_of(const XMLElement* e) {
  if (!e || is_nil(e)) return {};
  std::string text;
  for (const tinyxml2::XMLNode* n = e->FirstChild(); n; n = n->NextSibling()) {
    if (const auto* t = n->ToText()) text += t->Value() ? t->Value() : "";
  }
  return std::string(trim(text));
}

bool bool_of(const XMLElement* e) {
  return text_of(e) == "true" || text_of(e) == "1";
}

error_info bad_response(unsigned http_status, std::string text) {
  error_info info{make_error_code(errc::auth_bad_response), {}};
  info.diag.context = std::string(context_text);
  if (http_status != 0) info.diag.server_code = "HTTP " + std::to_string(http_status);
  info.diag.server_text = std::move(text);
  return info;
}

char lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::size_t ifind(std::string_view haystack, std::string_view needle) noexcept {
  if (needle.size() > haystack.size()) return std::string_view::npos;
  for (std::size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    bool match = true;
    for (std::size_t j = 0; j < needle.size() && match; ++j)
      match = lower(haystack[i + j]) == lower(needle[j]);
    if (match) return i;
  }
  return std::string_view::npos;
}

// Printable ASCII only, at most 120 characters: a server's page title for the diagnostics.
std::string sanitize_short(std::string_view text) {
  std::string out;
  for (char c : trim(text)) {
    if (out.size() >= 120) {
      out += "...";
      break;
    }
    const auto byte = static_cast<unsigned char>(c);
    out += (byte >= 0x20 && byte < 0x7f) ? c : ' ';
  }
  return out;
}

error_info describe_unparsable(std::string_view body, unsigned http_status,
                               const tinyxml2::XMLDocument& doc) {
  if (trim(body).empty()) return bad_response(http_status, "the login reply is empty");
  if (ifind(body.substr(0, 4096), "<html") != std::string_view::npos ||
      ifind(body.substr(0, 4096), "<!doctype html") != std::string_view::npos) {
    std::string text = "the login reply is an HTML page, not a SOAP envelope";
    const auto open = ifind(body, "<title>");
    if (open != std::string_view::npos) {
      const auto close = ifind(body.substr(open + 7), "</title>");
      if (close != std::string_view::npos) {
        const std::string title = sanitize_short(body.substr(open + 7, close));
        if (!title.empty()) text += " (title: \"" + detail::redact_known_patterns(title) + "\")";
      }
    }
    return bad_response(http_status, std::move(text));
  }
  std::string text = "the login reply is not well-formed XML (";
  text += doc.ErrorName() ? doc.ErrorName() : "parse error";
  text += " at line " + std::to_string(doc.ErrorLineNum()) + "); it may be truncated";
  return bad_response(http_status, std::move(text));
}

error_info parse_fault(const XMLElement* fault) {
  std::string code = text_of(child(fault, "faultcode"));
  if (auto colon = code.rfind(':'); colon != std::string::npos) code.erase(0, colon + 1);
  std::string message;
  if (const XMLElement* detail = child(fault, "detail")) {
    for (const XMLElement* d = detail->FirstChildElement(); d; d = d->NextSiblingElement()) {
      std::string exception_code = text_of(child(d, "exceptionCode"));
      if (!exception_code.empty()) {
        code = std::move(exception_code);
        message = text_of(child(d, "exceptionMessage"));
        break;
      }
    }
  }
  std::string faultstring = text_of(child(fault, "faultstring"));
  if (faultstring.empty()) faultstring = std::move(message);

  error_info info{make_error_code(login_fault_errc(code)), {}};
  info.diag.context = std::string(context_text);
  info.diag.server_code = code.empty() ? std::string("(no fault code)") : code;
  info.diag.server_text = detail::redact_known_patterns(faultstring);
  return info;
}

// scheme://host[:port] of an absolute http(s) URL, or empty if it is not one.
std::string origin_of(std::string_view url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return {};
  std::string scheme;
  for (char c : url.substr(0, scheme_end)) scheme += lower(c);
  if (scheme != "https" && scheme != "http") return {};
  const std::string_view rest = url.substr(scheme_end + 3);
  const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.empty() || authority.find('@') != std::string_view::npos) return {};
  for (char c : authority) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) return {};
  }
  return scheme + "://" + std::string(authority);
}

}  // namespace

errc login_fault_errc(std::string_view code) noexcept {
  struct entry {
    std::string_view code;
    errc value;
  };
  static constexpr std::array<entry, 6> table{{
      {"INVALID_LOGIN", errc::auth_invalid_login},
      {"LOGIN_MUST_USE_SECURITY_TOKEN", errc::auth_must_use_security_token},
      {"INVALID_SESSION_ID", errc::auth_invalid_session},
      {"API_DISABLED_FOR_ORG", errc::auth_api_disabled},
      {"UNSUPPORTED_API_VERSION", errc::auth_unsupported_api_version},
      {"INVALID_OPERATION", errc::auth_login_unavailable},
  }};
  for (const auto& e : table) {
    if (e.code == code) return e.value;
  }
  return errc::auth_fault;
}

error_info parse_login_response(std::string_view body, unsigned http_status, login_result& result) {
  tinyxml2::XMLDocument doc(/*processEntities=*/true, tinyxml2::PRESERVE_WHITESPACE);
  if (doc.Parse(body.data(), body.size()) != tinyxml2::XML_SUCCESS) {
    return describe_unparsable(body, http_status, doc);
  }
  const XMLElement* root = doc.RootElement();
  if (!root) return describe_unparsable(body, http_status, doc);
  const std::string_view root_name = local_name(root->Name());
  if (root_name == "html" || root_name == "HTML")
    return describe_unparsable(body, http_status, doc);
  if (root_name != "Envelope") {
    return bad_response(http_status, "the login reply is XML but not a SOAP envelope (root <" +
                                         sanitize_short(root_name) + ">)");
  }
  const XMLElement* body_element = child(root, "Body");
  if (!body_element) return bad_response(http_status, "the SOAP envelope has no Body");
  const XMLElement* payload = body_element->FirstChildElement();
  if (!payload) return bad_response(http_status, "the SOAP Body is empty");
  if (local_name(payload->Name()) == "Fault") return parse_fault(payload);
  if (local_name(payload->Name()) != "loginResponse") {
    return bad_response(http_status, "the SOAP Body holds <" +
                                         sanitize_short(local_name(payload->Name())) +
                                         "> instead of a loginResponse or a Fault");
  }
  const XMLElement* r = child(payload, "result");
  if (!r) return bad_response(http_status, "the loginResponse has no result");

  login_result out;
  out.session_id = text_of(child(r, "sessionId"));
  out.server_url = text_of(child(r, "serverUrl"));
  out.metadata_server_url = text_of(child(r, "metadataServerUrl"));
  out.password_expired = bool_of(child(r, "passwordExpired"));
  out.sandbox = bool_of(child(r, "sandbox"));
  const XMLElement* user_info = child(r, "userInfo");
  out.user_id = text_of(child(r, "userId"));
  if (out.user_id.empty()) out.user_id = text_of(child(user_info, "userId"));
  out.organization_id = text_of(child(user_info, "organizationId"));
  const std::string seconds = text_of(child(user_info, "sessionSecondsValid"));
  std::int64_t value = 0;
  if (auto [end, ec] = std::from_chars(seconds.data(), seconds.data() + seconds.size(), value);
      ec == std::errc{} && end == seconds.data() + seconds.size() && value >= 0) {
    out.session_seconds_valid = value;
  }

  if (out.session_id.empty()) return bad_response(http_status, "the login result has no sessionId");
  out.instance_url = origin_of(out.server_url);
  if (out.instance_url.empty()) {
    return bad_response(http_status,
                        "the login result has no usable serverUrl (an absolute https URL)");
  }
  result = std::move(out);
  if (result.password_expired) {
    error_info info{make_error_code(errc::auth_password_expired), {}};
    info.diag.context = std::string(context_text);
    info.diag.server_code = "passwordExpired";
    info.diag.server_text =
        "the login succeeded but the password has expired; set a new one in Salesforce";
    return info;
  }
  return {};
}

}  // namespace sfstream::soap_auth
