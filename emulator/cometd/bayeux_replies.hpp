// The Bayeux reply messages the emulated CometD endpoint sends, in Salesforce's exact shapes and
// member order, and the pieces of a request they echo (message id, channel). Pure: no I/O.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>

#include "src/transport/http_types.hpp"

namespace sfstream::emulator::cometd {

inline constexpr std::string_view too_busy_text =
    "503::Server is too busy.  Please try your request again later.";
/// The `error` Salesforce puts next to the too-busy failureReason on a connect or subscribe
/// (a handshake says "403::Handshake denied" instead).
inline constexpr std::string_view too_busy_error = "401::Authentication invalid";
inline constexpr std::string_view daily_limit_text =
    "403::Organization total events daily limit exceeded";
/// Salesforce's captured replies keep two spaces after each sentence end inside this text.
inline constexpr std::string_view connection_limit_text =
    "403::To protect all customers from excessive use and Denial of Service attacks, we limit the "
    "number of simultaneous connections per server.  Your request has been denied because this "
    "limit has been exceeded.  Please try your request again later.";
inline constexpr std::string_view uri_example = "URI format: '/cometd/66.0'";

/// The id of a request message, echoed as it came (a string in every capture; numbers kept).
struct message_id {
  std::string json;  ///< Serialized value, empty when absent.
  rapidjson::Type type = rapidjson::kStringType;
};

message_id read_id(const rapidjson::Value& message);
/// The string member `name` of `v`, "" when absent or not a string.
std::string string_member(const rapidjson::Value& v, const char* name);

/// The advice a reply carries.
enum class advice_kind {
  none,
  stop,              ///< {"reconnect":"none","interval":0}, after the error.
  retry_first,       ///< {"interval":0,"timeout":T,"reconnect":"retry"}: the first connect.
  multiple_clients,  ///< {"interval":2000,"multiple-clients":true,"reconnect":"retry","timeout":T}.
};

/// A reply on `channel`: clientId (when not empty), advice, channel, id, subscription (when
/// given), ext.sfdc.failureReason (when not empty), error (when not empty), successful.
std::string build_reply(std::string_view client_id, std::string_view channel, const message_id& id,
                        const std::string* subscription, std::string_view error, advice_kind advice,
                        std::string_view failure_reason = {},
                        std::chrono::milliseconds timeout = {});
/// A denied handshake: 403::Handshake denied with `reason` as ext.sfdc.failureReason.
std::string build_handshake_denied(const message_id& id, std::string_view reason);
/// The successful handshake reply for `client_id`.
std::string build_handshake(const message_id& id, std::string_view client_id);
/// 403::Unknown client with advice {"interval":0,"reconnect":reconnect}; with the clientId
/// first when `client_id` is given (the final reply, reconnect none, carries it).
std::string build_unknown_client(std::string_view channel, const message_id& id,
                                 std::string_view reconnect = "handshake",
                                 std::string_view client_id = {});
/// The unsolicited /meta/disconnect a server sends inside a connect reply.
std::string build_server_disconnect(std::string_view client_id);
/// The reply to a client's /meta/disconnect.
std::string build_disconnect_reply(std::string_view client_id, const message_id& id);
/// "[a,b,…]".
std::string join_messages(const std::vector<std::string>& parts);

/// A JSON HTTP response with Salesforce's Content-Type.
transport::http_response json_http(unsigned status, std::string reason, std::string body);
/// A 200 Bayeux response of `parts`, with a Set-Cookie header for each of `cookies`.
transport::http_response bayeux_http(const std::vector<std::string>& parts,
                                     const std::vector<std::string>& cookies);
/// HTTP 503 with Salesforce's HTML body.
transport::http_response http_503_page();

}  // namespace sfstream::emulator::cometd
