// Test helpers: an org emulator on its own io_context thread, a client io_context thread, and
// a bounded wait for a condition.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <thread>
#include <type_traits>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "emulator/emulator.hpp"
#include "sfstream/client.hpp"

namespace sfstream::testing {

/// An io_context running on its own thread until the object is destroyed.
class io_thread {
 public:
  io_thread() : work_(boost::asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}
  ~io_thread() { join(); }
  io_thread(const io_thread&) = delete;
  io_thread& operator=(const io_thread&) = delete;

  boost::asio::io_context& context() noexcept { return io_; }
  boost::asio::any_io_executor executor() { return io_.get_executor(); }

  /// Runs `f` on the thread and returns its result (or rethrows its exception).
  template <class F>
  auto call(F&& f) -> std::invoke_result_t<F> {
    using result = std::invoke_result_t<F>;
    std::packaged_task<result()> task(std::forward<F>(f));
    auto future = task.get_future();
    boost::asio::post(io_, [&task] { task(); });
    return future.get();
  }

  /// Lets pending work finish for up to `grace`, then stops and joins.
  void join(std::chrono::milliseconds grace = std::chrono::milliseconds(3000)) {
    if (!thread_.joinable()) return;
    work_.reset();
    const auto until = std::chrono::steady_clock::now() + grace;
    while (!io_.stopped() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    io_.stop();
    thread_.join();
  }

 private:
  boost::asio::io_context io_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
};

/// An org emulator serving on its own thread; stopped and joined on destruction.
class emulator_fixture {
 public:
  explicit emulator_fixture(emulator::emulator_options options = default_options()) {
    org_ = thread_.call([&] { return std::make_unique<emulator::org_emulator>(thread_.executor(), options); });
  }
  ~emulator_fixture() {
    thread_.call([this] {
      org_->stop();
      org_.reset();
    });
    thread_.join();
  }

  /// Short long-poll hold so that tests run in seconds; CDC on Account; one platform event.
  static emulator::emulator_options default_options() {
    emulator::emulator_options o;
    o.long_poll_timeout = std::chrono::milliseconds(1500);
    o.data.cdc_entities = {"Account"};
    o.data.seed = 42;
    return o;
  }

  /// Runs `f(org)` on the emulator's thread.
  template <class F>
  auto call(F&& f) {
    return thread_.call([this, &f] { return f(*org_); });
  }
  emulator::org_emulator& org() noexcept { return *org_; }

 private:
  io_thread thread_;
  std::unique_ptr<emulator::org_emulator> org_;
};

/// Polls `done` every 10 ms until it is true or `limit` passes; returns its last value.
inline bool wait_until(const std::function<bool()>& done,
                       std::chrono::milliseconds limit = std::chrono::milliseconds(15000)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) return done();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

/// A client running on `io`; `done` becomes true when async_run completes.
struct running_client {
  std::unique_ptr<sfstream::client> client;
  std::atomic<bool> done{false};
  std::error_code result;

  running_client(io_thread& io, sfstream::client_config config)
      : client(std::make_unique<sfstream::client>(io.executor(), std::move(config))) {}
  void run() {
    client->async_run([this](std::error_code ec) {
      result = ec;
      done = true;
    });
  }
  /// Graceful stop; false when async_run did not complete within 10 s.
  bool stop() {
    client->cancel();
    return wait_until([this] { return done.load(); }, std::chrono::milliseconds(10000));
  }
};

}  // namespace sfstream::testing
