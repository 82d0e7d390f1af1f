// Benchmark controls of the emulator (/_emulator/bench/...): fill a platform event channel with
// a backlog fast, and publish at a steady rate with the publication time in each event, so that
// a benchmark measures clients rather than its own publisher.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "src/transport/http_types.hpp"

namespace sfstream::emulator {
class org_emulator;
}

namespace sfstream::emulator::control {

/// The benchmark endpoints. Each platform event it publishes has two text fields: `Body__c`
/// (padding, so that the Bayeux event message is about the requested size) and `SentAt__c`
/// (the publication time as decimal microseconds since the Unix epoch, wall clock). The event
/// is defined on first use.
///
///   POST /_emulator/bench/preload {"event":"Bench__e","count":N,"bytes":S}
///        publishes N events at once; answers {"ok":true,"lastReplayId":"…"}.
///   POST /_emulator/bench/pace {"event":"Bench__e","count":N,"rate":R,"bytes":S}
///        answers at once, waits until the channel has a new subscriber (at most 60 s), lets it
///        settle for 200 ms, then publishes N events at R per second on a fixed schedule.
///        A new pace replaces one still running.
///   GET  /_emulator/bench/pace   {"published":N,"running":true|false}
class bench_api {
 public:
  /// `org` must outlive this object; all calls on `executor` (the emulator's).
  bench_api(org_emulator& org, boost::asio::any_io_executor executor);
  bench_api(const bench_api&) = delete;
  bench_api& operator=(const bench_api&) = delete;

  /// Answers a request whose path starts with /_emulator/bench/.
  transport::http_response handle(const transport::http_request& request);
  /// Stops a running pace.
  void stop();

 private:
  struct pace_state;
  void define(const std::string& event);
  /// Publishes one event of about `bytes` bytes; false when the platform event is unknown.
  bool publish(const std::string& event, std::size_t bytes);
  void pace_step(std::shared_ptr<pace_state> state);

  org_emulator& org_;
  boost::asio::any_io_executor executor_;
  std::shared_ptr<pace_state> pace_;
  /// Bytes of each event's message besides Body__c, measured on its first event.
  std::map<std::string, std::size_t> overhead_;
};

/// True when `path` (without a query) is one of the bench endpoints.
bool is_bench_path(std::string_view path);

}  // namespace sfstream::emulator::control
