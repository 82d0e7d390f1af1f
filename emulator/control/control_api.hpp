// The emulator-only control endpoints under /_emulator/ (POST, JSON body, no auth, loopback
// callers only): fault injection and time travel for tests and users. Each path maps to an
// org_emulator method; emulator/README.md lists them.
#pragma once

#include "emulator/emulator.hpp"
#include "src/transport/http_types.hpp"

namespace sfstream::emulator::control {

/// Answers one request under /_emulator/. 200 {"ok":true,…} on success; 400 {"error":"…"} for a
/// bad body; 404 for an unknown path; 405 for a method other than POST (GET /_emulator/status
/// is the one read-only path).
transport::http_response handle_control(org_emulator& org, const transport::http_request& request);

}  // namespace sfstream::emulator::control
