#include "emulator/cometd/cometd_server.hpp"

#include <map>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include <rapidjson/document.h>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "emulator/cometd/bayeux_replies.hpp"
#include "emulator/cometd/request_fields.hpp"

namespace sfstream::emulator::cometd {

namespace asio = boost::asio;

namespace {

/// Answers with the array `before`, `events`, `after` in one gather write: the event bytes
/// are the ones kept with each event, never copied or serialized again.
void respond_with_events(net::exchange& ex, const reply_plan& plan) {
  static const auto open = std::make_shared<const std::string>("[");
  static const auto comma = std::make_shared<const std::string>(",");
  static const auto close = std::make_shared<const std::string>("]");
  std::vector<net::shared_bytes> pieces;
  pieces.reserve(2 * (plan.head.size() + plan.events.size() + plan.tail.size()) + 1);
  pieces.push_back(open);
  auto add = [&](net::shared_bytes piece) {
    if (pieces.size() > 1) pieces.push_back(comma);
    pieces.push_back(std::move(piece));
  };
  for (const auto& text : plan.head) add(std::make_shared<const std::string>(text));
  for (const auto& event : plan.events) add(event);
  for (const auto& text : plan.tail) add(std::make_shared<const std::string>(text));
  pieces.push_back(close);
  auto head = json_http(200, "OK", {});
  for (const auto& c : plan.cookies) head.headers.emplace_back("Set-Cookie", c);
  ex.respond_gather(std::move(head), std::move(pieces));
}

transport::http_response version_error(const transport::http_request& req,
                                       const std::string& error) {
  std::string channel = "/meta/handshake";
  message_id id;
  rapidjson::Document doc;
  if (!doc.Parse(req.body.c_str(), req.body.size()).HasParseError()) {
    const rapidjson::Value* first =
        doc.IsArray() && doc.Size() > 0 ? &doc[0] : (doc.IsObject() ? &doc : nullptr);
    if (first != nullptr && first->IsObject()) {
      std::string ch = string_member(*first, "channel");
      if (!ch.empty()) channel = ch;
      id = read_id(*first);
    }
  }
  return json_http(400, "Bad Request",
                   join_messages({build_reply({}, channel, id, nullptr, error, advice_kind::none)}));
}

}  // namespace

bool is_cometd_path(const std::string& target) {
  std::string_view path = target;
  path = path.substr(0, path.find('?'));
  return path == "/cometd" || path.substr(0, 8) == "/cometd/";
}

struct cometd_server::impl : session_host, std::enable_shared_from_this<impl> {
  /// The connection and timers of one client.
  struct client_io {
    std::shared_ptr<net::exchange> held;  ///< The connection of its held connect.
    asio::steady_timer hold_timer;
    asio::steady_timer expiry_timer;
    bool flush_posted = false;
    bool forgotten = false;  ///< The session forgot it; kept until its held connect is answered.
    explicit client_io(const asio::any_io_executor& ex) : hold_timer(ex), expiry_timer(ex) {}
  };

  asio::any_io_executor executor;
  cometd_settings settings;
  event_bus& bus;
  cometd_session session;
  std::map<std::string, std::unique_ptr<client_io>> io;
  std::size_t fail_count = 0;
  fault_kind fail_kind = fault_kind::http_503;
  std::vector<std::weak_ptr<asio::steady_timer>> late_replies;  // held replies (fault hold)
  std::vector<std::shared_ptr<net::exchange>> unanswered;       // disconnects never answered

  impl(asio::any_io_executor ex, cometd_settings s, const clock& c, event_bus& b, token_check t)
      : executor(std::move(ex)), settings(s), bus(b), session(s, c, b, std::move(t), *this) {}

  client_io& io_of(const std::string& id) {
    auto& slot = io[id];
    if (!slot) slot = std::make_unique<client_io>(executor);
    return *slot;
  }

  // ---- session_host -------------------------------------------------------------------------
  void arm_expiry(const std::string& id) override {
    auto& c = io_of(id);
    c.expiry_timer.expires_after(settings.client_expiry);
    c.expiry_timer.async_wait([weak = weak_from_this(), id](boost::system::error_code ec) {
      auto self = weak.lock();
      if (!ec && self) self->session.expire(id);
    });
  }

  void cancel_expiry(const std::string& id) override {
    auto it = io.find(id);
    if (it != io.end()) it->second->expiry_timer.cancel();
  }

  void hold(const std::string& id, std::chrono::milliseconds timeout) override {
    auto& c = io_of(id);
    c.hold_timer.expires_after(timeout);
    c.hold_timer.async_wait([weak = weak_from_this(), id](boost::system::error_code ec) {
      auto self = weak.lock();
      if (!ec && self) self->session.flush(id);
    });
  }

