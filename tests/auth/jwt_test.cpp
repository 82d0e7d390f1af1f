#include <doctest/doctest.h>

#include <memory>
#include <ostream>
#include <string>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <rapidjson/document.h>

#include "src/auth/jwt.hpp"

using namespace sfstream;
using namespace sfstream::auth;

namespace {

struct key_pair {
  std::string private_pem;
  std::string public_pem;
};

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(size));
}

key_pair make_key(int type = EVP_PKEY_RSA) {
  EVP_PKEY* key =
      type == EVP_PKEY_RSA ? EVP_RSA_gen(2048) : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  REQUIRE(key);
  BIO* priv = BIO_new(BIO_s_mem());
  BIO* pub = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(priv, key, nullptr, nullptr, 0, nullptr, nullptr);
  PEM_write_bio_PUBKEY(pub, key);
  key_pair out{bio_text(priv), bio_text(pub)};
  BIO_free(priv);
  BIO_free(pub);
  EVP_PKEY_free(key);
  return out;
}

std::string base64url_decode(std::string_view text) {
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (char c : text) {
    int v = -1;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '-')
      v = 62;
    else if (c == '_')
      v = 63;
    REQUIRE(v >= 0);
    buffer = (buffer << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xff);
    }
  }
  return out;
}

bool verify(const std::string& public_pem, std::string_view signed_part,
            const std::string& signature) {
  BIO* bio = BIO_new_mem_buf(public_pem.data(), static_cast<int>(public_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!key) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok =
      EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
      EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature.data()),
                       signature.size(), reinterpret_cast<const unsigned char*>(signed_part.data()),
                       signed_part.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  return ok;
}

}  // namespace

TEST_CASE("base64url has no padding and uses - and _") {
  CHECK(base64url_encode("") == "");
  CHECK(base64url_encode("f") == "Zg");
  CHECK(base64url_encode("fo") == "Zm8");
  CHECK(base64url_encode("foo") == "Zm9v");
  CHECK(base64url_encode("\xfb\xff") == "-_8");
}

TEST_CASE("a JWT made here verifies with the public key through OpenSSL and its claims decode") {
  const key_pair keys = make_key();
  const jwt_claims claims{"3MVG9client\"id", "user@example.com", "https://login.salesforce.com",
                          1700000180};
  std::string jwt;
  REQUIRE_FALSE(build_jwt_assertion(claims, keys.private_pem, jwt));

  const auto dot1 = jwt.find('.');
  const auto dot2 = jwt.find('.', dot1 + 1);
  REQUIRE(dot2 != std::string::npos);
  CHECK(jwt.find('=') == std::string::npos);
  CHECK(verify(keys.public_pem, std::string_view(jwt).substr(0, dot2),
               base64url_decode(jwt.substr(dot2 + 1))));

  rapidjson::Document header;
  header.Parse(base64url_decode(jwt.substr(0, dot1)).c_str());
  REQUIRE(header.IsObject());
  CHECK(std::string(header["alg"].GetString()) == "RS256");

  rapidjson::Document body;
  body.Parse(base64url_decode(jwt.substr(dot1 + 1, dot2 - dot1 - 1)).c_str());
  REQUIRE(body.IsObject());
  CHECK(std::string(body["iss"].GetString()) == claims.issuer);
  CHECK(std::string(body["sub"].GetString()) == "user@example.com");
  CHECK(std::string(body["aud"].GetString()) == "https://login.salesforce.com");
  CHECK(body["exp"].GetInt64() == 1700000180);
}

TEST_CASE("a tampered JWT does not verify") {
  const key_pair keys = make_key();
  std::string jwt;
  REQUIRE_FALSE(
      build_jwt_assertion({"c", "u", "https://test.salesforce.com", 1}, keys.private_pem, jwt));
  const auto dot2 = jwt.rfind('.');
  std::string tampered = jwt.substr(0, dot2);
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
  CHECK_FALSE(verify(keys.public_pem, tampered, base64url_decode(jwt.substr(dot2 + 1))));
}

TEST_CASE(
    "missing, malformed, encrypted and non-RSA keys are configuration errors that never echo the "
    "key") {
  std::string jwt;
  const jwt_claims claims{"c", "u", "https://login.salesforce.com", 1};
  CHECK(build_jwt_assertion(claims, "", jwt).code == errc::invalid_config);
  const error_info garbage = build_jwt_assertion(
      claims, "-----BEGIN PRIVATE KEY-----\nSECRETKEYDATA\n-----END PRIVATE KEY-----\n", jwt);
  CHECK(garbage.code == errc::invalid_config);
  CHECK(garbage.to_string().find("SECRETKEYDATA") == std::string::npos);

  EVP_PKEY* key = EVP_RSA_gen(2048);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, EVP_aes_256_cbc(), nullptr, 0, nullptr,
                           const_cast<char*>("pass"));
  const std::string encrypted = bio_text(bio);
  BIO_free(bio);
  EVP_PKEY_free(key);
  CHECK(build_jwt_assertion(claims, encrypted, jwt).code == errc::invalid_config);

  const error_info ec = build_jwt_assertion(claims, make_key(EVP_PKEY_EC).private_pem, jwt);
  CHECK(ec.code == errc::invalid_config);
  CHECK(ec.diag.server_text.find("RSA") != std::string::npos);
  CHECK(jwt.empty());
}
