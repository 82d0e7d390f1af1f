// Durable replay positions: the last replay id handled per channel, and that event's time.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "sfstream/error.hpp"

namespace sfstream {

/// A channel's (or a polled object's) last handled event.
struct replay_position {
  /// The stream position; unused (0) when `cursor` holds the position.
  std::int64_t replay_id = 0;
  /// When the event was created (or received).
  std::chrono::system_clock::time_point event_time{};
  /// A position that is not a replay id, as opaque text: the polling source's cursor
  /// (SystemModstamp, Id and the changes already emitted inside its overlap window). Empty for
  /// stream positions. Stores keep it byte for byte.
  std::string cursor{};
};

/// Where committed replay positions live. Keys are replay keys (the channel without a filter).
/// Implementations are used from one thread at a time.
class replay_store {
 public:
  virtual ~replay_store() = default;
  /// The stored position of `replay_key`, if any.
  virtual std::optional<replay_position> load(const std::string& replay_key) const = 0;
  /// Every stored position.
  virtual std::map<std::string, replay_position> load_all() const = 0;
  /// Records positions durably before returning (one atomic write for the whole batch).
  virtual error_info save(const std::map<std::string, replay_position>& positions) = 0;
};

/// A store that lives in memory only (the default: positions survive re-handshakes, not restarts).
std::shared_ptr<replay_store> make_memory_replay_store();

/// A store in one file: writes are atomic (temporary file, fsync, rename) and the store holds an
/// exclusive lock (a second process gets errc::replay_store_locked) until it is destroyed.
/// Throws sfstream::error when the file cannot be locked, read or parsed.
///
/// The file is a small JSON document (replay ids exact over the whole int64 range, event times
/// as ISO-8601 UTC kept to the millisecond, cursors as strings: an entry holds either a
/// "replayId" or a "cursor"). A store without cursors is written exactly as before cursors
/// existed, so older files read back unchanged. The path is resolved first (realpath of the
/// directory, symbolic links at the name followed to their target), and every file lives beside
/// the real path: a store reached through a symlink is written through it and stays a symlink.
/// The store holds flocks on "<real path>.lock" (left in place) and on the document's current
/// inode, so a second open of the same store fails while the first lives, in this process or
/// another, whatever path reaches it (symlinks, hard links) and even after the lock file was
/// deleted. Each save first checks that no other writer got in (errc::replay_store_locked
/// otherwise, for that save and every later one). A missing file is an empty store; a file
/// that does not parse is errc::replay_store_corrupt (never read as empty, and never
/// overwritten by the failed open); a file or lock that cannot be opened or read is
/// errc::replay_store_io. Every error names the path. save() merges the given positions into
/// the stored ones and never throws: a failed write is errc::replay_store_io with the system
/// error in error_info::cause, leaving the previous file intact.
std::shared_ptr<replay_store> open_file_replay_store(const std::filesystem::path& path);

}  // namespace sfstream
