// The file replay store's document codec, separate from its I/O so that it can be fuzzed.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "sfstream/error.hpp"
#include "sfstream/replay_store.hpp"

namespace sfstream::detail {

/// Parses a store document into `positions` (merged over what it holds). Any deviation from the
/// format is errc::replay_store_corrupt, its diagnostics naming `path` and what is wrong.
error_info parse_replay_store(std::string_view text, const std::filesystem::path& path,
                              std::map<std::string, replay_position>& positions);

/// The store document for `positions`; parse_replay_store reads it back to the same map, event
/// times floored to the millisecond.
std::string serialize_replay_store(const std::map<std::string, replay_position>& positions);

}  // namespace sfstream::detail
