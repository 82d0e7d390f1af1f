// The runtime behind sfstream::client: owns the Bayeux session on a strand, two HTTP lanes,
// the timer, the bounded event queue and the replay positions.
#pragma once

#include <array>
#include <atomic>
#include <deque>
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
#include "src/transport/http_client.hpp"

namespace sfstream::transport {
class cookie_jar;
}

namespace sfstream::detail {

/// One entry of the queue between the network strand and the handlers.
struct queue_item {
  enum class kind { event, gap, rejected, subscribed, finished };
  kind what = kind::event;
  std::string channel;  ///< Replay key for events; the subscribed channel otherwise.
  sfstream::event ev;
  gap_record gap;
  error_info error;
  std::int64_t replay_from = 0;
};

class client_runtime : public std::enable_shared_from_this<client_runtime> {
 public:
  client_runtime(boost::asio::any_io_executor io, boost::asio::any_io_executor handlers, client_config config);
  ~client_runtime();

  error_info subscribe(const std::string& channel, std::int64_t replay_from, subscription_callbacks callbacks,
                       std::optional<replay_policy> policy);
  void unsubscribe(const std::string& channel);
  void start_run(std::function<void(std::error_code)> done);
  void cancel();
  /// Abandons everything at once (destruction): no handler is called afterwards by the network side.
  void shutdown();

  client_state state() const;
  std::optional<std::int64_t> committed_replay_id(const std::string& channel) const;
  client_metrics metrics() const;
  error_info last_error() const;

 private:
  struct subscription {
    std::string replay_key;
    subscription_callbacks callbacks;
  };

  void log(log_level level, std::string_view text) const;

  // Strand side.
  void pump();
  void carry_out(bayeux::send& a);
  void carry_out(bayeux::abort& a);
  void carry_out(bayeux::wait& a);
  void carry_out(bayeux::authenticate& a);
  void carry_out(bayeux::deliver& a);
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

  // Handler side.
  void enqueue(queue_item item);
  void schedule_dispatch();
  void dispatch_queue();
  void run_callbacks(const queue_item& item);
  void save_positions(const std::map<std::string, replay_position>& positions);

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
  std::optional<transport::url> instance_;
  transport::transport_options transport_options_;
  std::string cometd_path_;
  access_token token_;
  std::function<void(std::error_code)> run_done_;
  error_info final_error_;
  bool running_ = false;
  bool stopping_ = false;
  bool paused_ = false;
  bool finished_ = false;
  bool closed_ = false;

  std::atomic<client_state> state_{client_state::unconnected};
  std::atomic<bool> dispatch_scheduled_{false};

  // Shared between the strand and the handler side.
  mutable std::mutex mutex_;
  std::deque<queue_item> queue_;
  std::map<std::string, subscription> subscriptions_;
  std::map<std::string, replay_position> positions_;
  std::map<std::string, std::chrono::system_clock::time_point> last_event_time_;
  client_metrics metrics_;
  error_info last_error_;
};

}  // namespace sfstream::detail
