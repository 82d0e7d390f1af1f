// What the `sfstream` command writes: event JSON lines on stdout (one per event, flushed),
// human lines and logs on stderr, and the exit code an error maps to.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cli/json_line.hpp"
#include "sfstream/error.hpp"
#include "sfstream/event.hpp"
#include "sfstream/logger.hpp"
#include "sfstream/replay.hpp"

namespace sfstream::cli {

/// `text` as a JSON string literal, quotes included.
std::string json_string(std::string_view text);

/// {"channel":…,"replayId":…,"data":{…}}: the data object is copied byte for byte from the
/// event as received, never re-encoded, unless it would not make one line of valid JSON: then
/// it is compacted and invalid UTF-8 replaced (append_json_line), and `fix` (when given) says
/// what was done. replayId is null when the server sent none.
std::string event_line(const event& e, json_line_fix* fix = nullptr);
/// The same line appended to `out`, with no allocation of its own. `channel_json`, when given,
/// is the event's channel already written as a JSON string (channel_json_of): the events of one
/// batch share it.
void append_event_line(std::string& out, const event& e, json_line_fix* fix = nullptr,
                       std::string_view channel_json = {});
/// A channel name as the JSON string an event line carries.
std::string channel_json_of(std::string_view channel);

/// {"gap":{"channel":…,"reason":"expired"|"refused"|"resubscribed_at_tip","lastReplayId":…,
/// "lastEventTime":…,"since":…,"until":…,"policy":…,"resumedFrom":…}}: one line for stderr.
/// Times are UTC "YYYY-MM-DDTHH:MM:SS.mmmZ"; a value that is not known is null, and
/// resumedFrom is null under policy fail.
std::string gap_json(const gap_record& gap);

/// {"rejected":{"channel":…,"error":…}}: one line for stderr; `error` is describe(why).
std::string rejected_json(std::string_view channel, const error_info& why);

/// A replay position to commit once the lines before it are on stdout.
struct printed_mark {
  std::string key;  ///< The replay key (channel without filter).
  std::int64_t replay_id = 0;
};

/// Event lines on their way to a file descriptor (stdout). Lines are gathered in one buffer and
/// written with as few write(2) calls as the descriptor accepts; a mark is handed back as
/// written only once every byte appended before it was written. The first failed write ends
/// the writer: nothing more is written, and error() keeps its errno. Not thread-safe: one
/// thread (the handler thread) uses it.
class line_writer {
 public:
  explicit line_writer(int fd) : fd_(fd) {}

  /// Appends `line` and a newline.
  void append(std::string_view line);
  /// Appends the event's line (append_event_line) and a newline.
  void append_event(const event& e, json_line_fix* fix, std::string_view channel_json = {});
  /// Hands `mark` back from flush() once everything appended so far has been written.
  void mark(printed_mark mark);
  /// Writes what is pending; returns the marks now written, in order. After a failure it
  /// returns the marks whose lines were written in full before it, and drops the rest.
  std::vector<printed_mark> flush();

  /// Bytes appended and not written yet.
  std::size_t pending() const noexcept { return buffer_.size(); }
  /// The errno of the failed write (EPIPE: the reader went away); 0 while none failed.
  int error() const noexcept { return error_; }

 private:
  int fd_;
  std::string buffer_;
  std::vector<std::pair<std::size_t, printed_mark>> marks_;  // buffer offset, mark
  int error_ = 0;
};

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
/// 6 retries exhausted (or a network error a retry could fix, per is_retryable), 8 output
/// failed, 10 replay store not saved, 130 cancelled, 2 configuration, 1 anything else.
int exit_code_for(const error_info& error);

/// What the user can do about an error no retry fixes, as a sentence; empty when there is no
/// such advice. A certificate that fails verification names --ca-file.
std::string advice_for(const error_info& error);

/// A line for stderr: "SERVER_CODE: server text (sfstream's message; context)".
std::string describe(const error_info& error);
/// Prints "<what>: <error>" (and advice_for's sentence) on stderr and returns the exit code for the
/// error (1 at least).
int report_failure(const std::string& what, const error_info& error);

}  // namespace sfstream::cli
