// The PostgreSQL replay store, for callers inside the project that share a pool and fence
// every write by a lease (`sfstream serve` with replicas).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "postgresql/database.hpp"
#include "postgresql/schema.hpp"
#include "sfstream/replay_store.hpp"

namespace sfstream::postgresql {

/// What a fenced store's writes claim; empty: the lease is not held (every save fails with
/// errc::lease_lost and writes nothing).
using fence_source = std::function<std::optional<fence>()>;

/// The positions of `scope` through `pool` (the tables migrated already). With `current`
/// every save checks the lease in its transaction; without, saves are unfenced.
std::shared_ptr<replay_store> make_replay_store(std::shared_ptr<pool> pool, tables t,
                                                std::string scope, fence_source current = {});

}  // namespace sfstream::postgresql
