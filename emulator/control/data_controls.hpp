// The data controls under /_emulator/data/: writes committed late and the API allocation, for
// tests of polling clients. Reached from handle_control with the parsed JSON body.
#pragma once

#include <optional>
#include <string_view>

#include <rapidjson/document.h>

#include "emulator/emulator.hpp"
#include "src/transport/http_types.hpp"

namespace sfstream::emulator::control {

/// Answers a POST under /_emulator/data/; nullopt for a path it does not know.
///   /_emulator/data/commit-late   {"object":"Account","fields":{…},"id":"001…"(update; absent:
///                                  create),"secondsAgo":N or "systemModstamp":"<datetime>"}
///                                 → {"ok":true,"id":"…"}: the write carries that stamp
///   /_emulator/data/api-allocation {"max":N,"remaining":M} → {"ok":true}: DailyApiRequests
std::optional<transport::http_response> handle_data_control(org_emulator& org, std::string_view path,
                                                            const rapidjson::Value& body);

}  // namespace sfstream::emulator::control
