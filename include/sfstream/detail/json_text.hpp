// JSON text helpers shared by every layer that writes JSON by hand (the Bayeux encoders, the
// CLI's output lines). Pure standard C++.
#pragma once

#include <string>
#include <string_view>

namespace sfstream::detail {

/// Appends `text` as a quoted JSON string: quotes, backslashes and control characters escaped,
/// everything else (UTF-8 included) kept byte for byte.
void append_json_string(std::string& out, std::string_view text);

}  // namespace sfstream::detail
