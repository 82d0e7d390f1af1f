// libFuzzer target: parse_reply and parse_channel on arbitrary bytes. Every message slice of
// an accepted reply must itself parse as exactly one message with the same typed fields, and
// parse_reply_spans must agree with parse_reply on every input.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "bayeux/channel.hpp"
#include "bayeux/message.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sfstream::bayeux;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = parse_reply(text);
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
