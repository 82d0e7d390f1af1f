// Bayeux messages as Salesforce sends and expects them: a one-pass reply parser that records
// where each message lies in the reply's text, and compact encoders for the five requests a
// client sends.
#pragma once

#include "sfstream/detail/json_text.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bayeux/result.hpp"

namespace sfstream::bayeux {

/// advice.reconnect values (Bayeux 1.0 §5.3).
enum class reconnect_advice { retry, handshake, none };

/// The advice object of a reply. Every field is optional because Salesforce sends partial
/// advice (none at all on a successful handshake).
struct advice {
  std::optional<reconnect_advice> reconnect;  ///< Unknown strings are left empty.
  std::optional<std::int64_t> interval;       ///< Milliseconds to wait before reconnecting.
  std::optional<std::int64_t> timeout;        ///< Milliseconds the server holds a connect.
  std::optional<bool> multiple_clients;       ///< "multiple-clients": two clients, one browser.

  bool empty() const noexcept { return !reconnect && !interval && !timeout && !multiple_clients; }
};

/// The bytes [begin, end) of a reply body. Empty (0, 0) when there is nothing to point at.
struct text_span {
  std::size_t begin = 0;
  std::size_t end = 0;

  std::size_t size() const noexcept { return end - begin; }
  bool empty() const noexcept { return begin == end; }
  /// The bytes of `text` this span covers; `text` must be the body the span was cut from.
  std::string_view of(std::string_view text) const noexcept {
    return text.substr(begin, end - begin);
  }
  friend bool operator==(const text_span&, const text_span&) = default;
};

/// One message of a reply. Typed accessors for the fields the session uses, and where the
/// message lies in the reply so that its raw text (unknown fields included, never
/// re-serialised) can be handed on without a copy.
struct message {
  std::string channel;                   ///< "" when absent.
  std::optional<std::string> id;         ///< Numbers are kept as their decimal text.
  std::string client_id;                 ///< "" when absent.
  std::optional<bool> successful;        ///< Absent on data messages.
  std::string error;                     ///< e.g. "403::Unknown client"; "" when absent.
  std::string subscription;              ///< May be missing or empty on a failed subscribe.
  std::optional<bayeux::advice> advice;  ///< Absent when the reply carries none.
  std::string ext;                       ///< The ext value's text as received; "" when absent.
  std::string failure_reason;            ///< ext.sfdc.failureReason; "" when absent.
  bool has_data = false;                 ///< A `data` member is present.
  /// data.event.replayId when a JSON integer that fits 64 bits; a string is not a replay id.
  std::optional<std::int64_t> replay_id;
  bool has_replay_id = false;  ///< data.event.replayId is present (valid or not).
  text_span object;            ///< The message object, '{' to '}' inclusive.
  text_span data;              ///< The value of the first `data` member; empty when there is none.
  /// The raw message object text: filled by parse_reply, left empty by parse_reply_spans
  /// (whose caller cuts it from the body with `object`).
  std::string json;

  /// True for /meta/... channels.
  bool is_meta() const noexcept;
};

/// Parses a reply body: a JSON array of message objects, or a single object, in one pass.
/// Errors are errc::protocol_error whose diagnostics say what is wrong: not JSON, neither an
/// array nor an object, an element that is not an object, a field of the wrong type. Never
/// throws on bad input. Each message's `json` holds a copy of its text.
result<std::vector<message>> parse_reply(std::string_view body);

/// As parse_reply, without copying any message text: `json` stays empty and `object`/`data`
/// say where the text lies in `body`. For callers that keep the body alive (the session).
result<std::vector<message>> parse_reply_spans(std::string_view body);
/// The same into `out` (emptied first), whose capacity is reused from reply to reply; on error
/// `out` holds nothing usable.
error_info parse_reply_spans(std::string_view body, std::vector<message>& out);
/// parse_reply through RapidJSON's reader alone, without the scanner of json_scan.hpp that
/// reads replies first: the yardstick the tests and the fuzzer hold that scanner to.
result<std::vector<message>> parse_reply_with_rapidjson(std::string_view body);

/// Request encoders. Each returns one compact JSON object; encode_batch joins objects into
/// the JSON array a POST body must be (Salesforce accepts only arrays).

/// {"channel":"/meta/handshake","version":"1.0","minimumVersion":"1.0",
///  "supportedConnectionTypes":["long-polling"],"ext":{"replay":true},"id":"<id>"}
std::string encode_handshake(std::string_view id);
/// /meta/connect with connectionType long-polling; `timeout_zero` adds "advice":{"timeout":0}
/// so the server answers at once (the first connect after a handshake).
std::string encode_connect(std::string_view client_id, std::string_view id, bool timeout_zero);
/// /meta/subscribe with "ext":{"replay":{"<replay_key>":<replay_from>}}.
std::string encode_subscribe(std::string_view client_id, std::string_view channel,
                             std::string_view replay_key, std::int64_t replay_from,
                             std::string_view id);
/// /meta/unsubscribe.
std::string encode_unsubscribe(std::string_view client_id, std::string_view channel,
                               std::string_view id);
/// /meta/disconnect.
std::string encode_disconnect(std::string_view client_id, std::string_view id);
/// "[a,b,...]" from already-encoded message objects.
std::string encode_batch(std::span<const std::string> messages);

/// Appends `text` as a quoted JSON string (shared with the other layers).
using sfstream::detail::append_json_string;

}  // namespace sfstream::bayeux
