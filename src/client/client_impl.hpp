// The runtime behind sfstream::client: owns the Bayeux session on a strand, two HTTP lanes,
// the timer, the bounded event queue and the replay positions.
#pragma once

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "bayeux/session.hpp"
#include "sfstream/client.hpp"
#include "src/client/delivery_queue.hpp"
#include "src/transport/http_client.hpp"

namespace sfstream::transport {
class cookie_jar;
}

namespace sfstream::detail {

/// The runtime's own run state (the session's state is the protocol's; this one is the run's).
/// Transitions, all on the strand:
///   idle ──start_run──► running ◄──resume──► paused        (the queue reached a bound, then
///                                                           drained to half)
///   running | paused ──cancel, a failed handler or store──► stopping   (session_.stop)
///   running | paused | stopping ──session finished──► finished         (the queue drains)
///   finished ──queue drained and committed──► completed    (async_run's handler is posted;
///                                                           start_run may run again)
///   any ──shutdown (the client is destroyed)──► closed     (nothing more is carried out)
enum class run_state { idle, running, paused, stopping, finished, completed, closed };

class client_runtime : public std::enable_shared_from_this<client_runtime> {
 public:
  client_runtime(boost::asio::any_io_executor io, boost::asio::any_io_executor handlers,
                 client_config config);
  ~client_runtime();

  error_info subscribe(const std::string& channel, std::int64_t replay_from,
                       subscription_callbacks callbacks, std::optional<replay_policy> policy);
  void unsubscribe(const std::string& channel);
  void start_run(std::function<void(std::error_code)> done);
  void cancel();
  /// Abandons everything at once (destruction): no handler is called afterwards by the network
  /// side.
  void shutdown();

  client_state state() const;
  std::optional<std::int64_t> committed_replay_id(const std::string& channel) const;
  client_metrics metrics() const;
  error_info last_error() const;

 private:
  struct subscription {
    std::string replay_key;
    /// Shared, so handing them to the handler side per event copies no std::function.
    std::shared_ptr<const subscription_callbacks> callbacks;
  };

  void log(log_level level, std::string_view text) const;

  // Strand side.
  void pump();
  void carry_out(bayeux::send& a);
  void carry_out(bayeux::abort& a);
  void carry_out(bayeux::wait& a);
  void carry_out(bayeux::authenticate& a);
  void carry_out(bayeux::deliver& a);
  /// Hands the events staged by carry_out(deliver) to the queue, in one go.
  void deliver_staged();
  void carry_out(bayeux::subscribed& a);
  void carry_out(bayeux::subscription_failed& a);
  void carry_out(bayeux::unsubscribed& a);
  void carry_out(bayeux::gap& a);
  void carry_out(bayeux::diagnostic& a);
  void carry_out(bayeux::finished& a);
  void on_exchange(bayeux::lane which, std::uint64_t generation, error_info error,
                   transport::http_response response);
  error_info use_token(access_token token);
  void finish_run(error_info error);
  void maybe_resume();
  void complete_run();

  /// Ends the run from the handler side (a failed handler, dead letter or store): nothing
  /// queued is handled any more; the session disconnects and async_run completes with `error`.
  void fail_run(error_info error);
  void pause_stream();

  // Handler side.
  void enqueue(queue_item item);
  void schedule_dispatch();
  void dispatch_queue();
  /// The callbacks an item goes to: its channel's subscription, else one with its replay key.
  /// A rejection removes the subscription.
  std::shared_ptr<const subscription_callbacks> callbacks_for(const queue_item& item);
  /// Runs the callbacks of one item; an event's handler failure comes back (empty: handled).
  error_info run_callbacks(const queue_item& item, handler_failure_policy& policy);
  /// Hands the events from next_ on that go to `cbs` (consecutive, same subscription) to its
  /// asynchronous batch handler; the dispatch resumes in on_batch_done.
  void start_batch(std::shared_ptr<const subscription_callbacks> cbs);
  void on_batch_done(std::uint64_t call, std::size_t handled, error_info error);
  /// Applies `policy` to the failed current event. Returns true when the batch goes on with
  /// the next item, false when the dispatcher must wait (retry) or the run ended.
  bool on_handler_failed(const queue_item& item, error_info failure,
                         const handler_failure_policy& policy);
  /// Saves the handled positions of the current batch; false when the run ended or a retry of
  /// the save is scheduled.
  bool commit_pending();
  void retry_later(std::chrono::milliseconds delay);
  error_info write_dead_letter(const queue_item& item, const error_info& failure,
                               const handler_failure_policy& policy);

  boost::asio::strand<boost::asio::any_io_executor> strand_;
  boost::asio::any_io_executor handlers_;
  client_config config_;
  bayeux::session session_;
  boost::asio::steady_timer timer_;

  // Strand-only state.
  std::array<std::shared_ptr<transport::http_lane>, 2> lanes_;  ///< Indexed by bayeux::lane.
  std::array<std::uint64_t, 2> generation_{};  ///< Bumped by abort: stale completions are dropped.
  std::shared_ptr<boost::asio::ssl::context> tls_;
  std::shared_ptr<transport::cookie_jar> cookies_;
  std::vector<queue_item> staged_;  ///< Events of the actions being carried out.
  std::optional<transport::url> instance_;
  transport::transport_options transport_options_;
  std::string cometd_path_;
  access_token token_;
  std::function<void(std::error_code)> run_done_;
  error_info final_error_;
  /// Written on the strand only; read anywhere (the handler side checks for `closed`).
  std::atomic<run_state> run_{run_state::idle};

  std::atomic<client_state> state_{client_state::unconnected};
  std::atomic<bool> dispatch_scheduled_{false};

  // Handler side only (one dispatch at a time: dispatch_scheduled_ stays set while a retry
  // waits): the batch being handled, how far it got, what of it awaits commit.
  delivery_batch batch_;
  std::size_t next_ = 0;
  int attempts_ = 0;       ///< Failed calls of the current event's handler.
  int save_attempts_ = 0;  ///< Failed saves of the current batch's positions.
  bool stopped_ = false;   ///< fail_run was called: nothing more is handled or committed.
  bool presaved_ = true;   ///< With commit-on-receive: the batch's positions are saved.
  std::optional<error_info> failure_;  ///< The current batch ends the run with it.
  std::map<std::string, replay_position> pending_;
  /// The asynchronous batch handed out (on_batch): its events, its subscription, and the number
  /// of the call, so that a late or repeated completion is recognised.
  /// The last lookup of an event channel's callbacks (callbacks_for), valid while
  /// subscriptions_version_ is unchanged.
  struct callbacks_lookup {
    std::string channel;
    std::uint64_t version = 0;
    std::shared_ptr<const subscription_callbacks> callbacks;
  } lookup_;
  std::vector<event> batch_events_;
  std::shared_ptr<const subscription_callbacks> batch_callbacks_;
  std::uint64_t batch_call_ = 0;
  std::mutex retry_mutex_;  ///< Guards retry_timer_ against shutdown's cancel.
  boost::asio::steady_timer retry_timer_;

  // Shared between the strand and the handler side.
  delivery_queue queue_;
  mutable std::mutex mutex_;
  std::map<std::string, subscription> subscriptions_;
  /// Bumped (under mutex_) whenever subscriptions_ changes.
  std::atomic<std::uint64_t> subscriptions_version_{0};
  std::map<std::string, replay_position> positions_;
  std::map<std::string, std::chrono::system_clock::time_point> last_event_time_;
  client_metrics metrics_;
  error_info last_error_;
};

}  // namespace sfstream::detail
