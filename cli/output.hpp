// What the `sfstream` command writes: event JSON lines on stdout (one per event, flushed),
// human lines and logs on stderr, and the exit code an error maps to.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "sfstream/error.hpp"
#include "sfstream/event.hpp"
#include "sfstream/logger.hpp"

namespace sfstream::cli {

/// `text` as a JSON string literal, quotes included.
std::string json_string(std::string_view text);

/// {"channel":…,"replayId":…,"data":{…}}: the data object is copied byte for byte from the
/// event as received, never re-encoded. replayId is null when the server sent none.
std::string event_line(const event& e);

/// One human line about an event, e.g. "PushTopic /topic/X: updated Account 001… (replay 3)".
std::string summarize(const event& e);

/// Writes `line` and a newline to stdout and flushes (a consumer sees each event at once).
void print_line(std::string_view line);
/// Writes "sfstream: " + `line` and a newline to stderr.
void print_error(std::string_view line);

/// Writes `line` and a newline to stderr as is (human summaries).
void print_note(std::string_view line);

/// Remembers secrets the user gave (passwords, tokens) so print_error and the logger mask them
/// should any server text ever echo one back. Strings shorter than 4 characters are ignored.
void add_secret(std::string secret);

/// A logger writing "sfstream: <level>: text" to stderr: warnings and errors by default; with
/// `verbose`, debug lines too (meta traffic, secrets redacted).
logger stderr_logger(bool verbose);

/// The exit code for an error: 3 authentication, 4 subscription rejected, 5 replay gap,
/// 6 retries exhausted, 130 cancelled, 2 configuration, 1 anything else.
int exit_code_for(const error_info& error);

/// A line for stderr: "SERVER_CODE: server text (sfstream's message; context)".
std::string describe(const error_info& error);
/// Prints "<what>: <error>" on stderr and returns the exit code for the error (1 at least).
int report_failure(const std::string& what, const error_info& error);

}  // namespace sfstream::cli
