// Credentials providers over real HTTPS against a loopback server playing the login server.
#include <doctest/doctest.h>

#include <ostream>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <rapidjson/document.h>
#include <tinyxml2.h>

#include "flow_support.hpp"
#include "sfstream/credentials.hpp"
#include "src/transport/http_types.hpp"

using namespace auth_flow;
using namespace sfstream;

namespace {

const std::string session_id = "00DAA0000000001!AQ4AQSESSIONSECRETabcdefghijklmnop.qrstuv";

std::string soap_success(const std::string& server_base) {
  return R"(<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><loginResponse><result><metadataServerUrl>)" +
         server_base +
         R"(/services/Soap/m/64.0/00DAA0000000001</metadataServerUrl><passwordExpired>false</passwordExpired><sandbox>false</sandbox><serverUrl>)" +
         server_base + R"(/services/Soap/u/64.0/00DAA0000000001</serverUrl><sessionId>)" +
         session_id +
         R"(</sessionId><userId>005AA000000000AAAA</userId><userInfo><organizationId>00DAA0000000001AAA</organizationId><sessionSecondsValid>7200</sessionSecondsValid><userDefaultCurrencyIsoCode xsi:nil="true"/><userId>005AA000000000AAAA</userId></userInfo></result></loginResponse></soapenv:Body></soapenv:Envelope>)";
}

const std::string invalid_login_fault =
    R"(<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid username, password, security token; or user locked out.</faultstring><detail><sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode><sf:exceptionMessage>Invalid username, password, security token; or user locked out.</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>)";

std::string token_json(const std::string& base, const std::string& access,
                       const std::string& refresh = {}) {
  std::string body =
      R"({"access_token":")" + access + R"(","instance_url":")" + base + R"(","id":")" + base +
      R"(/id/00DAA0000000001AAA/005AA000000000AAAA","token_type":"Bearer","issued_at":"1700000000000","signature":"c2ln")";
  if (!refresh.empty()) body += R"(,"refresh_token":")" + refresh + R"(")";
  return body + "}";
}

// The login element's child text, whatever its prefix.
std::string soap_field(const std::string& envelope, std::string_view local) {
  tinyxml2::XMLDocument doc;
  REQUIRE(doc.Parse(envelope.data(), envelope.size()) == tinyxml2::XML_SUCCESS);
  const auto* login = doc.RootElement()->FirstChildElement()->FirstChildElement();
  for (const auto* e = login->FirstChildElement(); e; e = e->NextSiblingElement()) {
    std::string_view name = e->Name();
    if (name.substr(name.find(':') + 1) == local) return e->GetText() ? e->GetText() : "";
  }
  return {};
}

}  // namespace

TEST_CASE(
    "SOAP login over HTTPS sends the escaped password with token and returns the session as a "
    "token") {
  login_server server([](const transport::http_request&, const std::string& base) {
    return reply(200, "text/xml; charset=utf-8", soap_success(base));
  });

  soap_login_options options;
  options.login_url = server.base_url();
  options.username = "user@example.com";
  options.password = "p&<>\"'\xC3\x9F;x";
  options.security_token = "TOKEN123";
  auto provider = make_soap_login_provider(server.io.get_executor(), options, server.network());
  const token_outcome got = server.get(*provider);
  REQUIRE_MESSAGE(!got.error, got.error.to_string());
  CHECK(got.token.token == session_id);
  CHECK(got.token.instance_url == server.base_url());
  CHECK(got.token.user_id == "005AA000000000AAAA");
  CHECK(got.token.organization_id == "00DAA0000000001AAA");
  CHECK(got.token.token_type == "Bearer");

  REQUIRE(server.requests.size() == 1);
  const auto& request = server.requests[0];
  CHECK(request.target == "/services/Soap/u/64.0");
  CHECK(*transport::find_header(request.headers, "SOAPAction") == "\"\"");
  CHECK(*transport::find_header(request.headers, "Content-Type") == "text/xml; charset=utf-8");
  CHECK(soap_field(request.body, "username") == "user@example.com");
  CHECK(soap_field(request.body, "password") == "p&<>\"'\xC3\x9F;xTOKEN123");
  CHECK(provider->describe().find("user@example.com") != std::string::npos);
}

