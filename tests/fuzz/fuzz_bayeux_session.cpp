// libFuzzer target: arbitrary bytes as replies (and other inputs) in every session state.
// The first byte picks the state to drive the session into with well-formed replies; the
// rest is a stream of operations whose payloads are fed as reply bodies. Aborts (a finding)
// when the session breaks its contract: two exchanges on one lane, a stall (nothing in
// flight, nothing scheduled, not finished), an action after finished, or a delivered event
// whose raw JSON is not one message object.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "bayeux/message.hpp"
#include "bayeux/session.hpp"

namespace {

using namespace sfstream;
using namespace sfstream::bayeux;
using namespace std::chrono_literals;

void check(bool ok) {
  if (!ok) std::abort();
}

struct driver {
  session s;
  time_point now{std::chrono::hours{1}};
  std::optional<std::string> outstanding[2];
  bool timer = false;
  bool auth = false;
  bool finished_seen = false;
  int client = 0;

  explicit driver(session_config c) : s(std::move(c)) {}

  void drain() {
    for (int i = 0; i < 1'000'000; ++i) {
      auto a = s.next_action();
      if (!a) return;
      check(!finished_seen);
      std::visit(
          [&](auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, send>) {
              auto& slot = outstanding[static_cast<int>(v.lane)];
              check(!slot.has_value());
              check(v.deadline.count() > 0);
              check(parse_reply(v.body).has_value());
              slot = std::move(v.body);
            } else if constexpr (std::is_same_v<T, bayeux::abort>) {
              outstanding[static_cast<int>(v.lane)].reset();
            } else if constexpr (std::is_same_v<T, bayeux::wait>) {
              check(v.duration.count() >= 0);
              timer = true;
            } else if constexpr (std::is_same_v<T, authenticate>) {
              auth = true;
            } else if constexpr (std::is_same_v<T, deliver>) {
              auto r = parse_reply(v.event.json());
              check(r.has_value() && r->size() == 1);
              if (v.event.replay_id) s.commit(v.event.replay_key, *v.event.replay_id);
            } else if constexpr (std::is_same_v<T, finished>) {
              finished_seen = true;
            }
          },
          *a);
    }
    std::abort();  // unbounded actions
  }

  void check_live() {
    if (finished_seen) return;
    const auto st = s.state();
    if (st == session_state::unconnected || st == session_state::paused) return;
    check(auth || outstanding[0] || outstanding[1] || timer);
  }

  // Well-formed answers, used to reach a state.
  std::string good_answer(const std::string& body) {
    auto parsed = parse_reply(body);
    std::string out = "[";
    for (const auto& m : parsed.value()) {
      if (out.size() > 1) out += ",";
      const std::string id = m.id.value_or("");
      if (m.channel == "/meta/handshake") {
        out += R"({"clientId":"c)" + std::to_string(++client) +
               R"(","channel":"/meta/handshake","id":")" + id + R"(","successful":true})";
      } else if (m.channel == "/meta/connect") {
        out +=
            R"({"data":{"event":{"replayId":7}},"channel":"/topic/A"},)"
            R"({"advice":{"interval":0,"timeout":110000,"reconnect":"retry"},"channel":"/meta/connect","id":")" +
            id + R"(","successful":true})";
      } else {
        out += R"({"channel":")" + m.channel + R"(","id":")" + id + R"(","subscription":")" +
               m.subscription + R"(","successful":true})";
      }
    }
    return out + "]";
  }

  void answer_good(int lane_index) {
    if (!outstanding[lane_index]) return;
    const std::string body = std::move(*outstanding[lane_index]);
    outstanding[lane_index].reset();
    now += 10ms;
    s.on_reply(static_cast<lane>(lane_index), 200, good_answer(body), now);
    drain();
  }

  void fire() {
    now += 61min;
    timer = false;
    s.on_timer(now);
    drain();
  }
};

