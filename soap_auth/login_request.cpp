#include "soap_auth/login_request.hpp"

#include <charconv>

#include <tinyxml2.h>

namespace sfstream::soap_auth {
namespace {

error_info config_error(std::string text) {
  error_info info{make_error_code(errc::invalid_config), {}};
  info.diag.context = "SOAP login";
  info.diag.server_text = std::move(text);
  return info;
}

// XML 1.0 cannot carry most C0 controls, and a CR would come back as LF.
bool xml_safe(std::string_view text) noexcept {
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 && c != '\t' && c != '\n') return false;
  }
  return true;
}

}  // namespace

error_info check_login_version(std::string_view version, std::string* canonical) {
  int major = 0;
  int minor = 0;
  const char* const first = version.data();
  const char* const last = version.data() + version.size();
  auto [end, ec] = std::from_chars(first, last, major);
  bool ok = ec == std::errc{} && end != first && end - first <= 3;
  if (ok && end != last) {
    ok = *end == '.' && end + 1 != last;
    if (ok) {
      const char* const minor_first = end + 1;
      auto [minor_end, minor_ec] = std::from_chars(minor_first, last, minor);
      ok = minor_ec == std::errc{} && minor_end == last && minor_end - minor_first <= 2;
    }
  }
  if (!ok || major <= 0 || minor != 0) {
    return config_error("the SOAP login version must look like \"64.0\"");
  }
  const std::string text = std::to_string(major) + ".0";
  if (major > newest_login_version) {
    error_info info{make_error_code(errc::auth_login_unavailable), {}};
    info.diag.context = "SOAP login version " + text;
    info.diag.server_text =
        "SOAP login() is removed from API 65.0 on; use OAuth 2.0 (a password, JWT bearer, "
        "client credentials or refresh token grant) or a SOAP login version from 31.0 to 64.0";
    return info;
  }
  if (major < oldest_login_version) {
    error_info info{make_error_code(errc::unsupported_api_version), {}};
    info.diag.context = "SOAP login version " + text;
    info.diag.server_text =
        "API versions before 31.0 are retired; use a SOAP login version from 31.0 to 64.0";
    return info;
  }
  if (canonical) *canonical = text;
  return {};
}

error_info build_login_request(std::string_view username, std::string_view password_with_token,
                               std::string_view soap_version, wsdl kind, login_request& out) {
  std::string version;
  if (auto why = check_login_version(soap_version, &version)) return why;
  if (username.empty()) return config_error("the username is empty");
  if (!xml_safe(username)) return config_error("the username contains a control character");
  if (!xml_safe(password_with_token)) {
    return config_error("the password or security token contains a control character");
  }

  const bool partner = kind == wsdl::partner;
  tinyxml2::XMLDocument doc;
  doc.InsertEndChild(doc.NewDeclaration(R"(xml version="1.0" encoding="utf-8")"));
  auto* envelope = doc.NewElement("soapenv:Envelope");
  envelope->SetAttribute("xmlns:soapenv", "http://schemas.xmlsoap.org/soap/envelope/");
  envelope->SetAttribute(
      "xmlns:urn", partner ? "urn:partner.soap.sforce.com" : "urn:enterprise.soap.sforce.com");
  doc.InsertEndChild(envelope);
  auto* body = envelope->InsertNewChildElement("soapenv:Body");
  auto* login = body->InsertNewChildElement("urn:login");
  // std::string copies: tinyxml2 takes NUL-terminated strings.
  login->InsertNewChildElement("urn:username")->SetText(std::string(username).c_str());
  login->InsertNewChildElement("urn:password")->SetText(std::string(password_with_token).c_str());

  tinyxml2::XMLPrinter printer(nullptr, /*compact=*/true);
  doc.Print(&printer);

  out.target = std::string(partner ? "/services/Soap/u/" : "/services/Soap/c/") + version;
  out.headers = {{"Content-Type", "text/xml; charset=utf-8"}, {"SOAPAction", "\"\""}};
  out.body.assign(printer.CStr(), static_cast<std::size_t>(printer.CStrSize() - 1));
  return {};
}

}  // namespace sfstream::soap_auth
