// The JSON Lines sinks of `sfstream serve`: every batch becomes one buffer of event lines
// (serve/event_line.hpp), written in full and made durable before done() is called. A write
// that fails fails the whole batch (nothing of it is committed) and is logged once, until a
// write succeeds again.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "serve/sink.hpp"
#include "sfstream/error.hpp"
#include "sfstream/logger.hpp"

namespace sfstream::serve {

/// The common part of the stdout and file sinks: lines, figures, the report-once rule.
class line_sink : public sink {
 public:
  explicit line_sink(logger log) : log_(std::move(log)) {}

  void deliver(const std::string& connection, const std::string& channel,
               std::span<const event> events, batch_done done) final;
  /// Nothing waits between tries here: a batch being written is finished first.
  void stop() override {}
  sink_figures figures() const final;

 protected:
  /// Writes `lines` (whole lines) durably, all or nothing as far as the destination allows.
  virtual error_info write(std::string_view lines) = 0;
  /// "stdout", or "file PATH": named in the failure report.
  virtual std::string describe() const = 0;
  /// Writes all of `data` to `fd` (again after EINTR and short writes): 0, or the errno of the
  /// write that failed.
  static int write_all(int fd, std::string_view data);

 private:
  logger log_;
  mutable std::mutex mutex_;
  sink_figures figures_;
  bool failing_ = false;
};

/// Writes to standard output: lines of every connection's stdout sink are never interleaved
/// (one process-wide lock around each batch's write). Not fsynced (a pipe or terminal cannot be).
std::shared_ptr<sink> make_stdout_sink(logger log);

}  // namespace sfstream::serve