TEST_CASE("SOAP login INVALID_LOGIN over HTTPS gives auth_invalid_login with the fault code") {
  login_server server([](const transport::http_request&, const std::string&) {
    return reply(500, "text/xml; charset=utf-8", invalid_login_fault);
  });
  soap_login_options options{
      server.base_url(), "user@example.com", "wrong", "TOKEN", "64.0", false, false};
  auto provider = make_soap_login_provider(server.io.get_executor(), options, server.network());
  const token_outcome got = server.get(*provider);
  CHECK(got.error.code == errc::auth_invalid_login);
  CHECK(got.error.diag.server_code == "INVALID_LOGIN");
  CHECK(got.token.token.empty());
  CHECK(server.requests.size() == 1);
}

TEST_CASE("SOAP login at API 65.0 fails at once without contacting the server") {
  login_server server([](const transport::http_request&, const std::string&) {
    return reply(200, "text/xml", "");
  });
  soap_login_options options;
  options.login_url = server.base_url();
  options.username = "user@example.com";
  options.password = "pw";
  options.soap_version = "65.0";
  auto provider = make_soap_login_provider(server.io.get_executor(), options, server.network());
  const token_outcome got = server.get(*provider);
  CHECK(got.error.code == errc::auth_login_unavailable);
  CHECK(got.error.to_string().find("OAuth 2.0") != std::string::npos);
  CHECK(server.requests.empty());
}

TEST_CASE("SOAP login over plain HTTP to loopback works and the enterprise WSDL path is used") {
  login_server server(
      [](const transport::http_request&, const std::string& base) {
        return reply(200, "text/xml; charset=utf-8", soap_success(base));
      },
      /*tls=*/false);
  soap_login_options options{server.base_url(), "u@example.com", "pw", "", "59.0", false, true};
  auto provider = make_soap_login_provider(server.io.get_executor(), options, server.network());
  const token_outcome got = server.get(*provider);
  REQUIRE_MESSAGE(!got.error, got.error.to_string());
  REQUIRE(server.requests.size() == 1);
  CHECK(server.requests[0].target == "/services/Soap/c/59.0");
  CHECK(server.requests[0].body.find("urn:enterprise.soap.sforce.com") != std::string::npos);
}

TEST_CASE(
    "the OAuth password grant posts a percent-encoded form with the token appended to the "
    "password") {
  login_server server([](const transport::http_request&, const std::string& base) {
    return reply(200, "application/json", token_json(base, "ACCESS1"));
  });
  oauth_password_options options;
  options.endpoint = {server.base_url(), false, "3MVG9client", "client&secret"};
  options.username = "user+1@example.com";
  options.password = "p&=w rd";
  options.security_token = "TOK";
  auto provider = make_oauth_password_provider(server.io.get_executor(), options, server.network());
  const token_outcome got = server.get(*provider);
  REQUIRE_MESSAGE(!got.error, got.error.to_string());
  CHECK(got.token.token == "ACCESS1");
  CHECK(got.token.instance_url == server.base_url());
  CHECK(got.token.organization_id == "00DAA0000000001AAA");
  CHECK(got.token.user_id == "005AA000000000AAAA");

  REQUIRE(server.requests.size() == 1);
  const auto& request = server.requests[0];
  CHECK(request.target == "/services/oauth2/token");
  CHECK(*transport::find_header(request.headers, "Content-Type") ==
        "application/x-www-form-urlencoded");
  CHECK(request.body.find(' ') == std::string::npos);
  const auto form = decode_form(request.body);
  CHECK(form.at("grant_type") == "password");
  CHECK(form.at("client_id") == "3MVG9client");
  CHECK(form.at("client_secret") == "client&secret");
  CHECK(form.at("username") == "user+1@example.com");
  CHECK(form.at("password") == "p&=w rdTOK");
}

TEST_CASE("an OAuth invalid_grant reply gives auth_oauth_error with the description") {
  login_server server([](const transport::http_request&, const std::string&) {
    return reply(400, "application/json",
                 R"({"error":"invalid_grant","error_description":"authentication failure"})");
  });
  oauth_password_options options;
  options.endpoint = {server.base_url(), false, "id", "secret"};
  options.username = "u@example.com";
  options.password = "bad";
  auto provider = make_oauth_password_provider(server.io.get_executor(), options, server.network());
  const token_outcome got = server.get(*provider);
  CHECK(got.error.code == errc::auth_oauth_error);
  CHECK(got.error.diag.server_code == "invalid_grant");
  CHECK(got.error.diag.server_text == "authentication failure");
}

