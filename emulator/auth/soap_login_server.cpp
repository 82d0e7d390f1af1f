#include "emulator/auth/soap_login_server.hpp"

#include <charconv>
#include <optional>
#include <string_view>

#include <openssl/sha.h>
#include <tinyxml2.h>

namespace sfstream::emulator::auth {

namespace {

constexpr std::string_view invalid_login_text = "Invalid username, password, security token; or user locked out.";
constexpr std::string_view must_use_token_text =
    "Invalid username, password, security token; or user locked out. Are you at a new location? When "
    "accessing Salesforce--either via a desktop client or the API--from outside of your company\xE2\x80\x99s "
    "trusted networks, you must add a security token to your password to log in. To get your new security "
    "token, log in to Salesforce. From your personal settings, enter Reset My Security Token in the Quick Find "
    "box, then select Reset My Security Token.";

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string_view local_name(const char* name) {
  std::string_view n = name == nullptr ? std::string_view{} : std::string_view{name};
  auto colon = n.find(':');
  return colon == std::string_view::npos ? n : n.substr(colon + 1);
}

const tinyxml2::XMLElement* child_named(const tinyxml2::XMLElement* parent, std::string_view name) {
  if (parent == nullptr) {
    return nullptr;
  }
  for (auto* e = parent->FirstChildElement(); e != nullptr; e = e->NextSiblingElement()) {
    if (local_name(e->Name()) == name) {
      return e;
    }
  }
  return nullptr;
}

/// Parses "NN.N" into tenths (e.g. 64.0 → 640); nullopt when malformed.
std::optional<int> parse_version_tenths(std::string_view text) {
  auto dot = text.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 2 != text.size()) {
    return std::nullopt;
  }
  int major = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + dot, major);
  if (ec != std::errc{} || p != text.data() + dot || major > 1000) {
    return std::nullopt;
  }
  char minor = text[dot + 1];
  if (minor < '0' || minor > '9') {
    return std::nullopt;
  }
  return major * 10 + (minor - '0');
}

struct soap_path {
  bool enterprise = false;
  std::string version;  // as written, e.g. "64.0"
};

std::optional<soap_path> parse_soap_path(std::string_view target) {
  auto query = target.find('?');
  if (query != std::string_view::npos) {
    target = target.substr(0, query);
  }
  constexpr std::string_view prefix = "/services/Soap/";
  if (target.substr(0, prefix.size()) != prefix) {
    return std::nullopt;
  }
  target.remove_prefix(prefix.size());
  if (target.size() < 3 || (target[0] != 'u' && target[0] != 'c') || target[1] != '/') {
    return std::nullopt;
  }
  soap_path out;
  out.enterprise = target[0] == 'c';
  target.remove_prefix(2);
  if (!target.empty() && target.back() == '/') {
    target.remove_suffix(1);
  }
  // The serverUrl a login returns ends with the 15-character org id: /services/Soap/u/59.0/00D….
  if (auto slash = target.find('/'); slash != std::string_view::npos) {
    const std::string_view org = target.substr(slash + 1);
    if (org.size() != 15 || org.find('/') != std::string_view::npos) return std::nullopt;
    target = target.substr(0, slash);
  }
  if (target.empty()) {
    return std::nullopt;
  }
  out.version = std::string(target);
  return out;
}

transport::http_response xml_response(unsigned status, std::string body) {
  transport::http_response r;
  r.status = status;
  r.reason = status == 200 ? "OK" : "Server Error";
  r.headers = {{"Content-Type", "text/xml; charset=utf-8"},
               {"Cache-Control", "no-cache,must-revalidate,max-age=0,no-store,private"},
               {"Set-Cookie", browser_id_cookie()},
               {"Vary", "Accept-Encoding"}};
  r.body = std::move(body);
  return r;
}

/// The detail element of a SOAP fault: LoginFault for login() failures, else UnexpectedErrorFault.
enum class soap_fault_type { login_fault, unexpected_error };

transport::http_response fault(bool enterprise, soap_fault_type kind, std::string_view code, std::string_view message) {
  const std::string ns = enterprise ? "urn:fault.enterprise.soap.sforce.com" : "urn:fault.partner.soap.sforce.com";
  const std::string detail_type = kind == soap_fault_type::login_fault ? "sf:LoginFault" : "sf:UnexpectedErrorFault";
  // LoginFault captures have a bare faultcode, UnexpectedErrorFault ones an sf: prefix (§1.4).
  const std::string faultcode = kind == soap_fault_type::login_fault ? std::string(code) : "sf:" + std::string(code);
  std::string body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope "
                     "xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:sf=\"" +
                     ns +
                     "\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body><soapenv:Fault><faultcode>" +
                     faultcode + "</faultcode><faultstring>" + std::string(code) + ": " + xml_escape(message) +
                     "</faultstring><detail><" + detail_type + " xsi:type=\"" + detail_type + "\"><sf:exceptionCode>" +
                     std::string(code) + "</sf:exceptionCode><sf:exceptionMessage>" + xml_escape(message) +
                     "</sf:exceptionMessage></" + detail_type + "></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>";
  return xml_response(500, std::move(body));
}