  void answer_held(const std::string& id, reply_plan plan) override {
    auto it = io.find(id);
    if (it == io.end()) return;
    auto ex = std::move(it->second->held);
    it->second->held.reset();
    it->second->hold_timer.cancel();
    if (it->second->forgotten) io.erase(it);
    if (ex && !ex->answered()) write(ex, std::move(plan));
  }

  void flush_soon(const std::string& id) override {
    auto& c = io_of(id);
    if (c.flush_posted) return;
    c.flush_posted = true;
    asio::post(executor, [weak = weak_from_this(), id] {
      auto self = weak.lock();
      if (!self) return;
      auto it = self->io.find(id);
      if (it != self->io.end()) it->second->flush_posted = false;
      self->session.flush(id);
    });
  }

  void forgotten(const std::string& id) override {
    auto it = io.find(id);
    if (it == io.end()) return;
    it->second->hold_timer.cancel();
    it->second->expiry_timer.cancel();
    if (it->second->held) {
      it->second->forgotten = true;
    } else {
      io.erase(it);
    }
  }

  // ---- writing ------------------------------------------------------------------------------
  void write(const std::shared_ptr<net::exchange>& ex, reply_plan plan) {
    switch (plan.what) {
      case reply_plan::action::gather:
        respond_with_events(*ex, plan);
        return;
      case reply_plan::action::respond:
        ex->respond(std::move(plan.response));
        return;
      case reply_plan::action::cut:
        ex->respond_partial_and_drop(std::move(plan.response), plan.cut_bytes);
        return;
      case reply_plan::action::drop:
        ex->drop();
        return;
      case reply_plan::action::late: {
        auto timer = std::make_shared<asio::steady_timer>(executor, plan.delay);
        std::erase_if(late_replies, [](const auto& weak) { return weak.expired(); });
        late_replies.push_back(timer);
        timer->async_wait([timer, ex, weak = weak_from_this(), id = plan.client_id,
                           r = std::move(plan.response)](boost::system::error_code ec) mutable {
          if (ec || ex->answered()) return;
          ex->respond(std::move(r));
          if (auto self = weak.lock()) self->session.late_reply_written(id);
        });
        return;
      }
    }
  }

  // ---- request handling ---------------------------------------------------------------------
  void handle(const std::shared_ptr<net::exchange>& ex) {
    const auto& req = ex->request();
    if (req.method != "POST") {
      transport::http_response r;
      r.status = 405;
      r.reason = "Only POST allowed";
      r.headers = {{"Content-Type", "text/plain;charset=UTF-8"}, {"Allow", "POST"}};
      r.body = "Only POST allowed";
      ex->respond(std::move(r));
      return;
    }
    auto tenths = endpoint_version(req.target);
    if (!tenths) {
      ex->respond(version_error(
          req, "400::API version in the URI is mandatory. " + std::string(uri_example)));
      return;
    }
    if (*tenths < 370) {
      ex->respond(version_error(
          req, "400::Unsupported API version. Only API versions '37.0' and later are supported. " +
                   std::string(uri_example)));
      return;
    }
    if (req.body.size() > settings.request_limit) {
      transport::http_response r;
      r.status = 413;
      r.reason = "Maximum Request Size Exceeded";
      r.headers = {{"Content-Type", "text/plain;charset=UTF-8"}};
      r.body = "Maximum Request Size Exceeded";
      ex->respond(std::move(r));
      return;
    }
    if (fail_count > 0) {
      --fail_count;
      if (fail_kind == fault_kind::http_503) {
        ex->respond(http_503_page());
      } else {
        transport::http_response r;
        r.status = 200;
        r.reason = "OK";
        r.headers = {{"Content-Type", "application/json;charset=UTF-8"}};
        r.body = "<html><body>Upstream proxy error</body></html>";
        ex->respond(std::move(r));
      }
      return;
    }
    rapidjson::Document doc;
    if (doc.Parse(req.body.c_str(), req.body.size()).HasParseError() ||
        !(doc.IsArray() || doc.IsObject())) {
      ex->respond(json_http(
          400, "Bad Request",
          R"([{"error":"400::Unable to parse the request body as a Bayeux message","successful":false}])"));
      return;
    }
    post_outcome out = session.on_post(req, doc);
    if (out.reply) {
      write(ex, std::move(*out.reply));
      return;
    }
    if (out.never_answer) {
      std::erase_if(unanswered, [](const auto& e) { return e->answered(); });
      unanswered.push_back(ex);
      ex->on_abandoned([weak = weak_from_this(), ex_weak = std::weak_ptr<net::exchange>(ex)] {
        auto self = weak.lock();
        auto gone = ex_weak.lock();
        if (self && gone) std::erase(self->unanswered, gone);
      });
      return;
    }
    const std::string id = out.held_client;
    io_of(id).held = ex;
    ex->on_abandoned([weak = weak_from_this(), id, ex_weak = std::weak_ptr<net::exchange>(ex)] {
      auto self = weak.lock();
      auto abandoned = ex_weak.lock();
      if (!self) return;
      auto it = self->io.find(id);
      if (it == self->io.end() || !it->second->held || it->second->held != abandoned) return;
      it->second->held.reset();
      it->second->hold_timer.cancel();
      if (it->second->forgotten) {
        self->io.erase(it);
        return;
      }
      self->session.abandon_held(id);
    });
  }

