// Date and datetime text in the forms Salesforce uses: canonical storage
// "YYYY-MM-DDTHH:MM:SS.mmmZ", REST output "…+0000", input with Z or a ±hh:mm / ±hhmm offset.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sfstream::emulator::data {

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept;
/// "YYYY-MM-DD" of a day number.
std::string civil_from_days(std::int64_t days);

/// "YYYY-MM-DD" → itself when valid.
std::optional<std::string> parse_date(std::string_view text);
/// "YYYY-MM-DDTHH:MM[:SS[.fff]](Z|±hh:mm|±hhmm)" → canonical UTC "YYYY-MM-DDTHH:MM:SS.mmmZ".
std::optional<std::string> parse_datetime(std::string_view text);
/// Epoch milliseconds of a canonical datetime.
std::int64_t epoch_ms(std::string_view canonical);
/// Canonical datetime of a time point (millisecond precision).
std::string format_datetime(std::chrono::system_clock::time_point at);
/// REST rendering of a canonical datetime: "…Z" becomes "…+0000".
std::string rest_datetime(const std::string& canonical);

}  // namespace sfstream::emulator::data
