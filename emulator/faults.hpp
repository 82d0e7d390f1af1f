// Every failure the emulator can be told to give, in one enum: the Salesforce failures a client
// must ride through (too busy, limits, unknown client, …) and the transport damage a network or
// proxy causes (cut bodies, resets, late replies, HTML error pages).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace sfstream::emulator {

/// A failure the emulator gives on the next matching requests, messages or replies. Each kind
/// says where it strikes when armed:
///  * requests:      org_emulator::fail_next_cometd_requests (before any message is read);
///  * messages:      org_emulator::inject_bayeux_fault (the Bayeux messages the kind concerns);
///  * event replies: cometd_server::spoil_next_event_replies (the next /meta/connect replies that
///    carry events; their events count as sent, as on Salesforce, which never sends an event
///    twice to one client: only a re-subscribe with a replay id gets them back).
enum class fault_kind {
  /// requests, event replies: HTTP 503 with an HTML body.
  http_503,
  /// requests: HTTP 200 whose body is HTML, not JSON (a proxy's error page).
  not_json,
  /// messages (handshake/connect/subscribe), event replies: the message fails with
  /// ext.sfdc.failureReason "503::Server is too busy.  Please try your request again later."
  /// and advice reconnect none.
  too_busy,
  /// messages (handshake): denied, simultaneous connections per server exceeded.
  connection_limit,
  /// messages (connect): answered at once with advice interval 2000 and "multiple-clients":true.
  multiple_clients,
  /// messages (connect): the client is forgotten; 403::Unknown client with reconnect none.
  unknown_client_final,
  /// messages (connect): the client is forgotten; the reply is Salesforce's bare error page
  /// `{"error":"403::Unknown client","successful":false,"advice":{"interval":0,
  /// "reconnect":"handshake"}}`, with neither channel nor id nor clientId.
  unknown_client_page,
  /// messages (connect): refused as if its session belonged to another user than the
  /// handshake's: "400::Authenticated user id does not match the session's user id".
  session_user_mismatch,
  /// messages (subscribe): 403::Restricted channel without a `subscription` field.
  bare_subscribe_failure,
  /// messages (subscribe with a stored replay id, 0 or more): refused with Salesforce's
  /// "400::The replayId {N} you provided was invalid…" text (-1 and -2 are not concerned).
  invalid_replay_id,
  /// messages (disconnect): the client is forgotten and its held connect released, but the
  /// /meta/disconnect itself is never answered, as Salesforce has been seen to do.
  unanswered_disconnect,
  /// event replies: status line, headers and the first `bytes` of the body, then the connection
  /// closes (never the whole body).
  cut,
  /// event replies: the connection closes before any byte of the reply.
  reset,
  /// event replies: the whole reply is sent `delay` late (past a client's long-poll deadline).
  hold,
  /// event replies: the body is padded with JSON whitespace to more than `bytes` bytes.
  oversize,
  /// event replies: one message that is not valid JSON (`message`, or a default one) is put
  /// after the first event, so the body no longer parses.
  malformed,
  /// event replies: instead of the events, 403::Unknown client with advice handshake; the client
  /// is forgotten.
  unknown_client,
  /// event replies: instead of the events, 401::Authentication invalid with advice none.
  unauthorized,
  /// event replies: instead of the events, an unsolicited /meta/disconnect; the client is
  /// forgotten.
  disconnect,
  /// event replies: instead of the events, a new sfdc-stream cookie value (as after a move to
  /// another server) and 403::Unknown client; the client is forgotten.
  rotate_affinity,
};

/// Where an armed fault strikes (see fault_kind).
enum class fault_target { requests, messages, event_replies };

/// True when `kind` can be armed for `target` (e.g. `cut` only for event replies).
constexpr bool applies_to(fault_kind kind, fault_target target) noexcept {
  switch (target) {
    case fault_target::requests:
      return kind == fault_kind::http_503 || kind == fault_kind::not_json;
    case fault_target::messages:
      return kind >= fault_kind::too_busy && kind <= fault_kind::unanswered_disconnect;
    case fault_target::event_replies:
      return kind == fault_kind::http_503 || kind == fault_kind::too_busy ||
             kind >= fault_kind::cut;
  }
  return false;
}

/// One armed fault with its parameters.
struct fault {
  fault_kind kind = fault_kind::cut;
  std::size_t bytes = 0;               ///< cut: body bytes sent; oversize: the size to exceed.
  std::chrono::milliseconds delay{0};  ///< hold: how late the reply is sent.
  std::string message;                 ///< malformed: the raw text inserted ("" = a default).
};

}  // namespace sfstream::emulator
