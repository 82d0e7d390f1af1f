#include "support/webhook_receiver.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cctype>
#include <ctime>
#include <future>
#include <thread>

namespace sfstream::testing {

namespace asio = boost::asio;
namespace net = emulator::net;

std::string webhook_request::header(std::string_view name) const {
  const auto* value = transport::find_header(headers, name);
  return value ? *value : std::string();
}

bool receiver_verifies(const std::string& key, const std::string& timestamp,
                       const std::string& body, const std::string& header) {
  const std::string signed_text = timestamp + "." + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(signed_text.data()), signed_text.size(), mac,
            &size)) {
    return false;
  }
  std::string expected;
  static constexpr char digits[] = "0123456789abcdef";
  for (unsigned i = 0; i < size; ++i) {
    expected += digits[mac[i] >> 4];
    expected += digits[mac[i] & 15];
  }
  bool ok = false;
  std::size_t start = 0;
  while (start <= header.size()) {
    auto comma = header.find(',', start);
    if (comma == std::string::npos) comma = header.size();
    std::string item = header.substr(start, comma - start);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (item.rfind("v1=", 0) == 0 && item.size() == 3 + expected.size()) {
      unsigned diff = 0;
      for (std::size_t i = 0; i < expected.size(); ++i) {
        diff |= static_cast<unsigned char>(item[3 + i]) ^ static_cast<unsigned char>(expected[i]);
      }
      ok = ok || diff == 0;
    }
    start = comma + 1;
  }
  return ok;
}

struct webhook_receiver::impl : std::enable_shared_from_this<impl> {
  std::string key;
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{asio::make_work_guard(io)};
  std::unique_ptr<net::http_server> server;
  std::thread thread;

  mutable std::mutex mutex;
  mutable std::condition_variable changed;
  std::deque<webhook_behaviour> plans;
  std::vector<webhook_request> seen;
  std::size_t finished = 0;

  void on_request(const std::shared_ptr<net::exchange>& ex) {
    webhook_request r;
    const auto& req = ex->request();
    r.target = req.target;
    r.headers = req.headers;
    r.body = req.body;
    r.arrived = std::chrono::steady_clock::now();
    r.timestamp = r.header("X-Sfstream-Timestamp");
    r.signature = r.header("X-Sfstream-Signature");
    r.idempotency_key = r.header("Idempotency-Key");
    r.signature_valid = receiver_verifies(key, r.timestamp, r.body, r.signature);
    try {
      const long long stamp = std::stoll(r.timestamp);
      r.timestamp_fresh = std::llabs(static_cast<long long>(std::time(nullptr)) - stamp) <= 300;
    } catch (...) {
      r.timestamp_fresh = false;
    }
    webhook_behaviour b;
    std::size_t index = 0;
    {
      std::lock_guard lock(mutex);
      if (!plans.empty()) {
        b = plans.front();
        plans.pop_front();
      } else {
        b.body = "ok";
      }
      index = seen.size();
      seen.push_back(std::move(r));
    }
    if (b.delay.count() > 0) {
      auto timer = std::make_shared<asio::steady_timer>(io, b.delay);
      // Weakly held: a timer still pending when the receiver goes must not keep it alive.
      timer->async_wait([weak = weak_from_this(), ex, b, index, timer](boost::system::error_code) {
        if (auto self = weak.lock()) self->act(ex, b, index);
      });
      return;
    }
    act(ex, b, index);
  }

  void act(const std::shared_ptr<net::exchange>& ex, const webhook_behaviour& b,
           std::size_t index) {
    unsigned answered = 0;
    if (b.what == webhook_behaviour::kind::close) {
      ex->drop();
    } else {
      transport::http_response res;
      res.status = b.status;
      res.headers.emplace_back("Content-Type", "text/plain");
      if (b.retry_after) res.headers.emplace_back("Retry-After", *b.retry_after);
      res.body = b.body;
      if (b.what == webhook_behaviour::kind::partial) {
        ex->respond_partial_and_drop(std::move(res), b.body.size() / 2);
      } else {
        ex->respond(std::move(res));
        answered = b.status;
      }
    }
    {
      std::lock_guard lock(mutex);
      seen[index].answered = answered;
      ++finished;
    }
    changed.notify_all();
  }
};

webhook_receiver::webhook_receiver(std::string signing_key,
                                   std::optional<net::server_tls> tls)
    : impl_(std::make_shared<impl>()) {
  impl_->key = std::move(signing_key);
  net::server_options options;
  options.tls = std::move(tls);
  options.body_limit = 16 * 1024 * 1024;
  std::weak_ptr<impl> weak = impl_;
  impl_->server = std::make_unique<net::http_server>(
      impl_->io.get_executor(), options, [weak](std::shared_ptr<net::exchange> ex) {
        if (auto self = weak.lock()) self->on_request(ex);
      });
  impl_->thread = std::thread([state = impl_.get()] { state->io.run(); });
}

webhook_receiver::~webhook_receiver() {
  std::promise<void> stopped;
  asio::post(impl_->io, [this, &stopped] {
    impl_->server->stop();
    stopped.set_value();
  });
  stopped.get_future().wait_for(std::chrono::seconds(5));
  impl_->work.reset();
  impl_->io.stop();
  impl_->thread.join();
  impl_->server.reset();
}

std::string webhook_receiver::url(const std::string& path) const {
  return impl_->server->base_url() + path;
}

void webhook_receiver::plan(std::size_t n, webhook_behaviour behaviour) {
  std::lock_guard lock(impl_->mutex);
  for (std::size_t i = 0; i < n; ++i) impl_->plans.push_back(behaviour);
}

void webhook_receiver::fail_next(std::size_t n, unsigned status,
                                 std::optional<std::string> retry_after, std::string body) {
  webhook_behaviour b;
  b.status = status;
  b.retry_after = std::move(retry_after);
  b.body = std::move(body);
  plan(n, b);
}

void webhook_receiver::close_next(std::size_t n) {
  webhook_behaviour b;
  b.what = webhook_behaviour::kind::close;
  plan(n, b);
}

void webhook_receiver::slow_next(std::size_t n, std::chrono::milliseconds delay, unsigned status) {
  webhook_behaviour b;
  b.status = status;
  b.body = "ok";
  b.delay = delay;
  plan(n, b);
}

std::vector<webhook_request> webhook_receiver::requests() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->seen;
}

std::vector<webhook_request> webhook_receiver::accepted() const {
  std::lock_guard lock(impl_->mutex);
  std::vector<webhook_request> out;
  for (const auto& r : impl_->seen) {
    if (r.answered >= 200 && r.answered < 300) out.push_back(r);
  }
  return out;
}

bool webhook_receiver::wait_for(std::size_t n, std::chrono::milliseconds limit) const {
  std::unique_lock lock(impl_->mutex);
  return impl_->changed.wait_for(lock, limit, [&] { return impl_->finished >= n; });
}

}  // namespace sfstream::testing
