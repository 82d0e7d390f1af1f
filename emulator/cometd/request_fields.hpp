// What the emulated CometD endpoint reads from a request besides the messages: the endpoint
// version in the path, the cookies, the Authorization token, and the subscription filter and
// replay-map texts Salesforce quotes back. Pure: no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <rapidjson/document.h>

#include "src/transport/http_types.hpp"

namespace sfstream::emulator::cometd {

/// "52.0" → 520 (tenths); nullopt for anything that is not a version.
std::optional<int> parse_version_tenths(std::string_view text);
/// The endpoint version of a /cometd/<version>[/…] target in tenths, nullopt when malformed.
std::optional<int> endpoint_version(std::string_view target);
/// The value of cookie `name` in the request's Cookie headers.
std::optional<std::string> cookie_value(const transport::header_list& headers,
                                        std::string_view name);
/// The token of `Authorization: Bearer x`, `OAuth x` or a bare `x`; "" without the header.
std::string bearer_token(const transport::http_request& request);
/// %XX decoding that keeps malformed escapes as they are ('+' stays '+').
std::string percent_decode_lenient(std::string_view text);
/// Java Map.toString() of the replay extension map, as Salesforce quotes it in errors.
std::string java_map(const rapidjson::Value& map);

}  // namespace sfstream::emulator::cometd