std::string base64_of(const unsigned char* data, std::size_t size) {
  constexpr std::string_view table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < size; i += 3) {
    const unsigned n = (unsigned{data[i]} << 16) | (i + 1 < size ? unsigned{data[i + 1]} << 8 : 0u) |
                       (i + 2 < size ? unsigned{data[i + 2]} : 0u);
    out += table[(n >> 18) & 63];
    out += table[(n >> 12) & 63];
    out += i + 1 < size ? table[(n >> 6) & 63] : '=';
    out += i + 2 < size ? table[n & 63] : '=';
  }
  return out;
}

transport::http_response client_fault(std::string_view text) {
  std::string body =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope "
      "xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body><soapenv:Fault><faultcode>"
      "soapenv:Client</faultcode><faultstring>" +
      xml_escape(text) + "</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>";
  return xml_response(500, std::move(body));
}

}  // namespace

std::string soap_login_username(const std::string& body) {
  tinyxml2::XMLDocument doc;
  if (doc.Parse(body.data(), body.size()) != tinyxml2::XML_SUCCESS) return {};
  const auto* envelope = doc.RootElement();
  if (envelope == nullptr || local_name(envelope->Name()) != "Envelope") return {};
  const auto* login = child_named(child_named(envelope, "Body"), "login");
  const auto* user = login != nullptr ? child_named(login, "username") : nullptr;
  return user != nullptr && user->GetText() != nullptr ? user->GetText() : "";
}

const emulator_user* check_password(const std::vector<emulator_user>& users, const std::string& username,
                                    const std::string& password, bool* needs_token) {
  if (needs_token != nullptr) {
    *needs_token = false;
  }
  for (const auto& user : users) {
    if (user.username != username) {
      continue;
    }
    if (password == user.password + user.security_token) {
      return &user;
    }
    if (password == user.password) {
      if (user.trusted_ip || user.security_token.empty()) {
        return &user;
      }
      if (needs_token != nullptr) {
        *needs_token = true;
      }
    }
    return nullptr;
  }
  return nullptr;
}

soap_login_server::soap_login_server(const emulator_options& options, session_registry& sessions)
    : options_(options), sessions_(sessions) {}

transport::http_response soap_login_server::handle_session_call(bool enterprise,
                                                                 const tinyxml2::XMLElement& envelope,
                                                                 std::string_view operation) {
  const auto* header = child_named(child_named(&envelope, "Header"), "SessionHeader");
  const auto* id_element = child_named(header, "sessionId");
  const std::string session_id =
      id_element != nullptr && id_element->GetText() != nullptr ? id_element->GetText() : "";
  if (session_id.empty() || !sessions_.use_session(session_id)) {
    // Salesforce's text, with its embedded newline and trailing space; the hash names the
    // session it did not find.
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(session_id.data()), session_id.size(), digest);
    return fault(enterprise, soap_fault_type::unexpected_error, "INVALID_SESSION_ID",
                 "Invalid Session ID found in SessionHeader: Illegal Session. Session not found, "
                 "missing session hash: " +
                     base64_of(digest, sizeof digest) +
                     "\nThis error usually occurs after a session expires or a user logs out. ");
  }
  if (operation != "logout") {
    return client_fault("No operation available for request {" +
                        std::string(enterprise ? "urn:enterprise.soap.sforce.com" : "urn:partner.soap.sforce.com") +
                        "}" + std::string(operation));
  }
  sessions_.end_session(session_id);
  return xml_response(
      200, std::string("<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope "
                       "xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns=\"") +
               (enterprise ? "urn:enterprise.soap.sforce.com" : "urn:partner.soap.sforce.com") +
               "\"><soapenv:Body><logoutResponse/></soapenv:Body></soapenv:Envelope>");
}

