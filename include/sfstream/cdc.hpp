// Change Data Capture handlers: typed callbacks per change type, transaction grouping, and
// reconciliation of gap and overflow events through the REST API.
//
//   sfstream::cdc_handler h;
//   h.on_create = [&](const sfstream::change_event& e) { ... };
//   h.on_reconciled = [&](sfstream::reconcile_action a, const sfstream::sobject_record& r,
//                         bool from_gap) { ... };
//   sfstream::cdc_options o;
//   o.rest.credentials = provider;  // the streaming client's provider
//   client.subscribe("/data/AccountChangeEvent", sfstream::replay_all,
//                    sfstream::cdc_callbacks(h, o));  // connector::subscribe alike
//
// What happens to each event (all callbacks optional, called one at a time, in stream order,
// on the thread the client runs handlers on):
//   CREATE/UPDATE/DELETE/UNDELETE  → on_create / on_update / on_delete / on_undelete.
//   GAP_CREATE/UPDATE/DELETE/UNDELETE → on_gap, then (reconciliation on) one queryAll
//       `SELECT <fields> FROM <entity> WHERE Id IN (…)` per `ids_per_query` ids: records found
//       and not deleted → on_reconciled(upsert, record, true); IsDeleted = true or not found →
//       on_reconciled(remove, record, true) (a record not found carries only its Id). A gap
//       naming a wildcard id ("001*") resyncs the entity as an overflow does.
//   GAP_OVERFLOW → on_overflow, then a resync of the entity: on_resync_begin(entity), every
//       live record of the entity through paged queryAll → on_resync_record, records in the
//       recycle bin (IsDeleted = true) → on_reconciled(remove, record, false), then
//       on_resync_end(entity): delete what the resync did not see. Every page is fetched before
//       on_resync_begin, so a resync that fails calls no resync callback (on_invalid instead)
//       and never leaves a half-seen entity to be pruned. The stream is held while
//       this runs (the handler has not returned, so its replay id is not committed; a full
//       queue makes the client pause and later resume losslessly); it then resumes
//       where it was. This is Salesforce's documented recovery procedure.
//   A message that is not a valid CDC event (unknown changeType, missing header field, bad
//   JSON) → on_invalid(event, error); it is never dropped silently, and it counts as handled.
//   A reconciliation that fails (errors that is_retryable() calls worth retrying, after
//   `max_attempts` tries; other errors at once) → on_invalid(the gap or overflow event, error),
//   and the event fails: cdc_callbacks' on_event_status returns the error, so the client does
//   not commit it and its handler failure policy decides what follows, as for any handler
//   (stop by default; retry runs the reconciliation again; dead_letter records the event).
//   With transaction grouping, a failed reconciliation fails the event whose arrival delivered
//   the held group (when the idle timer delivers it, the failure is only logged).
//
// Which fields reconciliation selects: `fields[entity]` when given (list them all: Salesforce's
// FIELDS(ALL) is not portable and REST describe may be unavailable); else the fields seen so
// far in this subscription's CREATE/UPDATE/UNDELETE events of that entity (compound Name
// members as their own fields, compound <Prefix>Address members as <Prefix><Member>, a field
// sent as a diff by its own name), always with Id, IsDeleted and LastModifiedDate.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "sfstream/change_event.hpp"
#include "sfstream/client.hpp"
#include "sfstream/error.hpp"
#include "sfstream/event.hpp"
#include "sfstream/logger.hpp"
#include "sfstream/replay.hpp"
#include "sfstream/rest.hpp"

