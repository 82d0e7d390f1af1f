// The library's version.
#pragma once

namespace sfstream {

/// "MAJOR.MINOR.PATCH" of the sfstream library linked in.
const char* version_string() noexcept;

}  // namespace sfstream