transport::http_response soap_login_server::handle(const transport::http_request& request, const std::string& base_url) {
  auto path = parse_soap_path(request.target);
  if (!path) {
    transport::http_response r;
    r.status = 404;
    r.reason = "Not Found";
    r.headers = {{"Content-Type", "text/plain; charset=utf-8"}};
    r.body = "Not Found";
    return r;
  }
  if (request.method != "POST") {
    return client_fault("SOAP requests must use POST");
  }
  const bool enterprise = path->enterprise;
  auto tenths = parse_version_tenths(path->version);
  if (!tenths || *tenths < 310) {
    return fault(enterprise, soap_fault_type::unexpected_error, "UNSUPPORTED_API_VERSION", "Invalid Api version specified on URL");
  }
  if (*tenths >= 650) {
    return fault(enterprise, soap_fault_type::unexpected_error, "INVALID_OPERATION",
                 "The SOAP Login operation is not available in the API version specified (" + path->version +
                     "). Refer to the documentation for supported versions.");
  }

  tinyxml2::XMLDocument doc;
  if (doc.Parse(request.body.data(), request.body.size()) != tinyxml2::XML_SUCCESS) {
    return client_fault("Unable to parse the SOAP envelope: the body is not well-formed XML");
  }
  const auto* envelope = doc.RootElement();
  if (envelope == nullptr || local_name(envelope->Name()) != "Envelope") {
    return client_fault("Expected a SOAP Envelope element");
  }
  const auto* soap_body = child_named(envelope, "Body");
  const auto* login = child_named(soap_body, "login");
  if (login == nullptr) {
    const auto* operation = soap_body != nullptr ? soap_body->FirstChildElement() : nullptr;
    if (operation == nullptr) return client_fault("Expected a login element in the SOAP Body");
    return handle_session_call(enterprise, *envelope, local_name(operation->Name()));
  }
  const auto* user_element = child_named(login, "username");
  const auto* password_element = child_named(login, "password");
  const std::string username = user_element != nullptr && user_element->GetText() != nullptr ? user_element->GetText() : "";
  const std::string password =
      password_element != nullptr && password_element->GetText() != nullptr ? password_element->GetText() : "";

  bool needs_token = false;
  const emulator_user* user = check_password(options_.users, username, password, &needs_token);
  if (user == nullptr) {
    if (needs_token) {
      return fault(enterprise, soap_fault_type::login_fault, "LOGIN_MUST_USE_SECURITY_TOKEN", must_use_token_text);
    }
    return fault(enterprise, soap_fault_type::login_fault, "INVALID_LOGIN", invalid_login_text);
  }

  const std::string org15 = options_.org_id.substr(0, 15);
  const std::string session_id = sessions_.create_session(user->username);
  const std::string ns = enterprise ? "urn:enterprise.soap.sforce.com" : "urn:partner.soap.sforce.com";
  const std::string letter = enterprise ? "c" : "u";
  const std::string user_id = xml_escape(user->user_id);
  const std::string name = xml_escape(user->username);
  std::string body;
  body.reserve(2048);
  body += "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns=\"";
  body += ns;
  body += "\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body><loginResponse><result>";
  body += "<metadataServerUrl>" + base_url + "/services/Soap/m/" + path->version + "/" + org15 + "</metadataServerUrl>";
  body += "<passwordExpired>false</passwordExpired><sandbox>false</sandbox>";
  body += "<serverUrl>" + base_url + "/services/Soap/" + letter + "/" + path->version + "/" + org15 + "</serverUrl>";
  body += "<sessionId>" + session_id + "</sessionId>";
  body += "<userId>" + user_id + "</userId>";
  body += "<userInfo><accessibilityMode>false</accessibilityMode><currencySymbol>$</currencySymbol>"
          "<orgAttachmentFileSizeLimit>5242880</orgAttachmentFileSizeLimit>"
          "<orgDefaultCurrencyIsoCode>USD</orgDefaultCurrencyIsoCode>"
          "<orgDisallowHtmlAttachments>false</orgDisallowHtmlAttachments>"
          "<orgHasPersonAccounts>false</orgHasPersonAccounts>";
  body += "<organizationId>" + xml_escape(options_.org_id) + "</organizationId>";
  body += "<organizationMultiCurrency>false</organizationMultiCurrency>"
          "<organizationName>sfstream Emulated Org</organizationName>"
          "<profileId>00eDM0000000001AAA</profileId><roleId xsi:nil=\"true\"/>";
  body += "<sessionSecondsValid>" + std::to_string(sessions_.lifetime().count()) + "</sessionSecondsValid>";
  body += "<userDefaultCurrencyIsoCode xsi:nil=\"true\"/>";
  body += "<userEmail>" + name + "</userEmail><userFullName>" + name + "</userFullName>";
  body += "<userLanguage>en_US</userLanguage><userId>" + user_id + "</userId>";
  body += "<userLocale>en_US</userLocale><userName>" + name + "</userName>";
  body += "<userTimeZone>America/New_York</userTimeZone><userType>Standard</userType><userUiSkin>Theme3</userUiSkin>";
  body += "</userInfo></result></loginResponse></soapenv:Body></soapenv:Envelope>";
  return xml_response(200, std::move(body));
}

}  // namespace sfstream::emulator::auth
