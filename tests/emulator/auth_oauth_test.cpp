// Conformance of the emulator's OAuth token endpoint and of the REST Authorization check.
#include <doctest/doctest.h>

#include <memory>
#include <regex>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "tests/emulator/cometd_harness.hpp"

using namespace emulator_test;

namespace {

std::string form_escape(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

reply token_request(harness& h, const std::vector<std::pair<std::string, std::string>>& form) {
  std::string body;
  for (const auto& [k, v] : form) body += (body.empty() ? "" : "&") + form_escape(k) + "=" + form_escape(v);
  return h.send("POST", "/services/oauth2/token", body, {{"Content-Type", "application/x-www-form-urlencoded"}});
}

std::string json_string(const std::string& body, const std::string& key) {
  std::smatch m;
  if (std::regex_search(body, m, std::regex("\"" + key + "\":\"([^\"]*)\""))) return m[1].str();
  return {};
}

std::string base64url(const std::string& data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

/// An RSA key made for the test: its public PEM and a signer for JWT assertions.
struct test_key {
  EVP_PKEY* key = EVP_RSA_gen(2048);
  ~test_key() { EVP_PKEY_free(key); }
  std::string public_pem() const {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, key);
    char* data = nullptr;
    long size = BIO_get_mem_data(bio, &data);
    std::string pem(data, static_cast<std::size_t>(size));
    BIO_free(bio);
    return pem;
  }
  std::string jwt(const std::string& claims) const {
    const std::string signing_input = base64url(R"({"alg":"RS256"})") + "." + base64url(claims);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key);
    std::size_t size = 0;
    EVP_DigestSign(ctx, nullptr, &size, reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size());
    std::string sig(size, '\0');
    EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &size,
                   reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size());
    sig.resize(size);
    EVP_MD_CTX_free(ctx);
    return signing_input + "." + base64url(sig);
  }
};

const std::vector<std::pair<std::string, std::string>> password_form = {
    {"grant_type", "password"},
    {"client_id", "sfstream-demo-client"},
    {"client_secret", "sfstream-demo-secret"},
    {"username", "demo@sfstream.local"},
    {"password", "demo-passDEMOTOKEN0000000000000"}};

}  // namespace

TEST_CASE("the password grant returns Salesforce's token reply with a refresh token") {
  harness h;
  auto r = token_request(h, password_form);
  CHECK(r.status == 200);
  const std::string base = h.org().base_url();
  const std::regex shape("\\{\"access_token\":\"00DDM0000000001![^\"]+\",\"refresh_token\":\"[^\"]+\",\"instance_url\":\"" + base +
                         "\",\"id\":\"" + base +
                         "/id/00DDM0000000001AAA/005DM0000000001AAA\",\"token_type\":\"Bearer\",\"issued_at\":\"[0-9]+\",\"signature\":\"[A-Za-z0-9+/=]+\"\\}");
  CHECK(std::regex_match(r.body, shape));
  CHECK_FALSE(h.handshake(json_string(r.body, "access_token")).empty());
}

TEST_CASE("a wrong password gets 400 invalid_grant authentication failure") {
  harness h;
  auto form = password_form;
  form.back().second = "nope";
  auto r = token_request(h, form);
  CHECK(r.status == 400);
  CHECK(r.body == R"({"error":"invalid_grant","error_description":"authentication failure"})");
}

TEST_CASE("an unknown client id gets invalid_client_id and a wrong secret invalid_client") {
  harness h;
  auto form = password_form;
  form[1].second = "someone-else";
  CHECK(token_request(h, form).body == R"({"error":"invalid_client_id","error_description":"client identifier invalid"})");
  form = password_form;
  form[2].second = "bad";
  CHECK(token_request(h, form).body == R"({"error":"invalid_client","error_description":"invalid client credentials"})");
}

