#include "src/auth/jwt.hpp"

#include <climits>
#include <memory>
#include <vector>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace sfstream::auth {
namespace {

error_info key_error(std::string text) {
  ERR_clear_error();
  error_info info{make_error_code(errc::invalid_config), {}};
  info.diag.context = "signing the JWT bearer assertion";
  info.diag.server_text = std::move(text);
  return info;
}

// Refuses to prompt for a pass phrase: an encrypted key simply fails to load.
int no_passphrase(char*, int, int, void*) {
  return 0;
}

struct bio_free {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct pkey_free {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
struct md_ctx_free {
  void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};

}  // namespace

std::string base64url_encode(std::string_view bytes) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto at = [&](std::size_t k) {
    return static_cast<unsigned>(static_cast<unsigned char>(bytes[k]));
  };
  for (; i + 3 <= bytes.size(); i += 3) {
    const unsigned v = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  if (bytes.size() - i == 1) {
    const unsigned v = at(i) << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
  } else if (bytes.size() - i == 2) {
    const unsigned v = (at(i) << 16) | (at(i + 1) << 8);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
  }
  return out;
}

error_info build_jwt_assertion(const jwt_claims& claims, std::string_view private_key_pem,
                               std::string& assertion) {
  if (private_key_pem.empty()) return key_error("no private key was given");
  if (private_key_pem.size() > static_cast<std::size_t>(INT_MAX))
    return key_error("the private key is too large");

  std::unique_ptr<BIO, bio_free> bio(
      BIO_new_mem_buf(private_key_pem.data(), static_cast<int>(private_key_pem.size())));
  if (!bio) return key_error("out of memory reading the private key");
  std::unique_ptr<EVP_PKEY, pkey_free> key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) return key_error("the private key is not an unencrypted PEM private key");
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA)
    return key_error("the private key is not an RSA key (RS256 needs RSA)");

  rapidjson::StringBuffer claims_json;
  {
    rapidjson::Writer<rapidjson::StringBuffer> w(claims_json);
    w.StartObject();
    w.Key("iss");
    w.String(claims.issuer.data(), static_cast<rapidjson::SizeType>(claims.issuer.size()));
    w.Key("sub");
    w.String(claims.subject.data(), static_cast<rapidjson::SizeType>(claims.subject.size()));
    w.Key("aud");
    w.String(claims.audience.data(), static_cast<rapidjson::SizeType>(claims.audience.size()));
    w.Key("exp");
    w.Int64(claims.expires_at);
    w.EndObject();
  }
  std::string signing_input = base64url_encode(R"({"alg":"RS256","typ":"JWT"})");
  signing_input += '.';
  signing_input +=
      base64url_encode(std::string_view(claims_json.GetString(), claims_json.GetSize()));

  std::unique_ptr<EVP_MD_CTX, md_ctx_free> ctx(EVP_MD_CTX_new());
  std::size_t signature_size = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &signature_size,
                     reinterpret_cast<const unsigned char*>(signing_input.data()),
                     signing_input.size()) != 1) {
    return key_error("OpenSSL could not sign with the private key");
  }
  std::vector<unsigned char> signature(signature_size);
  if (EVP_DigestSign(ctx.get(), signature.data(), &signature_size,
                     reinterpret_cast<const unsigned char*>(signing_input.data()),
                     signing_input.size()) != 1) {
    return key_error("OpenSSL could not sign with the private key");
  }
  signing_input += '.';
  signing_input += base64url_encode(
      std::string_view(reinterpret_cast<const char*>(signature.data()), signature_size));
  assertion = std::move(signing_input);
  return {};
}

}  // namespace sfstream::auth
