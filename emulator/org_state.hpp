// One org's state file (emulator_options::persist): its clock offset, every channel with its
// replay-id counter and retained events, and its records, so that a restarted emulator is the
// same org (the same replay ids, the same records), not a fresh one.
#pragma once

#include <string>

#include "emulator/clock.hpp"
#include "emulator/data/rest_api.hpp"
#include "emulator/event_bus.hpp"

namespace sfstream::emulator {

/// "<dir>/org-<name>.json".
std::string org_state_path(const std::string& dir, const std::string& org_name);

/// Writes the state to `path` (through a temporary file and a rename, so a crash leaves the
/// old or the new state, never half of one). Throws sfstream::error (invalid_config) with the
/// path and the reason when it cannot.
void save_org_state(const std::string& path, const clock& clk, const event_bus& bus,
                    const data::rest_api& rest);

/// Restores the state `path` holds. Throws sfstream::error (invalid_config) naming the file
/// and what is wrong with it when it is not a valid state; nothing is restored then.
void load_org_state(const std::string& path, clock& clk, event_bus& bus, data::rest_api& rest);

}  // namespace sfstream::emulator
