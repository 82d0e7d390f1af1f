#include "sfstream/version.hpp"

namespace sfstream {

const char* version_string() noexcept { return "0.1.0"; }

}  // namespace sfstream
