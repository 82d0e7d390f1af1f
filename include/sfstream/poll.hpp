// The polling source: changes of objects that have no usable stream (objects PushTopics cannot
// query, editions without Change Data Capture, an org whose daily event delivery allocation is
// spent), read through REST queryAll and delivered as PushTopic-shaped events.
//
//   sfstream::poller p{io.get_executor(), config};
//   p.add({.name = "Account", .fields = {"Name", "Industry"}},
//         [](const sfstream::event& e) { std::cout << e.json() << '\n'; });
//   p.async_run([](std::error_code ec) { ... });   // until cancel() or a fatal error
//   io.run();
//
// Every `interval` each object is asked for
//   SELECT Id, SystemModstamp, CreatedDate, IsDeleted, <fields> FROM <Object>
//   WHERE SystemModstamp >= <cursor - overlap> [AND (<where>)] ORDER BY SystemModstamp, Id
// through queryAll (deleted records too), page after page (nextRecordsUrl). A record version
// (Id, SystemModstamp) already emitted inside the overlap window is dropped, so records that
// share a timestamp are neither skipped nor repeated and a record committed late with an
// earlier SystemModstamp (a long transaction) is still emitted once. Each event is
//   {"channel":"/poll/Account","data":{"event":{"type":"created"|"updated"|"deleted",
//    "createdDate":"<SystemModstamp>"},"sobject":{"Id":…, <fields>}}}
// like a PushTopic notification (no replayId; deletions carry only the Id), so
// event::as_pushtopic() reads both. A record is `created` when CreatedDate equals its
// SystemModstamp. Polling sees the state at each poll: several writes of a record between two
// polls are one event, and an undelete is an `updated`.
//
// The cursor (newest SystemModstamp and Id, plus the versions emitted inside the overlap
// window) is committed to the replay store under the channel name after each page's events
// were handled (at-least-once: a crash re-emits at most that page). With a batch handler
// (poll_callbacks::on_batch) a page's new events go out together and the cursor is committed
// only once the handler confirms them, from any thread; the object's next page waits for it.
// All member functions may be called from any thread; handlers run on the poller's strand,
// one at a time.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>

#include "sfstream/detail/completion.hpp"
#include "sfstream/client.hpp"
#include "sfstream/config.hpp"
#include "sfstream/credentials.hpp"
#include "sfstream/error.hpp"
#include "sfstream/event.hpp"
#include "sfstream/logger.hpp"
#include "sfstream/network.hpp"
#include "sfstream/replay_store.hpp"

