// libFuzzer target: the OAuth token reply parser must never crash or hang, and a success must
// carry an access token and an instance URL.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "src/auth/oauth_reply.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  sfstream::auth::oauth_token token;
  const sfstream::error_info error = sfstream::auth::parse_oauth_reply(body, 200, token);
  (void)error.to_string();
  if (!error && (token.access_token.empty() || token.instance_url.empty())) std::abort();
  return 0;
}
