// Bayeux-level failures the emulator can be told to give: shared by the CometD server and the
// org_emulator facade.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace sfstream::emulator::cometd {

/// Salesforce replies the fault-injection control forces on the next matching messages
/// (the limit, too-busy and rarer Bayeux failures Salesforce is known to answer).
enum class message_fault {
  too_busy,              ///< handshake/connect/subscribe: 503::Server is too busy, reconnect none.
  connection_limit,      ///< handshake: denied, simultaneous connections per server exceeded.
  multiple_clients,      ///< connect: answered at once with advice interval 2000 and
                         ///< "multiple-clients":true.
  unknown_client_final,  ///< connect: the client is forgotten; 403::Unknown client with
                         ///< reconnect none (seen in 2018 captures).
  bare_subscribe_failure,  ///< subscribe: 403::Restricted channel without `subscription`.
  /// subscribe with a stored replay id (0 or more): refused with Salesforce's
  /// "400::The replayId {N} you provided was invalid…" text, as for an id the org no longer
  /// knows (-1 and -2 are not concerned).
  invalid_replay_id,
};

/// What happens to the next /meta/connect reply that carries events. Whatever the kind, the
/// events of that reply count as sent: they are off the client's queue, as on Salesforce, which
/// never sends an event twice to one client; only a re-subscribe with a replay id gets them back.
enum class reply_fault_kind {
  cut,              ///< Status line, headers and the first `bytes` of the body, then the
                    ///< connection closes (never the whole body).
  reset,            ///< The connection closes before any byte of the reply.
  hold,             ///< The whole reply is sent `delay` late (past a client's long-poll deadline).
  oversize,         ///< The body is padded with JSON whitespace to more than `bytes` bytes.
  malformed,        ///< One message that is not valid JSON (`message`, or a default one) is put
                    ///< after the first event: the body no longer parses.
  unknown_client,   ///< Instead of the events: 403::Unknown client, advice handshake; the client
                    ///< is forgotten.
  unauthorized,     ///< Instead of the events: 401::Authentication invalid, advice none.
  http_503,         ///< Instead of the events: HTTP 503 with an HTML body.
  too_busy,         ///< Instead of the events: the connect fails with 503::Server is too busy.
  disconnect,       ///< Instead of the events: an unsolicited /meta/disconnect; the client is
                    ///< forgotten.
  rotate_affinity,  ///< Instead of the events: a new sfdc-stream cookie value (as after a
                    ///< move to another server) and 403::Unknown client; the client is forgotten.
};

/// One armed reply fault with its parameters.
struct reply_fault {
  reply_fault_kind kind = reply_fault_kind::cut;
  std::size_t bytes = 0;               ///< cut: body bytes sent; oversize: the size to exceed.
  std::chrono::milliseconds delay{0};  ///< hold: how late the reply is sent.
  std::string message;                 ///< malformed: the raw text inserted ("" = a default).
};

}  // namespace sfstream::emulator::cometd
