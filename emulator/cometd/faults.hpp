// Bayeux-level failures the emulator can be told to give: shared by the CometD server and the
// org_emulator facade.
#pragma once

namespace sfstream::emulator::cometd {

/// Salesforce replies the fault-injection control forces on the next matching messages
/// (dialect reference §4 and §9 item 8).
enum class message_fault {
  too_busy,                ///< handshake/connect/subscribe: 503::Server is too busy, reconnect none.
  connection_limit,        ///< handshake: denied, simultaneous connections per server exceeded.
  multiple_clients,        ///< connect: answered at once with advice interval 2000 and
                           ///< "multiple-clients":true.
  unknown_client_final,    ///< connect: the client is forgotten; 403::Unknown client with
                           ///< reconnect none (seen in 2018 captures).
  bare_subscribe_failure,  ///< subscribe: 403::Restricted channel without `subscription`.
};

}  // namespace sfstream::emulator::cometd
