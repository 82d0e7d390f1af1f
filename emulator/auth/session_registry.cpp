#include "emulator/auth/session_registry.hpp"

#include <array>
#include <stdexcept>

#include <openssl/rand.h>

namespace sfstream::emulator::auth {

std::string random_text(std::size_t length, std::string_view alphabet) {
  std::string out;
  out.reserve(length);
  std::array<unsigned char, 64> buffer{};
  while (out.size() < length) {
    if (RAND_bytes(buffer.data(), static_cast<int>(buffer.size())) != 1) {
      throw std::runtime_error("OpenSSL RAND_bytes failed");
    }
    // Rejection sampling keeps the characters uniform.
    const std::size_t limit = 256 - (256 % alphabet.size());
    for (unsigned char byte : buffer) {
      if (byte < limit && out.size() < length) {
        out.push_back(alphabet[byte % alphabet.size()]);
      }
    }
  }
  return out;
}

std::string browser_id_cookie() {
  return "BrowserId=" +
         random_text(22, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") +
         "; path=/; Max-Age=31536000";
}

namespace {
constexpr std::string_view token_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";
}

session_registry::session_registry(const clock& clk, std::chrono::seconds lifetime, std::string org_id15)
    : clock_(clk), lifetime_(lifetime), org_id15_(std::move(org_id15)) {}

std::string session_registry::create_session(const std::string& username) {
  std::string id = org_id15_ + "!" + random_text(96, token_alphabet);
  sessions_[id] = session{username, clock_.now()};
  return id;
}

std::string session_registry::create_refresh_token(const std::string& username) {
  std::string token = "5Aep" + random_text(83, token_alphabet);
  refresh_tokens_[token] = username;
  return token;
}

std::optional<std::string> session_registry::use_session(const std::string& session_id) {
  auto it = sessions_.find(session_id);
  if (it == sessions_.end()) {
    return std::nullopt;
  }
  const auto now = clock_.now();
  if (now - it->second.last_used > lifetime_) {
    sessions_.erase(it);
    return std::nullopt;
  }
  it->second.last_used = now;
  return it->second.username;
}

std::optional<std::string> session_registry::refresh_token_user(const std::string& refresh_token) const {
  auto it = refresh_tokens_.find(refresh_token);
  if (it == refresh_tokens_.end()) {
    return std::nullopt;
  }
  return it->second;
}

void session_registry::expire_all() { sessions_.clear(); }

bool session_registry::end_session(const std::string& session_id) {
  if (!use_session(session_id)) return false;
  return sessions_.erase(session_id) == 1;
}

}  // namespace sfstream::emulator::auth
