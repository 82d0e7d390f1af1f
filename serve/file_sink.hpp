// The file sink of `sfstream serve`: JSON Lines appended to one file, fsynced before a batch is
// confirmed, rotated by size (PATH.1 is the newest rotated file, PATH.N the oldest kept).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>

#include "serve/line_sink.hpp"

namespace sfstream::serve {

struct file_sink_options {
  std::filesystem::path path;
  /// A batch that would make the file larger than this goes to a fresh file (the current one
  /// is rotated first); a single batch larger than this still goes whole into one file.
  std::uint64_t max_bytes = 100ull << 20;
  /// Rotated files kept besides PATH; 0 keeps none (PATH is simply started again).
  unsigned keep = 5;
};

/// The file is opened (created 0640) at the first batch, so a missing directory is a batch
/// failure reported like a full disk, not a crash. A failed write or fsync truncates the file
/// back to where the batch began: no partial line stays behind and nothing is committed.
std::shared_ptr<sink> make_file_sink(file_sink_options options, logger log);

}  // namespace sfstream::serve