namespace sfstream {

/// What a reconciled record means for a copy of the data.
enum class reconcile_action {
  upsert,  ///< The record exists: insert or replace it with these fields.
  remove,  ///< The record is deleted (or gone): remove it.
};

/// "upsert" or "delete".
std::string_view to_string(reconcile_action action) noexcept;

/// The callbacks of a CDC subscription. Every member may be left empty.
struct cdc_handler {
  std::function<void(const change_event&)> on_create;
  std::function<void(const change_event&)> on_update;
  std::function<void(const change_event&)> on_delete;
  std::function<void(const change_event&)> on_undelete;
  /// GAP_CREATE/GAP_UPDATE/GAP_DELETE/GAP_UNDELETE, before its reconciliation.
  std::function<void(const change_event&)> on_gap;
  /// GAP_OVERFLOW, before the entity's resync.
  std::function<void(const change_event&)> on_overflow;
  /// A record's true state fetched through REST; `from_gap` is true for gap reconciliation,
  /// false for recycle-bin records found by a resync.
  std::function<void(reconcile_action, const sobject_record&, bool from_gap)> on_reconciled;
  std::function<void(const std::string& entity)> on_resync_begin;
  std::function<void(const std::string& entity, const sobject_record&)> on_resync_record;
  std::function<void(const std::string& entity)> on_resync_end;
  /// An event that could not be read or reconciled, with why.
  std::function<void(const event&, const error_info&)> on_invalid;
  /// With transaction grouping: before and after the events of one transaction.
  std::function<void(const std::string& transaction_key, std::size_t events)> on_transaction_begin;
  std::function<void(const std::string& transaction_key)> on_transaction_end;
  /// Stream level, passed through from subscription_callbacks: a replay position that could
  /// not be honoured, a rejected subscription, a confirmed one.
  std::function<void(const gap_record&)> on_replay_gap;
  std::function<void(const error_info&)> on_rejected;
  std::function<void(std::int64_t replay_from)> on_subscribed;
};

/// How a CDC subscription reconciles and groups.
struct cdc_options {
  /// REST access for reconciliation: give `rest.credentials` (the streaming client's provider)
  /// to turn reconciliation on. Without credentials gap and overflow events only reach
  /// on_gap / on_overflow. The provider must not run on the handler's own thread (REST calls
  /// block the handler while they wait for it): use a separate handler executor or connector.
  rest_options rest;
  /// Fields selected per entity by reconciliation (see the header comment for the default).
  std::map<std::string, std::vector<std::string>> fields;
  /// Ids per `WHERE Id IN (…)` query (keeps the URL short; Salesforce's SOQL limit is 100,000
  /// characters but URLs are best kept under 16 KB).
  std::size_t ids_per_query = 200;
  /// Tries of one reconciliation step before on_invalid (transport errors and 5xx are retried
  /// after 200 ms, 400 ms, …; other errors are not).
  int max_attempts = 3;
  /// Where progress and failures of reconciliation are logged.
  logger log;

  /// Transaction grouping (off by default): events sharing a transactionKey are held and
  /// delivered together, in sequenceNumber order, between on_transaction_begin/end. A group is
  /// delivered when an event of another transaction arrives, or when no event arrived for
  /// `group_idle` (the stream went idle), by a timer on `group_executor` (required when
  /// grouping; the timer's delivery runs on that executor, never at the same time as another
  /// callback). Note: the client commits a held event's replay id when on_event returns, so a
  /// crash can lose at most the one open group; leave grouping off for strict at-least-once.
  bool group_transactions = false;
  std::chrono::milliseconds group_idle{200};
  boost::asio::any_io_executor group_executor;
};

/// Adapts `handler` into callbacks for client::subscribe and connector::subscribe. Throws
/// sfstream::error (errc::invalid_config) when grouping is asked without a group_executor.
/// Both on_event_status (which the client uses: it reports a failed reconciliation) and
/// on_event (the same handling, for a caller that calls it directly and learns of failures
/// through on_invalid) are set; set `on_failure` on the result for a per-subscription policy.
subscription_callbacks cdc_callbacks(cdc_handler handler, cdc_options options = {});

/// JSON line for a reconciled record, for the CLI's subscribe output:
/// {"channel":…,"reconciled":"upsert"|"delete","fromGap":true|false,"entity":…,"id":…,"record":{…}}.
std::string render_reconciled_json(std::string_view channel, reconcile_action action,
                                   const sobject_record& record, bool from_gap);

/// Phases of a resync, for render_resync_json.
enum class resync_phase { begin, record, end };

/// JSON line for a resync step, for the CLI's subscribe output:
/// {"channel":…,"resync":"begin"|"record"|"end","entity":…} plus "id" and "record":{…} for
/// `record`.
std::string render_resync_json(std::string_view channel, resync_phase phase,
                               std::string_view entity, const sobject_record* record = nullptr);

}  // namespace sfstream
