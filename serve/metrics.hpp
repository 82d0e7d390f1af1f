// /metrics of `sfstream serve`: the status snapshot in the Prometheus text exposition format
// (version 0.0.4): HELP and TYPE lines, counters ending in _total, the sink latency as a
// histogram, labels `connection` (and `channel`, `cause`, `state`) escaped as the format says.
#pragma once

#include <string>
#include <string_view>

#include "serve/status.hpp"

namespace sfstream::serve {

/// The Content-Type of render_metrics' output.
inline constexpr std::string_view metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric of the snapshot, one family after the other, each family's HELP and TYPE
/// first; ends with a newline. docs/operations.md lists the families.
std::string render_metrics(const service_status& status);

/// A label value escaped for the exposition format: backslash, double quote and line feed.
std::string escape_label_value(std::string_view value);

}  // namespace sfstream::serve
