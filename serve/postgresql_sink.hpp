// The PostgreSQL sink of `sfstream serve`: each batch goes into the events table of the
// service's store database in one transaction that also checks the connection's lease and
// writes the channel's position, so a row is there exactly when its position is: a crash at
// any moment leaves the table and the positions agreeing, and a batch delivered again after it
// inserts nothing twice (the table's key is connection, channel, replay id).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>

#include "postgresql/database.hpp"
#include "postgresql/schema.hpp"
#include "serve/ownership.hpp"
#include "serve/sink.hpp"
#include "sfstream/logger.hpp"

namespace sfstream::serve {

struct postgresql_sink_options {
  /// The service's store pool (the tables migrated already).
  std::shared_ptr<postgresql::pool> database;
  postgresql::tables tables;
  /// NOTIFY channel told of each committed batch (payload: JSON with connection, channel,
  /// last_replay_id, events); empty: no NOTIFY.
  std::string notify;
  /// Waits between tries of a batch the database could not take (down, broken session,
  /// serialization failure): doubling from backoff_initial up to backoff_max, without limit
  /// until stop().
  std::chrono::milliseconds backoff_initial{500};
  std::chrono::milliseconds backoff_max{30'000};
  /// Whose lease each write claims; told when a write finds it lost.
  std::shared_ptr<ownership> owner;
  logger log;
};

/// The sink; its transactions run on `blocking` (they wait on the database).
std::shared_ptr<sink> make_postgresql_sink(boost::asio::any_io_executor blocking,
                                           postgresql_sink_options options);

/// Whether a failure of a database statement may go away by trying again: the server down or
/// restarting, a broken session, a serialization failure or deadlock, a statement timeout,
/// exhausted resources. Data and definition errors (SQLSTATE classes 22, 23, 42, ...) do not.
bool transient_database_error(const error_info& why);

}  // namespace sfstream::serve