TEST_CASE("the refresh-token grant refreshes on force and uses a rotated refresh token") {
  int issued = 0;
  login_server server([&](const transport::http_request&, const std::string& base) {
    ++issued;
    return reply(
        200, "application/json",
        token_json(base, "ACCESS" + std::to_string(issued), issued == 1 ? "REFRESH2" : ""));
  });
  oauth_refresh_token_options options;
  options.endpoint = {server.base_url(), false, "client", ""};
  options.refresh_token = "REFRESH1";
  auto provider =
      make_oauth_refresh_token_provider(server.io.get_executor(), options, server.network());

  const token_outcome first = server.get(*provider);
  REQUIRE_MESSAGE(!first.error, first.error.to_string());
  CHECK(first.token.token == "ACCESS1");
  const token_outcome cached = server.get(*provider);
  CHECK(cached.token.token == "ACCESS1");
  CHECK(server.requests.size() == 1);

  const token_outcome refreshed = server.get(*provider, /*force_refresh=*/true);
  REQUIRE_MESSAGE(!refreshed.error, refreshed.error.to_string());
  CHECK(refreshed.token.token == "ACCESS2");
  REQUIRE(server.requests.size() == 2);
  const auto first_form = decode_form(server.requests[0].body);
  CHECK(first_form.at("grant_type") == "refresh_token");
  CHECK(first_form.at("refresh_token") == "REFRESH1");
  CHECK(first_form.count("client_secret") == 0);
  CHECK(decode_form(server.requests[1].body).at("refresh_token") == "REFRESH2");
}

TEST_CASE("the client-credentials grant sends the client id and secret") {
  login_server server([](const transport::http_request&, const std::string& base) {
    return reply(200, "application/json", token_json(base, "CCACCESS"));
  });
  oauth_client_credentials_options options;
  options.endpoint = {server.base_url(), false, "cc-id", "cc-secret"};
  auto provider =
      make_oauth_client_credentials_provider(server.io.get_executor(), options, server.network());
  const token_outcome got = server.get(*provider);
  REQUIRE_MESSAGE(!got.error, got.error.to_string());
  CHECK(got.token.token == "CCACCESS");
  const auto form = decode_form(server.requests.at(0).body);
  CHECK(form.at("grant_type") == "client_credentials");
  CHECK(form.at("client_id") == "cc-id");
  CHECK(form.at("client_secret") == "cc-secret");
}

namespace {

std::string b64url_decode(std::string_view text) {
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (char c : text) {
    int v = (c >= 'A' && c <= 'Z')   ? c - 'A'
            : (c >= 'a' && c <= 'z') ? c - 'a' + 26
            : (c >= '0' && c <= '9') ? c - '0' + 52
            : c == '-'               ? 62
            : c == '_'               ? 63
                                     : -1;
    if (v < 0) return {};
    buffer = (buffer << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xff);
    }
  }
  return out;
}

struct rsa_keys {
  std::string private_pem;
  std::string public_pem;
};

rsa_keys make_rsa_keys() {
  EVP_PKEY* key = EVP_RSA_gen(2048);
  REQUIRE(key);
  auto text = [](BIO* bio) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    std::string s(data, static_cast<std::size_t>(n));
    BIO_free(bio);
    return s;
  };
  BIO* priv = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(priv, key, nullptr, nullptr, 0, nullptr, nullptr);
  BIO* pub = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(pub, key);
  rsa_keys out{text(priv), text(pub)};
  EVP_PKEY_free(key);
  return out;
}

bool verify_rs256(const std::string& public_pem, std::string_view input,
                  const std::string& signature) {
  BIO* bio = BIO_new_mem_buf(public_pem.data(), static_cast<int>(public_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok =
      key && EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
      EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature.data()),
                       signature.size(), reinterpret_cast<const unsigned char*>(input.data()),
                       input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  return ok;
}

}  // namespace

