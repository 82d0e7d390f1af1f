// libFuzzer target: the CDC event parser and the REST query page parser must never crash,
// hang or leak on any input.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sfstream/change_event.hpp"
#include "sfstream/rest.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  sfstream::error_info why;
  if (auto e = sfstream::parse_change_event(text, &why)) {
    for (const auto& [name, value] : e->fields) {
      (void)value.to_json();
      (void)value.is_diff();
    }
    (void)e->has_wildcard_ids();
  }
  (void)sfstream::parse_query_page(text, &why);
  (void)sfstream::parse_rest_error(400, text, "fuzz");
  return 0;
}