struct reader {
  const std::uint8_t* data;
  std::size_t size;
  std::size_t pos = 0;
  bool empty() const { return pos >= size; }
  std::uint8_t byte() { return pos < size ? data[pos++] : 0; }
  std::string_view chunk() {
    std::size_t n = byte();
    n = (n << 8) | byte();
    n = std::min(n, size - std::min(pos, size));
    std::string_view out(reinterpret_cast<const char*>(data) + pos, n);
    pos += n;
    return out;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  reader in{data, size};
  session_config config;
  config.jitter_seed = in.byte();
  config.max_request_bytes = 64 + in.byte() * 64u;
  driver d{config};
  d.s.subscribe("/topic/A", -1, d.now);
  d.s.subscribe("/event/B__e", 42, d.now);
  d.s.subscribe("/data/ChangeEvents", -2, d.now, replay_policy::tip);

  // Drive into the chosen state with well-formed exchanges.
  const int target = in.byte() % 8;
  if (target >= 1) {
    d.s.start(d.now);
    d.drain();
  }
  if (target >= 2) {
    d.auth = false;
    d.s.on_authenticated(d.now);
    d.drain();
  }
  if (target >= 3) {
    d.answer_good(0);  // handshake → connect + subscribes
    d.answer_good(0);
    d.answer_good(1);  // first connect → next connect
  }
  if (target == 4) {  // backing_off
    d.outstanding[1].reset();
    d.s.on_transport_error(lane::long_poll, {make_error_code(errc::timeout), {}}, d.now);
    d.drain();
  }
  if (target == 5) {
    d.s.pause(d.now);
    d.drain();
  }
  if (target == 6) {
    d.s.stop(d.now);
    d.drain();
  }
  if (target == 7) {  // a re-handshake in flight
    if (d.outstanding[1]) {
      d.outstanding[1].reset();
      d.s.on_reply(
          lane::long_poll, 200,
          R"([{"channel":"/meta/connect","error":"403::Unknown client","advice":{"reconnect":"handshake"},"successful":false}])",
          d.now);
      d.drain();
    }
  }
  d.check_live();

  for (int ops = 0; ops < 256 && !in.empty(); ++ops) {
    const std::uint8_t op = in.byte();
    const int l = op & 1;
    d.now += std::chrono::milliseconds{in.byte() * 100};
    switch ((op >> 1) % 10) {
      case 0:
      case 1:
      case 2: {  // arbitrary bytes as a reply on a lane (outstanding or not)
        static constexpr unsigned statuses[] = {200, 200, 200, 401, 400, 500, 503, 413};
        const unsigned status = statuses[(op >> 5) & 7];
        std::string_view body = in.chunk();
        d.outstanding[l].reset();
        d.s.on_reply(static_cast<lane>(l), status, body, d.now);
        break;
      }
      case 3:
        d.answer_good(l);
        break;
      case 4: {
        static constexpr errc codes[] = {errc::timeout, errc::connection_failed,
                                         errc::connection_closed, errc::tls_error};
        d.outstanding[l].reset();
        d.s.on_transport_error(static_cast<lane>(l), {make_error_code(codes[(op >> 5) & 3]), {}},
                               d.now);
        break;
      }
      case 5:
        d.timer = false;
        d.s.on_timer(d.now);
        break;
      case 6: {
        static const char* names[] = {"/topic/A", "/u/x", "/event/B__e", "/topic/C?x=1"};
        const char* name = names[(op >> 5) & 3];
        if (op & 0x10) {
          d.s.subscribe(name, static_cast<std::int64_t>(in.byte()) - 2, d.now);
        } else {
          d.s.unsubscribe(name, d.now);
        }
        break;
      }
      case 7:
        d.s.commit("/topic/A", static_cast<std::int64_t>(in.byte()));
        break;
      case 8:
        switch ((op >> 5) & 3) {
          case 0:
            d.s.pause(d.now);
            break;
          case 1:
            d.s.resume(d.now);
            break;
          case 2:
            d.s.stop(d.now);
            break;
          default:
            d.s.start(d.now);
            break;
        }
        break;
      case 9:
        if (op & 0x20) {
          d.auth = false;
          d.s.on_authenticated(d.now);
        } else {
          d.auth = false;
          d.s.on_authentication_failed(
              {make_error_code(op & 0x40 ? errc::connection_failed : errc::auth_invalid_login), {}},
              d.now);
        }
        break;
    }
    d.drain();
    d.check_live();
  }
  // Whatever happened, the session can still be stopped and finishes.
  d.s.stop(d.now);
  d.drain();
  for (int i = 0; i < 4 && !d.finished_seen; ++i) {
    if (d.outstanding[0]) {
      d.outstanding[0].reset();
      d.s.on_transport_error(lane::control, {make_error_code(errc::timeout), {}}, d.now);
      d.drain();
    } else {
      d.fire();
    }
  }
  check(d.finished_seen);
  return 0;
}
