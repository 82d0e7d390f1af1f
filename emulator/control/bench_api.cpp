#include "emulator/control/bench_api.hpp"

#include <algorithm>
#include <optional>
#include <string_view>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "emulator/emulator.hpp"

namespace sfstream::emulator::control {

namespace {

constexpr std::string_view prefix = "/_emulator/bench/";
constexpr std::chrono::seconds subscriber_wait{60};
constexpr std::chrono::milliseconds settle{200};
/// Bytes of an event message besides Body__c, before the first event of a kind is measured.
constexpr std::size_t overhead_guess = 300;

transport::http_response json(unsigned status, std::string body) {
  transport::http_response r;
  r.status = status;
  r.reason = status == 200 ? "OK" : status == 404 ? "Not Found" : "Bad Request";
  r.headers = {{"Content-Type", "application/json;charset=UTF-8"}};
  r.body = std::move(body);
  return r;
}

transport::http_response bad(std::string_view why) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("error");
  w.String(why.data(), static_cast<rapidjson::SizeType>(why.size()));
  w.EndObject();
  return json(400, sb.GetString());
}

std::optional<std::int64_t> positive(const rapidjson::Value& body, const char* name) {
  auto it = body.FindMember(name);
  if (it == body.MemberEnd() || !it->value.IsInt64() || it->value.GetInt64() <= 0) {
    return std::nullopt;
  }
  return it->value.GetInt64();
}

std::string micros_since_epoch() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(now).count());
}

}  // namespace

bool is_bench_path(std::string_view path) {
  return path.substr(0, prefix.size()) == prefix;
}

struct bench_api::pace_state {
  explicit pace_state(boost::asio::any_io_executor ex) : timer(std::move(ex)) {}
  boost::asio::steady_timer timer;
  std::string event;
  std::size_t count = 0;
  std::size_t bytes = 0;
  std::chrono::nanoseconds period{};
  std::size_t published = 0;
  std::chrono::steady_clock::time_point start;
  std::chrono::steady_clock::time_point give_up;
  bool waiting = true;
  /// The fewest subscribers seen since the pace was asked for: clients that went away without
  /// a disconnect stay subscribed until they expire, so a new one shows as a count above it.
  std::size_t fewest = 0;
  bool running = true;
};

bench_api::bench_api(org_emulator& org, boost::asio::any_io_executor executor)
    : org_(org), executor_(std::move(executor)) {}

void bench_api::stop() {
  if (pace_) {
    pace_->running = false;
    pace_->timer.cancel();
    pace_.reset();
  }
}

void bench_api::define(const std::string& event) {
  if (org_.events().channel_exists("/event/" + event)) return;
  data::platform_event_definition definition;
  definition.name = event;
  definition.fields = {{"Body__c", "textarea", "", false}, {"SentAt__c", "string", "", false}};
  org_.rest().define_platform_event(definition);
}

bool bench_api::publish(const std::string& event, std::size_t bytes) {
  auto& known = overhead_;
  auto it = known.find(event);
  const std::size_t overhead = it == known.end() ? overhead_guess : it->second;
  const std::size_t body = bytes > overhead ? bytes - overhead : 0;
  const std::string fields = R"({"Body__c":")" + std::string(body, 'x') + R"(","SentAt__c":")" +
                             micros_since_epoch() + R"("})";
  if (!org_.rest().publish_platform_event(event, fields)) return false;
  if (it == known.end()) {
    const std::string channel = "/event/" + event;
    const std::int64_t last = org_.events().last_replay_id(channel);
    org_.events().visit_after(channel, last - 1, [&](const stored_event& e) {
      if (e.message && e.message->size() > body) known[event] = e.message->size() - body;
    });
  }
  return true;
}

void bench_api::pace_step(std::shared_ptr<pace_state> state) {
  if (!state->running || state != pace_) return;
  const auto now = std::chrono::steady_clock::now();
  if (state->waiting) {
    const auto& user = org_.options().users.front().user_id;
    const std::size_t now_subscribed = org_.events().subscribers("/event/" + state->event, user);
    state->fewest = std::min(state->fewest, now_subscribed);
    if (now_subscribed <= state->fewest) {
      if (now > state->give_up) {
        state->running = false;
        return;
      }
      state->timer.expires_after(std::chrono::milliseconds{1});
    } else {
      state->waiting = false;
      state->start = now + settle;
      state->timer.expires_at(state->start);
    }
  } else {
    // A fixed schedule: event i is due at start + i * period, however late a step runs.
    while (state->published < state->count &&
           state->start + state->published * state->period <= now) {
      publish(state->event, state->bytes);
      ++state->published;
    }
    if (state->published >= state->count) {
      state->running = false;
      return;
    }
    state->timer.expires_at(state->start + state->published * state->period);
  }
  state->timer.async_wait([this, state](boost::system::error_code ec) {
    if (!ec) pace_step(state);
  });
}

transport::http_response bench_api::handle(const transport::http_request& request) {
  std::string_view path = request.target;
  path = path.substr(0, path.find('?'));
  if (path == "/_emulator/bench/pace" && request.method == "GET") {
    const bool running = pace_ && pace_->running;
    const std::size_t published = pace_ ? pace_->published : 0;
    return json(200, "{\"published\":" + std::to_string(published) +
                         ",\"running\":" + (running ? "true" : "false") + "}");
  }
  if (request.method != "POST") return bad("bench endpoints accept POST (and GET pace)");
  rapidjson::Document body;
  if (request.body.empty()) {
    body.SetObject();
  } else if (body.Parse(request.body.c_str(), request.body.size()).HasParseError() ||
             !body.IsObject()) {
    return bad("the body must be a JSON object");
  }
  std::string event = "Bench__e";
  if (auto it = body.FindMember("event"); it != body.MemberEnd() && it->value.IsString()) {
    event = it->value.GetString();
  }
  if (event.size() < 4 || event.substr(event.size() - 3) != "__e") {
    return bad("event must be a platform event name ending in __e");
  }
  const auto count = positive(body, "count");
  const auto bytes = positive(body, "bytes");
  if (!count || !bytes) return bad("count and bytes must be positive integers");
  define(event);

  if (path == "/_emulator/bench/preload") {
    for (std::int64_t i = 0; i < *count; ++i) {
      if (!publish(event, static_cast<std::size_t>(*bytes)))
        return bad("the event cannot be published");
    }
    return json(200, "{\"ok\":true,\"lastReplayId\":\"" +
                         std::to_string(org_.events().last_replay_id("/event/" + event)) + "\"}");
  }
  if (path == "/_emulator/bench/pace") {
    const auto rate = positive(body, "rate");
    if (!rate) return bad("rate must be a positive integer (events per second)");
    stop();
    pace_ = std::make_shared<pace_state>(executor_);
    pace_->event = event;
    pace_->count = static_cast<std::size_t>(*count);
    pace_->bytes = static_cast<std::size_t>(*bytes);
    pace_->period = std::chrono::nanoseconds{1'000'000'000 / *rate};
    pace_->give_up = std::chrono::steady_clock::now() + subscriber_wait;
    pace_->fewest =
        org_.events().subscribers("/event/" + event, org_.options().users.front().user_id);
    pace_step(pace_);
    return json(200, R"({"ok":true})");
  }
  return json(404, R"({"error":"unknown bench path"})");
}

}  // namespace sfstream::emulator::control