namespace sfstream {

/// Where an object's polling starts when the replay store holds no cursor for it.
enum class poll_start {
  now,        ///< After the newest record version there is now (one extra query at start).
  beginning,  ///< Every record there is, then every change.
};

/// One object to poll.
struct poll_object {
  /// The sObject API name, e.g. "Account" or "Invoice__c".
  std::string name;
  /// Fields carried in each event's sobject besides Id (an unknown field fails the run at
  /// the first poll with Salesforce's INVALID_FIELD text).
  std::vector<std::string> fields;
  /// A SOQL condition ANDed to every poll, e.g. "Industry = 'Energy'"; empty for none.
  std::string where;
  /// Time between the end of one poll and the start of the next; 0 uses poll_config::interval.
  std::chrono::milliseconds interval{0};
  /// Start point without a stored cursor.
  poll_start start = poll_start::now;
  /// Start point without a stored cursor, winning over `start`: changes stamped at or after it.
  std::optional<std::chrono::system_clock::time_point> since;
};

/// What happens to one polled object's events.
struct poll_callbacks {
  /// Each event, in order, after the previous call returned. Throwing fails the event.
  std::function<void(const event&)> on_event;
  /// Instead of on_event (used when set): failure reported by returning an error.
  std::function<error_info(const event&)> on_event_status;
  /// Instead of on_event and on_event_status (used when set): an asynchronous handler that
  /// takes the new events of one page at a time (in SystemModstamp order) and reports, from
  /// any thread, by calling `done` once (later calls are ignored): done(n, {}) commits them
  /// all; done(k, error) commits the first k and the failure policy decides about the one
  /// after them (`retry` hands the batch again from it after the backoff; `stop` ends the run
  /// with it uncommitted). The events stay valid until `done`; the object's next page, and a
  /// cancelled run's completion, wait for it. Throwing is done(0, that error).
  std::function<void(std::span<const event> events, batch_done done)> on_batch;
  /// This object's handler failure policy; the poller's when empty. `stop` and `retry` are
  /// supported; `dead_letter` is refused by add() with errc::invalid_config.
  std::optional<handler_failure_policy> on_failure;
};

/// Everything the poller needs. Only `credentials` is required.
struct poll_config {
  std::shared_ptr<credentials_provider> credentials;
  /// REST API version (the N.N of /services/data/vN.N).
  std::string api_version = "59.0";
  network_options network;
  logger log;
  /// Durable cursors, keyed by channel ("/poll/Account"); null: in memory only. It may be the
  /// store a streaming client uses: the keys never collide.
  std::shared_ptr<replay_store> store;
  /// Default time between polls of an object.
  std::chrono::milliseconds interval{30'000};
  /// How far behind the newest SystemModstamp every poll reads again, for records committed
  /// late (Salesforce stamps a record when its transaction writes it, and commits later).
  std::chrono::milliseconds overlap{60'000};
  /// Records per page asked through Sforce-Query-Options (200–2000); 0: the server's (2,000).
  std::size_t batch_size = 0;
  /// What follows a failed handler (default: the run stops, the event and the rest of its
  /// page uncommitted).
  handler_failure_policy on_handler_failure;
  /// Tries of replay_store::save for one page before the run ends with replay_store_io.
  int store_save_attempts = 3;
  /// Consecutive failed calls of one object (network, 5xx, time-outs) before the run ends with
  /// errc::retries_exhausted; -1 = never.
  int max_retries = -1;
  /// Backoff after a failure a retry can fix: doubles from `initial` up to `max`.
  std::chrono::milliseconds backoff_initial{1'000};
  std::chrono::milliseconds backoff_max{60'000};
  /// Backoff while the org's API request allocation is spent (REQUEST_LIMIT_EXCEEDED).
  std::chrono::milliseconds limit_backoff_initial{60'000};
  std::chrono::milliseconds limit_backoff_max{30 * 60'000};
  /// Read /limits (DailyApiRequests) at start, and warn when the configured polling would use
  /// more than `api_share_warning` of the remaining allocation before the end of the UTC day.
  bool check_limits = true;
  double api_share_warning = 0.5;
};

/// The org's DailyApiRequests as /limits reported it at start.
struct api_allocation {
  std::int64_t max = 0;
  std::int64_t remaining = 0;
  /// The calls the configured objects and intervals would make before the end of the UTC day
  /// (one per poll and object; more when a poll takes more than one page).
  std::int64_t projected = 0;
};

/// Per object figures.
struct poll_object_metrics {
  std::uint64_t polls = 0;  ///< Polls completed (every page read).
  std::uint64_t pages = 0;
  std::uint64_t api_calls = 0;
  std::uint64_t created = 0;
  std::uint64_t updated = 0;
  std::uint64_t deleted = 0;
  std::uint64_t late = 0;  ///< Emitted with a SystemModstamp older than one emitted before.
  std::uint64_t repeats_dropped = 0;  ///< Versions read again in the overlap window and dropped.
  std::uint64_t handler_failures = 0;
  std::uint64_t errors = 0;  ///< Failed REST calls (retried or not).
  std::optional<std::chrono::system_clock::time_point> cursor_time;  ///< Newest SystemModstamp.
  std::size_t window = 0;  ///< Versions held in the overlap window set.
};

/// A snapshot of what the poller has done.
struct poll_metrics {
  std::uint64_t api_calls = 0;  ///< Every REST call made (limits, queries, pages), failed ones too.
  std::uint64_t events = 0;
  std::optional<api_allocation> allocation;  ///< Empty until /limits was read (or when off).
  std::map<std::string, poll_object_metrics> objects;  ///< By object name.
};

namespace detail {
class poll_runtime;
}

class poller {
 public:
  /// REST calls, timers and handlers all run on a strand of `executor`.
  poller(boost::asio::any_io_executor executor, poll_config config);
  /// Ends a run without waiting; REST calls in flight finish into nothing.
  ~poller();
  poller(const poller&) = delete;
  poller& operator=(const poller&) = delete;

  /// Adds an object before async_run. Fails at once for an empty or malformed object name or
  /// field, an object added twice, an unsupported policy, or a call while running.
  error_info add(poll_object object, poll_callbacks callbacks);
  /// Shorthand with only an event handler.
  error_info add(poll_object object, std::function<void(const event&)> on_event);

  /// Runs until cancel() (completes with no error) or a fatal error (completes with its code;
  /// last_error() has the diagnostics): a REST error no retry fixes (INVALID_TYPE for an
  /// unknown object, INVALID_FIELD for an unknown field, MALFORMED_QUERY, refused
  /// credentials), errc::handler_failed, errc::replay_store_io, errc::replay_store_corrupt (a
  /// stored cursor that is not one), errc::retries_exhausted. Signature: void(std::error_code).
  template <typename CompletionToken>
  auto async_run(CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(std::error_code)>(
        [this](auto handler) { start_run(detail::make_completion(std::move(handler))); },
        token);
  }

  /// Stops: no further poll or handler call; a REST call in flight is abandoned, its records
  /// neither emitted nor committed. Called from a handler, no record after the current one is
  /// handed over, and those handled are committed. async_run completes soon after.
  void cancel();

  poll_metrics metrics() const;
  error_info last_error() const;

  /// "/poll/<object>": the channel of an object's events and its replay store key.
  static std::string channel_of(const std::string& object);

 private:
  void start_run(std::function<void(std::error_code)> done);
  std::shared_ptr<detail::poll_runtime> impl_;
};

}  // namespace sfstream