TEST_CASE("the JWT bearer grant sends an RS256 assertion the server verifies with the public key") {
  const rsa_keys keys = make_rsa_keys();
  std::string failure;
  login_server server([&](const transport::http_request& request, const std::string& base) {
    const auto form = decode_form(request.body);
    const std::string assertion = form.count("assertion") ? form.at("assertion") : "";
    const auto dot2 = assertion.rfind('.');
    const auto dot1 = assertion.find('.');
    rapidjson::Document claims;
    if (form.count("grant_type") == 0 ||
        form.at("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer") {
      failure = "grant_type";
    } else if (dot1 == std::string::npos || dot2 == dot1 ||
               !verify_rs256(keys.public_pem, std::string_view(assertion).substr(0, dot2),
                             b64url_decode(std::string_view(assertion).substr(dot2 + 1)))) {
      failure = "signature";
    } else if (claims
                   .Parse(
                       b64url_decode(std::string_view(assertion).substr(dot1 + 1, dot2 - dot1 - 1)))
                   .HasParseError() ||
               !claims.IsObject() || std::string(claims["iss"].GetString()) != "jwt-client" ||
               std::string(claims["sub"].GetString()) != "jwt@example.com" ||
               std::string(claims["aud"].GetString()) != base || !claims["exp"].IsInt64()) {
      failure = "claims";
    } else {
      const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
      const auto exp = claims["exp"].GetInt64();
      if (exp <= now || exp > now + 180) failure = "exp";
    }
    if (!failure.empty()) {
      return reply(400, "application/json",
                   R"({"error":"invalid_grant","error_description":"invalid assertion"})");
    }
    return reply(200, "application/json", token_json(base, "JWTACCESS"));
  });
  oauth_jwt_options options;
  options.endpoint = {server.base_url(), false, "jwt-client", ""};
  options.username = "jwt@example.com";
  options.private_key_pem = keys.private_pem;
  auto provider = make_oauth_jwt_provider(server.io.get_executor(), options, server.network());
  const token_outcome got = server.get(*provider);
  CHECK_MESSAGE(failure.empty(), failure);
  REQUIRE_MESSAGE(!got.error, got.error.to_string());
  CHECK(got.token.token == "JWTACCESS");
}

TEST_CASE("a JWT provider with an unreadable key fails with invalid_config before any request") {
  login_server server([](const transport::http_request&, const std::string& base) {
    return reply(200, "application/json", token_json(base, "X"));
  });
  oauth_jwt_options options;
  options.endpoint = {server.base_url(), false, "c", ""};
  options.username = "u@example.com";
  options.private_key_pem = "not a key";
  auto provider = make_oauth_jwt_provider(server.io.get_executor(), options, server.network());
  CHECK(server.get(*provider).error.code == errc::invalid_config);
  CHECK(server.requests.empty());
}

TEST_CASE("a cached token is handed out until force_refresh fetches a new one") {
  int issued = 0;
  login_server server([&](const transport::http_request&, const std::string& base) {
    return reply(200, "text/xml; charset=utf-8",
                 soap_success(base + "/v" + std::to_string(++issued)));
  });
  soap_login_options options{server.base_url(), "u@example.com", "pw", "", "64.0", false, false};
  auto provider = make_soap_login_provider(server.io.get_executor(), options, server.network());
  CHECK_FALSE(server.get(*provider).error);
  CHECK_FALSE(server.get(*provider).error);
  CHECK(server.requests.size() == 1);
  CHECK_FALSE(server.get(*provider, true).error);
  CHECK(server.requests.size() == 2);
  CHECK_FALSE(server.get(*provider).error);
  CHECK(server.requests.size() == 2);
}

TEST_CASE("concurrent token requests share one login") {
  login_server server([](const transport::http_request&, const std::string& base) {
    return reply(200, "application/json", token_json(base, "SHARED"));
  });
  oauth_client_credentials_options options;
  options.endpoint = {server.base_url(), false, "id", "secret"};
  auto provider =
      make_oauth_client_credentials_provider(server.io.get_executor(), options, server.network());
  int done = 0;
  for (int i = 0; i < 3; ++i) {
    provider->async_token(false, [&](error_info e, access_token t) {
      CHECK_FALSE(e);
      CHECK(t.token == "SHARED");
      ++done;
    });
  }
  REQUIRE(run_until(server.io, [&] { return done == 3; }));
  CHECK(server.requests.size() == 1);
}

TEST_CASE("a transport failure passes through unchanged so the caller can retry") {
  std::string base;
  {
    login_server probe([](const transport::http_request&, const std::string&) {
      return reply(200, "text/xml", "");
    });
    base = probe.base_url();
  }
  boost::asio::io_context io;
  soap_login_options options{base, "u@example.com", "pw", "", "64.0", false, false};
  network_options network;
  network.proxy_from_environment = false;
  auto provider = make_soap_login_provider(io.get_executor(), options, network);
  error_info error;
  bool called = false;
  provider->async_token(false, [&](error_info e, access_token) {
    error = std::move(e);
    called = true;
  });
  REQUIRE(run_until(io, [&] { return called; }));
  CHECK(error.code == errc::connection_failed);
}

TEST_CASE("a login server that never answers gives errc::timeout") {
  boost::asio::io_context io;
  std::vector<std::shared_ptr<net::exchange>> held;
  net::http_server server(
      io.get_executor(), net::server_options{},
      [&](std::shared_ptr<net::exchange> ex) { held.push_back(std::move(ex)); });
  soap_login_options options{server.base_url(), "u@example.com", "pw", "", "64.0", false, false};
  network_options network;
  network.proxy_from_environment = false;
  network.request_timeout = std::chrono::milliseconds(300);
  auto provider = make_soap_login_provider(io.get_executor(), options, network);
  error_info error;
  bool called = false;
  provider->async_token(false, [&](error_info e, access_token) {
    error = std::move(e);
    called = true;
  });
  REQUIRE(run_until(io, [&] { return called; }));
  CHECK(error.code == errc::timeout);
  held.clear();
  server.stop();
}

TEST_CASE(
    "the static token provider hands out its token and instance URL, and a refresh of a refused "
    "token fails at once") {
  boost::asio::io_context io;
  auto provider = make_static_token_provider(
      io.get_executor(), {"STATIC", "https://acme.my.salesforce.com/", "", "", "Bearer"});
  access_token got;
  error_info error;
  int calls = 0;
  provider->async_token(false, [&](error_info e, access_token t) {
    error = e;
    got = t;
    ++calls;
  });
  CHECK(calls == 0);
  REQUIRE(run_until(io, [&] { return calls == 1; }));
  CHECK_FALSE(error);
  CHECK(got.token == "STATIC");
  CHECK(got.instance_url == "https://acme.my.salesforce.com");
  CHECK(provider->describe().find("STATIC") == std::string::npos);

  // The server refused the token: a static token cannot be refreshed, so the provider says so
  // instead of handing back the same token to be refused again.
  calls = 0;
  provider->async_token(true, [&](error_info e, access_token t) {
    error = e;
    got = t;
    ++calls;
  });
  REQUIRE(run_until(io, [&] { return calls == 1; }));
  CHECK(error.code == errc::auth_invalid_session);
  CHECK(error.to_string().find("expired") != std::string::npos);
  CHECK(error.to_string().find("STATIC") == std::string::npos);
  CHECK_FALSE(is_retryable(error));

  auto empty = make_static_token_provider(io.get_executor(), {"", "https://x", "", "", "Bearer"});
  calls = 0;
  empty->async_token(false, [&](error_info e, access_token) {
    error = e;
    ++calls;
  });
  REQUIRE(run_until(io, [&] { return calls == 1; }));
  CHECK(error.code == errc::auth_no_credentials);
}

TEST_CASE("the callback provider asks the callback for the first token and each forced refresh") {
  boost::asio::io_context io;
  std::vector<bool> asked;
  auto provider = make_callback_provider(
      io.get_executor(),
      [&](bool force, credentials_provider::token_handler done) {
        asked.push_back(force);
        done({}, access_token{"CB" + std::to_string(asked.size()), "https://x.my.salesforce.com",
                              "", "", "Bearer"});
        done({}, access_token{"IGNORED", "https://x", "", "", "Bearer"});
      },
      "my vault");
  std::string token;
  int calls = 0;
  auto ask = [&](bool force) {
    provider->async_token(force, [&](error_info e, access_token t) {
      CHECK_FALSE(e);
      token = t.token;
      ++calls;
    });
    const int target = calls + 1;
    REQUIRE(run_until(io, [&] { return calls == target; }));
  };
  ask(false);
  CHECK(token == "CB1");
  ask(false);
  CHECK(token == "CB1");
  ask(true);
  CHECK(token == "CB2");
  CHECK(asked == std::vector<bool>{false, true});
  CHECK(provider->describe() == "my vault");

  auto throwing = make_callback_provider(
      io.get_executor(),
      [](bool, credentials_provider::token_handler) { throw std::runtime_error("vault down"); });
  error_info error;
  bool called = false;
  throwing->async_token(false, [&](error_info e, access_token) {
    error = e;
    called = true;
  });
  REQUIRE(run_until(io, [&] { return called; }));
  CHECK(error.code == errc::handler_failed);
}
