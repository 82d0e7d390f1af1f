// Bayeux messages as Salesforce sends and expects them: a reply parser that keeps every
// message's raw JSON text, and compact encoders for the five requests a client sends.
#pragma once

#include "sfstream/detail/json_text.hpp"

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
/// advice (none at all on a successful handshake, dialect reference §3.1).
struct advice {
  std::optional<reconnect_advice> reconnect;  ///< Unknown strings are left empty.
  std::optional<std::int64_t> interval;       ///< Milliseconds to wait before reconnecting.
  std::optional<std::int64_t> timeout;        ///< Milliseconds the server holds a connect.
  std::optional<bool> multiple_clients;       ///< "multiple-clients": two clients, one browser.

  bool empty() const noexcept { return !reconnect && !interval && !timeout && !multiple_clients; }
};

/// One message of a reply. Typed accessors for the fields the session uses; `json` keeps the
/// whole message object exactly as received (unknown fields included, never re-serialised).
struct message {
  std::string channel;                    ///< "" when absent.
  std::optional<std::string> id;          ///< Numbers are kept as their decimal text.
  std::string client_id;                  ///< "" when absent.
  std::optional<bool> successful;         ///< Absent on data messages.
  std::string error;                      ///< e.g. "403::Unknown client"; "" when absent.
  std::string subscription;               ///< May be missing or empty on a failed subscribe.
  std::optional<bayeux::advice> advice;   ///< Absent when the reply carries none.
  std::string ext;                        ///< The ext object as compact JSON; "" when absent.
  std::string failure_reason;             ///< ext.sfdc.failureReason; "" when absent.
  bool has_data = false;                  ///< A `data` member is present.
  std::optional<std::int64_t> replay_id;  ///< data.event.replayId when a 64-bit integer.
  bool has_replay_id = false;             ///< data.event.replayId is present (valid or not).
  std::string json;                       ///< The raw message object text.

  /// True for /meta/... channels.
  bool is_meta() const noexcept;
};

/// Parses a reply body: a JSON array of message objects, or a single object. Errors are
/// errc::protocol_error whose diagnostics say what is wrong. Never throws on bad input.
result<std::vector<message>> parse_reply(std::string_view body);

/// Request encoders. Each returns one compact JSON object; encode_batch joins objects into
/// the JSON array a POST body must be (dialect reference §2).

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
