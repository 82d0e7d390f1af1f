// No secret ever reaches a log line, an error text or diagnostics: a failed login, a successful
// login and a token refresh run with every log level captured.
#include <doctest/doctest.h>

#include <ostream>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "flow_support.hpp"

using namespace auth_flow;
using namespace sfstream;

namespace {

const std::string password = "Pa$$w0rd&<secret>";
const std::string security_token = "SECTOKEN9876543210";
const std::string session_id = "00DAA0000000001!AQ4AQSESSIONSECRET0123456789abcdef";
const std::string refresh_token = "5Aep861REFRESHSECRET.abc";
const std::string rotated_refresh_token = "5Aep861ROTATEDSECRET.def";
const std::string access_token_1 = "00DAA0000000001!ACCESSSECRETONE";
const std::string access_token_2 = "00DAA0000000001!ACCESSSECRETTWO";
const std::string client_secret = "CLIENTSECRET42";

std::string private_key_pem() {
  EVP_PKEY* key = EVP_RSA_gen(2048);
  REQUIRE(key);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  EVP_PKEY_free(key);
  return pem;
}

/// Everything sfstream said: log lines, error texts and diagnostics.
struct transcript {
  std::vector<std::string> lines;
  logger make_logger() {
    logger l;
    l.min_level = log_level::trace;
    l.sink = [this](log_level level, std::string_view text) {
      lines.push_back(std::string(to_string(level)) + " " + std::string(text));
    };
    return l;
  }
  void add(const token_outcome& outcome) {
    lines.push_back(outcome.error.to_string());
    lines.push_back(outcome.error.diag.to_string());
    lines.push_back(outcome.error.diag.server_code);
    lines.push_back(outcome.error.diag.server_text);
    lines.push_back(outcome.error.diag.context);
  }
  void check_free_of(const std::vector<std::string>& secrets) const {
    for (const auto& line : lines) {
      for (const auto& secret : secrets) {
        CAPTURE(line);
        CHECK(line.find(secret) == std::string::npos);
      }
    }
  }
};

}  // namespace

TEST_CASE("SOAP logins that fail and succeed log no password, security token or session id") {
  int attempt = 0;
  login_server server([&](const transport::http_request&, const std::string& base) {
    if (++attempt == 1) {
      // A hostile fault that quotes the secrets back.
      return reply(
          500, "text/xml; charset=utf-8",
          R"(<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: bad password )" +
              std::string("Pa$$w0rd&amp;&lt;secret&gt;") + security_token + " for session " +
              session_id + "</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>");
    }
    return reply(
        200, "text/xml; charset=utf-8",
        R"(<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><loginResponse xmlns="urn:partner.soap.sforce.com"><result><passwordExpired>false</passwordExpired><serverUrl>)" +
            base + R"(/services/Soap/u/64.0/00DAA0000000001</serverUrl><sessionId>)" + session_id +
            R"(</sessionId><userId>005AA000000000AAAA</userId></result></loginResponse></soapenv:Body></soapenv:Envelope>)");
  });
  transcript said;
  soap_login_options options{
      server.base_url(), "user@example.com", password, security_token, "64.0", false, false};
  auto provider = make_soap_login_provider(server.io.get_executor(), options, server.network(),
                                           said.make_logger());

  const token_outcome failed = server.get(*provider);
  CHECK(failed.error.code == errc::auth_invalid_login);
  said.add(failed);
  const token_outcome ok = server.get(*provider, true);
  REQUIRE_MESSAGE(!ok.error, ok.error.to_string());
  CHECK(ok.token.token == session_id);
  said.add(ok);
  const token_outcome again = server.get(*provider, true);
  said.add(again);
  said.lines.push_back(provider->describe());

  CHECK(said.lines.size() > 10);
  said.check_free_of(
      {password, security_token, password + security_token, session_id, "SESSIONSECRET"});
}

TEST_CASE("OAuth password, refresh and JWT flows log no secret, token or private key") {
  const std::string key = private_key_pem();
  int issued = 0;
  login_server server([&](const transport::http_request& request, const std::string& base) {
    ++issued;
    if (request.body.find("grant_type=password") != std::string::npos && issued == 1) {
      return reply(400, "application/json",
                   R"({"error":"invalid_grant","error_description":"authentication failure for )" +
                       password + "\"}");
    }
    std::string body =
        R"({"access_token":")" + (issued % 2 ? access_token_1 : access_token_2) +
        R"(","instance_url":")" + base + R"(","id":")" + base +
        R"(/id/00DAA0000000001AAA/005AA000000000AAAA","token_type":"Bearer","issued_at":"1")";
    if (request.body.find("grant_type=refresh_token") != std::string::npos) {
      body += R"(,"refresh_token":")" + rotated_refresh_token + "\"";
    }
    return reply(200, "application/json", body + "}");
  });
  transcript said;

  oauth_password_options password_options;
  password_options.endpoint = {server.base_url(), false, "client", client_secret};
  password_options.username = "user@example.com";
  password_options.password = password;
  password_options.security_token = security_token;
  auto password_provider = make_oauth_password_provider(server.io.get_executor(), password_options,
                                                        server.network(), said.make_logger());
  said.add(server.get(*password_provider));
  said.add(server.get(*password_provider, true));

  oauth_refresh_token_options refresh_options;
  refresh_options.endpoint = {server.base_url(), false, "client", client_secret};
  refresh_options.refresh_token = refresh_token;
  auto refresh_provider = make_oauth_refresh_token_provider(
      server.io.get_executor(), refresh_options, server.network(), said.make_logger());
  const token_outcome refreshed = server.get(*refresh_provider);
  CHECK_FALSE(refreshed.error);
  said.add(refreshed);
  said.add(server.get(*refresh_provider, true));

  oauth_jwt_options jwt_options;
  jwt_options.endpoint = {server.base_url(), false, "client", ""};
  jwt_options.username = "user@example.com";
  jwt_options.private_key_pem = key;
  auto jwt_provider = make_oauth_jwt_provider(server.io.get_executor(), jwt_options,
                                              server.network(), said.make_logger());
  const token_outcome jwt = server.get(*jwt_provider);
  CHECK_FALSE(jwt.error);
  said.add(jwt);

  for (auto* p : {password_provider.get(), refresh_provider.get(), jwt_provider.get()})
    said.lines.push_back(p->describe());

  // The key's base64 body lines, each of which is secret on its own.
  std::vector<std::string> secrets{password,       security_token,        client_secret,
                                   refresh_token,  rotated_refresh_token, access_token_1,
                                   access_token_2, "ACCESSSECRET",        key};
  for (std::size_t start = key.find('\n') + 1; start < key.size();) {
    const auto end = key.find('\n', start);
    const std::string line = key.substr(start, end - start);
    if (line.size() > 20 && line.find("-----") == std::string::npos) secrets.push_back(line);
    start = end == std::string::npos ? key.size() : end + 1;
  }
  CHECK(said.lines.size() > 10);
  said.check_free_of(secrets);
}
