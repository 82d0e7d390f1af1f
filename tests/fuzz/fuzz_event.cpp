// libFuzzer target: an event message's typed views. Any input must be read or refused with
// errc::protocol_error, never crash, and every JSON text handed out must be a piece of the input;
// data_json() is a view into the event's own text, shared by its copies.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sfstream/event.hpp"

namespace {

void require_piece(std::string_view whole, std::string_view piece) {
  if (whole.find(piece) == std::string_view::npos) std::abort();
}

// `piece` is a view into `whole` itself, not a copy.
void require_inside(std::string_view whole, std::string_view piece) {
  if (piece.empty()) return;
  if (piece.data() < whole.data() || piece.data() + piece.size() > whole.data() + whole.size()) {
    std::abort();
  }
}

void require_refused_or_clear(const sfstream::error_info& why) {
  if (why && why.code != sfstream::errc::protocol_error) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string json(reinterpret_cast<const char*>(data), size);
  const sfstream::event e("/topic/Fuzz", 1, json);
  if (e.json() != json) std::abort();
  require_inside(e.json(), e.data_json());
  const sfstream::event copy = e;
  if (copy.json().data() != e.json().data() || copy.data_json() != e.data_json()) std::abort();

  sfstream::error_info why;
  const auto pushtopic = e.as_pushtopic(&why);
  require_refused_or_clear(why);
  if (!why) require_piece(json, pushtopic.sobject_json);

  (void)e.as_generic(&why);
  require_refused_or_clear(why);

  const auto platform = e.as_platform_event(&why);
  require_refused_or_clear(why);
  if (!why) require_piece(json, platform.payload_json);

  const auto change = e.as_change(&why);
  require_refused_or_clear(why);
  if (!why) {
    require_piece(json, change.payload_json);
    require_piece(change.payload_json, change.header_json);
  }
  return 0;
}
