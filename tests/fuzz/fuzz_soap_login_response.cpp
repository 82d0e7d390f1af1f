// libFuzzer target: the SOAP login response and fault parser must never crash, hang or leak
// the session id into its diagnostics, whatever the bytes and HTTP status.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "soap_auth/login_response.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const unsigned status = size > 0 && (data[0] & 1) ? 500u : 200u;
  sfstream::soap_auth::login_result result;
  const sfstream::error_info error =
      sfstream::soap_auth::parse_login_response(body, status, result);
  const std::string text = error.to_string();
  if (!error && (result.session_id.empty() || result.instance_url.empty())) std::abort();
  if (result.session_id.size() >= 8 && text.find(result.session_id) != std::string::npos)
    std::abort();
  return 0;
}
