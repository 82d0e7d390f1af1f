// libFuzzer target: parse_reply and parse_channel on arbitrary bytes. Every message slice of
// an accepted reply must itself parse as exactly one message with the same typed fields, and
// parse_reply_spans must agree with parse_reply on every input, and parse_reply with RapidJSON's
// reader alone.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "bayeux/channel.hpp"
#include "bayeux/message.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sfstream::bayeux;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = parse_reply(text);
  // The scanner that reads replies first agrees with RapidJSON's reader on every input: same
  // verdict, same messages, same diagnostics.
  auto reference = parse_reply_with_rapidjson(text);
  if (reference.has_value() != r.has_value()) std::abort();
  if (r.has_value()) {
    if (reference->size() != r->size()) std::abort();
    for (std::size_t i = 0; i < r->size(); ++i) {
      const auto& a = r.value()[i];
      const auto& b = reference.value()[i];
      if (a.channel != b.channel || a.id != b.id || a.client_id != b.client_id ||
          a.successful != b.successful || a.error != b.error || a.subscription != b.subscription ||
          a.advice.has_value() != b.advice.has_value() || a.ext != b.ext ||
          a.failure_reason != b.failure_reason || a.has_data != b.has_data ||
          a.replay_id != b.replay_id || a.has_replay_id != b.has_replay_id ||
          a.object != b.object || a.data != b.data || a.json != b.json) {
        std::abort();
      }
      if (a.advice && (a.advice->reconnect != b.advice->reconnect ||
                       a.advice->interval != b.advice->interval ||
                       a.advice->timeout != b.advice->timeout ||
                       a.advice->multiple_clients != b.advice->multiple_clients)) {
        std::abort();
      }
    }
  } else if (reference.error().diag.server_text != r.error().diag.server_text) {
    std::abort();
  }
  // The span parser accepts and refuses exactly the same, and its spans cover the same bytes.
  auto spans = parse_reply_spans(text);
  if (spans.has_value() != r.has_value()) std::abort();
  if (r.has_value()) {
    if (spans->size() != r->size()) std::abort();
    for (std::size_t i = 0; i < r->size(); ++i) {
      const auto& m = r.value()[i];
      const auto& s = spans.value()[i];
      if (!s.json.empty() || s.object != m.object || s.data != m.data) std::abort();
      if (m.object.end > text.size() || m.object.begin >= m.object.end) std::abort();
      if (m.json != m.object.of(text)) std::abort();
      if (m.has_data != !m.data.empty()) std::abort();
      if (m.has_data && (m.data.begin <= m.object.begin || m.data.end >= m.object.end)) {
        std::abort();
      }
    }
  } else if (spans.error().diag.server_text != r.error().diag.server_text) {
    std::abort();
  }
  if (r.has_value()) {
    for (const auto& m : r.value()) {
      auto again = parse_reply(m.json);
      if (!again.has_value() || again->size() != 1) std::abort();
      const auto& n = again.value()[0];
      if (n.channel != m.channel || n.id != m.id || n.replay_id != m.replay_id ||
          n.error != m.error || n.json != m.json) {
        std::abort();
      }
    }
  } else if (!r.error().code) {
    std::abort();
  }
  auto c = parse_channel(text);
  if (c.has_value()) {
    if (c->replay_key().size() > c->name.size()) std::abort();
    // A valid channel survives encoding into a subscribe and parsing back.
    auto sub = parse_reply("[" + encode_subscribe("c", c->name, c->replay_key(), -2, "1") + "]");
    if (!sub.has_value() || sub.value()[0].subscription != c->name) std::abort();
  }
  return 0;
}
