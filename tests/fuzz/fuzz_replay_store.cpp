// libFuzzer target: the file replay store's document parser. Any input must either be refused
// with errc::replay_store_corrupt or parse into positions that serialise and parse back equal.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "src/replay/file_replay_store.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::map<std::string, sfstream::replay_position> positions;
  const auto failed = sfstream::detail::parse_replay_store(text, "fuzz.json", positions);
  if (failed) {
    if (failed.code != sfstream::errc::replay_store_corrupt) std::abort();
    return 0;
  }
  const std::string again = sfstream::detail::serialize_replay_store(positions);
  std::map<std::string, sfstream::replay_position> reread;
  if (sfstream::detail::parse_replay_store(again, "fuzz.json", reread)) std::abort();
  if (reread.size() != positions.size()) std::abort();
  for (const auto& [key, position] : positions) {
    const auto found = reread.find(key);
    if (found == reread.end() || found->second.replay_id != position.replay_id ||
        found->second.event_time != position.event_time) {
      std::abort();
    }
  }
  return 0;
}