  std::int64_t publish_raw(const std::string& channel, const std::string& data) {
    if (!bus.channel_exists(channel)) {
      const bool long_kept = channel.rfind("/event/", 0) == 0 || channel.rfind("/data/", 0) == 0;
      bus.declare_channel(channel, long_kept ? retention::hours_72 : retention::hours_24);
    }
    return bus.publish(channel, [&data](std::int64_t replay_id, clock::time_point) {
      constexpr std::string_view placeholder = "{{replayId}}";
      const std::string id = std::to_string(replay_id);
      std::string out;
      std::size_t from = 0;
      for (auto at = data.find(placeholder); at != std::string::npos;
           at = data.find(placeholder, from)) {
        out.append(data, from, at - from);
        out += id;
        from = at + placeholder.size();
      }
      out.append(data, from, std::string::npos);
      return out;
    });
  }

  void stop() {
    for (auto& weak : late_replies) {
      if (auto timer = weak.lock()) timer->cancel();
    }
    late_replies.clear();
    for (auto& ex : std::exchange(unanswered, {})) {
      if (!ex->answered()) ex->drop();
    }
    auto all = std::move(io);
    io.clear();
    for (auto& [id, c] : all) {
      c->hold_timer.cancel();
      c->expiry_timer.cancel();
      if (c->held && !c->held->answered()) c->held->drop();
    }
    session.clear();
  }
};

cometd_server::cometd_server(asio::any_io_executor executor, cometd_settings settings,
                             const clock& clk, event_bus& bus, token_check check)
    : impl_(std::make_shared<impl>(std::move(executor), settings, clk, bus, std::move(check))) {
  std::weak_ptr<impl> weak = impl_;
  bus.set_publish_listener([weak](const stored_event& e) {
    if (auto self = weak.lock()) self->session.on_event(e);
  });
  bus.set_subscriber_counter([weak](const std::string& channel, const std::string& user_id) {
    auto self = weak.lock();
    return self ? self->session.count_subscribers(channel, user_id) : std::size_t{0};
  });
  bus.set_online_lister([weak](const std::string& channel) {
    auto self = weak.lock();
    return self ? self->session.online_users(channel) : std::vector<std::string>{};
  });
}

cometd_server::~cometd_server() {
  impl_->bus.set_publish_listener(nullptr);
  impl_->bus.set_subscriber_counter(nullptr);
  impl_->bus.set_online_lister(nullptr);
  impl_->stop();
}

void cometd_server::handle(std::shared_ptr<net::exchange> exchange) {
  impl_->handle(exchange);
}

void cometd_server::forget_all_clients() {
  impl_->session.forget_all_clients();
}

void cometd_server::rotate_affinity_cookie() {
  impl_->session.rotate_affinity_cookie();
}

void cometd_server::fail_next_requests(std::size_t count, fault_kind kind) {
  if (!applies_to(kind, fault_target::requests))
    throw std::invalid_argument("this fault kind does not apply to whole requests");
  impl_->fail_count = count;
  impl_->fail_kind = kind;
}

void cometd_server::disconnect_all_clients() {
  impl_->session.disconnect_all_clients();
}

void cometd_server::make_too_busy(std::size_t count) {
  impl_->session.inject(fault_kind::too_busy, count);
}

void cometd_server::inject(fault_kind kind, std::size_t count) {
  impl_->session.inject(kind, count);
}

void cometd_server::spoil_next_event_replies(fault f, std::size_t count) {
  impl_->session.spoil_next_event_replies(std::move(f), count);
}

std::size_t cometd_server::pending_reply_faults() const noexcept {
  return impl_->session.pending_reply_faults();
}

std::uint64_t cometd_server::spoiled_events() const noexcept {
  return impl_->session.spoiled_events();
}

std::int64_t cometd_server::publish_raw(const std::string& channel, const std::string& data) {
  return impl_->publish_raw(channel, data);
}

std::size_t cometd_server::client_count() const noexcept {
  return impl_->session.client_count();
}

std::uint64_t cometd_server::handshake_count() const noexcept {
  return impl_->session.handshake_count();
}

std::size_t cometd_server::active_clients(std::chrono::milliseconds within) const {
  return impl_->session.active_clients(within);
}

std::uint64_t cometd_server::deliveries_today() const {
  return impl_->session.deliveries_today();
}

void cometd_server::set_daily_event_limit(std::uint64_t limit, bool reset) {
  impl_->session.set_daily_event_limit(limit, reset);
}

void cometd_server::stop() {
  impl_->stop();
}

}  // namespace sfstream::emulator::cometd
