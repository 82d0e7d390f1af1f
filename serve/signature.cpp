#include "serve/signature.hpp"

#include <array>
#include <memory>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

namespace sfstream::serve {

namespace {

struct mac_deleter {
  void operator()(EVP_MAC* mac) const noexcept { EVP_MAC_free(mac); }
  void operator()(EVP_MAC_CTX* ctx) const noexcept { EVP_MAC_CTX_free(ctx); }
};

std::string to_hex(const unsigned char* bytes, std::size_t size) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out += digits[bytes[i] >> 4];
    out += digits[bytes[i] & 0x0f];
  }
  return out;
}

// HMAC-SHA256 over the parts back to back, without joining them (a body may be a megabyte).
std::string hmac_sha256_hex(std::string_view key, std::string_view a, std::string_view b,
                            std::string_view c) {
  std::unique_ptr<EVP_MAC, mac_deleter> mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  if (!mac) return {};
  std::unique_ptr<EVP_MAC_CTX, mac_deleter> ctx(EVP_MAC_CTX_new(mac.get()));
  if (!ctx) return {};
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_END};
  // An empty key is valid HMAC; OpenSSL wants a non-null pointer for it.
  static const unsigned char no_key = 0;
  const auto* key_bytes =
      key.empty() ? &no_key : reinterpret_cast<const unsigned char*>(key.data());
  if (EVP_MAC_init(ctx.get(), key_bytes, key.size(), params) != 1) return {};
  for (const auto part : {a, b, c}) {
    if (!part.empty() &&
        EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(part.data()),
                       part.size()) != 1) {
      return {};
    }
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  std::size_t size = 0;
  if (EVP_MAC_final(ctx.get(), out.data(), &size, out.size()) != 1) return {};
  return to_hex(out.data(), size);
}

}  // namespace

std::string sign_webhook(std::string_view key, std::int64_t timestamp, std::string_view body) {
  const std::string stamp = std::to_string(timestamp);
  return hmac_sha256_hex(key, stamp, ".", body);
}

std::string signature_header_value(std::string_view key, std::int64_t timestamp,
                                   std::string_view body) {
  return "v1=" + sign_webhook(key, timestamp, body);
}

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff = static_cast<unsigned char>(diff | (static_cast<unsigned char>(a[i]) ^
                                              static_cast<unsigned char>(b[i])));
  }
  return diff == 0;
}

bool verify_webhook(std::string_view key, std::string_view timestamp, std::string_view body,
                    std::string_view header) {
  if (timestamp.empty()) return false;
  const std::string expected = hmac_sha256_hex(key, timestamp, ".", body);
  if (expected.empty()) return false;
  bool found = false;
  while (!header.empty()) {
    const auto comma = header.find(',');
    auto item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.substr(0, 3) != "v1=") continue;
    // Every candidate is compared, so the time taken does not tell which one matched.
    found = constant_time_equal(item.substr(3), expected) || found;
  }
  return found;
}

}  // namespace sfstream::serve
