// The threaded facade: an I/O thread runs the client, a worker thread runs the handlers.
#include "sfstream/connector.hpp"

#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

namespace sfstream {

namespace asio = boost::asio;

struct connector::impl {
  asio::io_context io{1};
  asio::io_context worker{1};
  asio::executor_work_guard<asio::io_context::executor_type> io_work = asio::make_work_guard(io);
  asio::executor_work_guard<asio::io_context::executor_type> worker_work =
      asio::make_work_guard(worker);
  std::optional<sfstream::client> client;
  std::thread io_thread;
  std::thread worker_thread;

  std::mutex mutex;
  std::condition_variable ended_cv;
  bool started = false;
  bool ended = false;
  bool joined = false;
  error_info result;

  explicit impl(client_config config) {
    client.emplace(io.get_executor(), worker.get_executor(), std::move(config));
  }
  explicit impl(const std::function<client_config(asio::any_io_executor)>& make_config) {
    client.emplace(io.get_executor(), worker.get_executor(), make_config(io.get_executor()));
  }

  void on_run_done() {
    {
      std::lock_guard lock{mutex};
      ended = true;
      result = client->last_error();
    }
    ended_cv.notify_all();
  }

  error_info wait_ended() {
    std::unique_lock lock{mutex};
    ended_cv.wait(lock, [this] { return ended; });
    return result;
  }

  void join() {
    if (joined) return;
    joined = true;
    io_work.reset();
    worker_work.reset();
    // The client may still have completions in flight (a disconnect whose reply never comes
    // is bounded by its deadline): let both contexts run out, then join.
    if (io_thread.joinable()) io_thread.join();
    if (worker_thread.joinable()) worker_thread.join();
  }
};

connector::connector(client_config config) : impl_(std::make_unique<impl>(std::move(config))) {}

connector::connector(std::function<client_config(asio::any_io_executor)> make_config)
    : impl_(std::make_unique<impl>(make_config)) {}

connector::~connector() {
  if (!impl_) return;
  if (running()) stop();
  impl_->client.reset();
  impl_->io_work.reset();
  impl_->worker_work.reset();
  impl_->io.stop();
  impl_->worker.stop();
  if (impl_->io_thread.joinable()) impl_->io_thread.join();
  if (impl_->worker_thread.joinable()) impl_->worker_thread.join();
}

error_info connector::subscribe(const std::string& channel, std::int64_t replay_from,
                                subscription_callbacks callbacks,
                                std::optional<replay_policy> policy) {
  return impl_->client->subscribe(channel, replay_from, std::move(callbacks), policy);
}

error_info connector::subscribe(const std::string& channel, std::int64_t replay_from,
                                std::function<void(const event&)> on_event) {
  return impl_->client->subscribe(channel, replay_from, std::move(on_event));
}

void connector::unsubscribe(const std::string& channel) {
  impl_->client->unsubscribe(channel);
}

void connector::start() {
  {
    std::lock_guard lock{impl_->mutex};
    if (impl_->started) return;
    impl_->started = true;
  }
  impl_->client->async_run([this](std::error_code) { impl_->on_run_done(); });
  impl_->worker_thread = std::thread([this] { impl_->worker.run(); });
  impl_->io_thread = std::thread([this] { impl_->io.run(); });
}

error_info connector::stop() {
  {
    std::lock_guard lock{impl_->mutex};
    if (!impl_->started) return {};
  }
  impl_->client->cancel();
  auto result = impl_->wait_ended();
  impl_->join();
  return result;
}

error_info connector::wait() {
  {
    std::lock_guard lock{impl_->mutex};
    if (!impl_->started) return {};
  }
  return impl_->wait_ended();
}

bool connector::running() const {
  std::lock_guard lock{impl_->mutex};
  return impl_->started && !impl_->ended;
}

client_state connector::state() const {
  return impl_->client->state();
}
std::optional<std::int64_t> connector::committed_replay_id(const std::string& channel) const {
  return impl_->client->committed_replay_id(channel);
}
client_metrics connector::metrics() const {
  return impl_->client->metrics();
}

}  // namespace sfstream