TEST_CASE("an unknown grant type gets unsupported_grant_type") {
  harness h;
  auto r = token_request(h, {{"grant_type", "authorization_code"}});
  CHECK(r.status == 400);
  CHECK(r.body == R"({"error":"unsupported_grant_type","error_description":"grant type not supported"})");
}

TEST_CASE("the refresh token grant issues a new access token, also after all sessions were expired") {
  harness h;
  auto first = token_request(h, password_form);
  const auto refresh = json_string(first.body, "refresh_token");
  h.run([&] {
    h.org().expire_all_sessions();
    return 0;
  });
  auto r = token_request(h, {{"grant_type", "refresh_token"}, {"client_id", "sfstream-demo-client"},
                             {"client_secret", "sfstream-demo-secret"}, {"refresh_token", refresh}});
  CHECK(r.status == 200);
  CHECK(json_string(r.body, "access_token") != json_string(first.body, "access_token"));
  CHECK_FALSE(h.handshake(json_string(r.body, "access_token")).empty());
  auto bad = token_request(h, {{"grant_type", "refresh_token"}, {"client_id", "sfstream-demo-client"}, {"refresh_token", "x"}});
  CHECK(bad.body == R"({"error":"invalid_grant","error_description":"expired access/refresh token"})");
}

TEST_CASE("the client credentials grant issues a token for the run-as user") {
  harness h;
  auto r = token_request(h, {{"grant_type", "client_credentials"}, {"client_id", "sfstream-demo-client"},
                             {"client_secret", "sfstream-demo-secret"}});
  CHECK(r.status == 200);
  CHECK(r.body.find("\"refresh_token\"") == std::string::npos);
}

TEST_CASE("the JWT bearer grant accepts an RS256 assertion signed by the configured key and rejects others") {
  test_key key;
  test_key other;
  auto options = test_options();
  options.oauth_clients.push_back({"jwt-client", "jwt-secret", key.public_pem()});
  harness h(options);
  const std::string aud = h.org().login_url();
  const auto exp = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                      std::chrono::system_clock::now().time_since_epoch()).count() + 300);
  auto claims = [&](const std::string& iss, const std::string& sub, const std::string& audience, const std::string& expiry) {
    return R"({"iss":")" + iss + R"(","sub":")" + sub + R"(","aud":")" + audience + R"(","exp":)" + expiry + "}";
  };
  auto grant = [&](const std::string& assertion) {
    return token_request(h, {{"grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"}, {"assertion", assertion}});
  };
  auto ok = grant(key.jwt(claims("jwt-client", "demo@sfstream.local", aud, exp)));
  CHECK(ok.status == 200);
  CHECK_FALSE(h.handshake(json_string(ok.body, "access_token")).empty());
  CHECK(grant(other.jwt(claims("jwt-client", "demo@sfstream.local", aud, exp))).body ==
        R"({"error":"invalid_grant","error_description":"invalid assertion"})");
  CHECK(grant(key.jwt(claims("jwt-client", "demo@sfstream.local", "https://login.salesforce.com", exp))).body ==
        R"({"error":"invalid_grant","error_description":"audience is invalid"})");
  CHECK(grant(key.jwt(claims("jwt-client", "demo@sfstream.local", aud, "1000"))).status == 400);
  CHECK(grant(key.jwt(claims("nobody", "demo@sfstream.local", aud, exp))).body ==
        R"({"error":"invalid_client_id","error_description":"client identifier invalid"})");
  CHECK(grant("not.a.jwt!").status == 400);
}

TEST_CASE("REST calls without a valid session get 401 INVALID_SESSION_ID") {
  harness h;
  auto r = h.send("GET", "/services/data/v59.0/sobjects", "", {{"Authorization", "Bearer nope"}});
  CHECK(r.status == 401);
  CHECK(r.body == R"([{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}])");
  auto ok = h.send("GET", "/services/data/v59.0/limits", "", {{"Authorization", "Bearer " + h.token()}});
  CHECK(ok.status != 401);
}
