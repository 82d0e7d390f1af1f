// Appending a record to a file so that it survives a crash once the call returns: the dead
// letters of the client's handler policy and of the service's webhook sink.
#pragma once

#include <filesystem>
#include <string_view>

#include "sfstream/error.hpp"

namespace sfstream::detail {

/// Appends `text` to `path` (created 0600 if missing), fsyncs it, and for a new file fsyncs
/// its directory too. Failures are errc::output_failed naming the step, the path and errno
/// (kept as the cause), with `doing` as their context (e.g. "writing a dead letter").
error_info append_durably(const std::filesystem::path& path, std::string_view text,
                          std::string_view doing);

}  // namespace sfstream::detail
