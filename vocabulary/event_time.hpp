// Event times as text: ISO-8601 UTC with milliseconds ("2016-03-29T16:40:08.208Z"), the form
// Salesforce uses for createdDate and the form the file replay store keeps beside each id.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace sfstream::detail {

/// "YYYY-MM-DDTHH:MM:SS.mmmZ", floored to the millisecond (system_clock's nanosecond range,
/// 1677-2262, always gives four-digit years, so the result always parses back).
std::string format_event_time(std::chrono::system_clock::time_point time);

/// Parses exactly "YYYY-MM-DDTHH:MM:SS.mmmZ" (the milliseconds are required, the zone must be Z).
/// Anything else, an impossible date, or a time outside system_clock's range → nullopt.
std::optional<std::chrono::system_clock::time_point> parse_event_time(
    std::string_view text) noexcept;

}  // namespace sfstream::detail
