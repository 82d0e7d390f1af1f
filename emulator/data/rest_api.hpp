// The emulator's data side: the REST routes under /services/data/ (sobjects, query, queryAll,
// StreamingChannel push, platform event publish) over an in-memory record store, and the
// streaming events that record changes produce (PushTopic, generic, platform events, CDC).
//
// E1's router calls rest_api::handle for every path under /services/data/ once the
// Authorization header is valid; the control endpoints and the demo use the direct calls.
// Everything runs on the emulator's single executor: no locks.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sfstream/error.hpp"
#include "src/transport/http_types.hpp"

namespace sfstream::emulator {
class clock;
class event_bus;
}  // namespace sfstream::emulator

namespace sfstream::emulator::data {

/// The authenticated user a request runs as (E1's token registry fills it in).
struct caller {
  std::string user_id;   ///< 18-char User id (005…); CreatedById, commitUser.
  std::string org_id;    ///< 18-char Organization id (00D…).
  std::string username;  ///< Login name, e.g. "admin@emulator.local".
};

/// A field of a custom object or platform event, as the config file declares it.
struct field_definition {
  std::string name;  ///< API name, e.g. "Amount__c".
  /// One of: string, textarea, number, boolean, date, datetime, reference.
  std::string type = "string";
  std::string reference_to;  ///< For references: the target object name.
  bool required = false;     ///< Create without it → REQUIRED_FIELD_MISSING.
};

/// A custom object `Name__c`. It always has Name (string) and the system fields.
struct object_definition {
  std::string name;        ///< e.g. "Invoice__c".
  std::string key_prefix;  ///< 3 chars; empty = the next free of a00, a01, …
  std::vector<field_definition> fields;
};

/// A platform event `Name__e`. Its schema id changes whenever the definition changes.
struct platform_event_definition {
  std::string name;  ///< e.g. "Low_Ink__e".
  std::vector<field_definition> fields;
};

/// Everything the data side needs to know about the org.
struct data_options {
  /// 18-char org id; the default is a fixed, valid id.
  std::string org_id = "00D5f000000EmUlAAK";
  /// Runs direct calls made with an empty caller (CreatedById, commitUser).
  caller automated_user{"0055f000000EmUlAAK", "00D5f000000EmUlAAK", "automated@emulator.local"};
  std::vector<object_definition> custom_objects;
  std::vector<platform_event_definition> platform_events;
  /// Entities with Change Data Capture on, e.g. {"Account", "Invoice__c"}.
  std::vector<std::string> cdc_entities;
  /// REST accepts /services/data/vN.0 for min ≤ N ≤ max; other versions answer 404 NOT_FOUND.
  int min_api_version = 20;
  int max_api_version = 64;
  /// A bulk change larger than this yields one GAP_OVERFLOW per entity (Salesforce: 100,000).
  std::size_t overflow_threshold = 100000;
  /// Records per query page (Salesforce: 2,000); `Sforce-Query-Options: batchSize=N` may lower it.
  std::size_t query_batch_size = 2000;
  /// DailyApiRequests: REST calls per rolling 24 h of emulator time (Developer Edition:
  /// 15,000); every call under /services/data takes one, and once none is left REST answers
  /// 403 REQUEST_LIMIT_EXCEEDED. 0 = unlimited.
  std::uint64_t daily_api_requests = 15000;
  /// Seed for UUIDs and ids' random parts; 0 = from std::random_device.
  std::uint64_t seed = 0;

  /// Reads the config file's JSON: {"orgId", "customObjects":[{"name","keyPrefix",
  /// "fields":[{"name","type","referenceTo","required"}]}], "platformEvents":[{"name",
  /// "fields":[…]}], "cdcEntities":[…], "overflowThreshold", "queryBatchSize", "dailyApiRequests"}. All keys are
  /// optional. Returns nullopt with the reason in `why` for malformed input.
  static std::optional<data_options> parse_json(const std::string& json, error_info* why = nullptr);
};

/// A Salesforce-style error: the element of the JSON error array REST answers with.
struct api_error {
  std::string error_code;           ///< e.g. "NOT_FOUND", "INVALID_FIELD".
  std::string message;              ///< Salesforce's text.
  std::vector<std::string> fields;  ///< Field names the error concerns (may be empty).
};

/// The outcome of a direct call: an id (record or event) or an error.
struct op_result {
  std::string id;
  std::optional<api_error> error;
  explicit operator bool() const noexcept { return !error.has_value(); }
};

/// A PushTopic as the control endpoints and the demo create it.
struct pushtopic_spec {
  std::string name;   ///< ≤ 25 chars, unique; the channel is /topic/<name>.
  std::string query;  ///< SOQL, ≤ 1,300 chars; must select Id.
  double api_version = 59.0;
  bool notify_for_operation_create = true;
  bool notify_for_operation_update = true;
  bool notify_for_operation_delete = true;
  bool notify_for_operation_undelete = true;
  std::string notify_for_fields = "Referenced";  ///< All | Referenced | Select | Where.
  bool is_active = true;
};

/// CDC change types the gap control can emit.
enum class gap_type { gap_create, gap_update, gap_delete, gap_undelete };

class rest_api_impl;

/// The REST API and the record-change event sources of one emulated org.
class rest_api {
 public:
  /// Keeps references to `clk` and `bus` (owned by org_emulator; they must outlive this).
  /// Declares the platform event and CDC channels of `options` on the bus.
  rest_api(clock& clk, event_bus& bus, data_options options);
  ~rest_api();
  rest_api(const rest_api&) = delete;
  rest_api& operator=(const rest_api&) = delete;

  /// Answers one request whose path starts with /services/data. Never throws; bad input gets
  /// Salesforce's JSON error array with the matching status. Routes (vXX.X = a valid version):
  ///   GET    /services/data                                  versions list
  ///   GET    /services/data/vXX.X                            resources
  ///   GET    /services/data/vXX.X/limits
  ///   GET    /services/data/vXX.X/query?q=… | /queryAll?q=…  SOQL (paged)
  ///   GET    /services/data/vXX.X/query/<locator>-<n>        next page (also /queryAll/…)
  ///   POST   /services/data/vXX.X/sobjects/<Obj>             create (201), platform event publish
  ///   GET    /services/data/vXX.X/sobjects/<Obj>/<id>[?fields=a,b]
  ///   PATCH  /services/data/vXX.X/sobjects/<Obj>/<id>        update (204)
  ///   DELETE /services/data/vXX.X/sobjects/<Obj>/<id>        delete to the recycle bin (204)
  ///   POST   /services/data/vXX.X/sobjects/<Obj>/<id>/undelete   emulator-only (204); Salesforce
  ///                                                          undeletes through SOAP/Apex
  ///   GET|POST /services/data/vXX.X/sobjects/StreamingChannel/<id>/push
  transport::http_response handle(const transport::http_request& req, const caller& who);

  // Direct calls for the control endpoints, the demo and tests. An empty caller runs as
  // data_options::automated_user. Field values travel as a JSON object text.

  op_result create_record(const std::string& object, const std::string& fields_json, const caller& who = {});
  op_result update_record(const std::string& object, const std::string& id, const std::string& fields_json,
                          const caller& who = {});
  op_result delete_record(const std::string& object, const std::string& id, const caller& who = {});
  op_result undelete_record(const std::string& object, const std::string& id, const caller& who = {});
  /// The record as REST GET returns it (JSON text), or nullopt when absent or deleted.
  std::optional<std::string> get_record(const std::string& object, const std::string& id) const;

  /// Creates a PushTopic record (channel /topic/<name>, 24 h retention).
  op_result create_pushtopic(const pushtopic_spec& spec, const caller& who = {});
  /// Creates a StreamingChannel record; `name` is "/u/<name>" (channel declared, 24 h).
  op_result create_streaming_channel(const std::string& name, const caller& who = {});
  /// Pushes a generic event to the StreamingChannel with this name ("/u/…") or id.
  /// The result's id is the replay id as decimal text.
  op_result push_generic(const std::string& channel_name_or_id, const std::string& payload);
  /// Defines (or redefines, changing its schema id) a platform event; declares /event/<name> (72 h).
  void define_platform_event(const platform_event_definition& definition);
  /// Publishes a platform event as POST sobjects/<name> would; the result's id is the e00… id.
  op_result publish_platform_event(const std::string& name, const std::string& fields_json,
                                   const caller& who = {}, double api_version = 59.0);

  /// Turns CDC on for an entity ("Account", "Invoice__c"); declares its channels (72 h).
  op_result enable_cdc(const std::string& entity);
  /// Emits one header-only CDC event of the gap type for `ids` (one transaction).
  op_result emit_gap_events(const std::string& entity, const std::vector<std::string>& ids, gap_type type);
  /// Emits one GAP_OVERFLOW event for the entity (recordIds ["000000000000000AAA"]).
  op_result emit_overflow(const std::string& entity);
  /// Makes `count` record changes on the entity in one transaction: updates of existing
  /// records first (same field, same value, so CDC may merge them), then creates. Above
  /// data_options::overflow_threshold it emits one GAP_OVERFLOW instead of the CDC events.
  op_result bulk_change(const std::string& entity, std::size_t count, const caller& who = {});

  /// Number of live (not deleted) records of an object; 0 for an unknown object.
  std::size_t record_count(const std::string& object) const;
  /// Replaces the overflow threshold (tests set it small).
  void set_overflow_threshold(std::size_t threshold);

  /// The org's records (deleted ones too, with every field), id counters and commit number as
  /// one JSON text, for restoring the org after a restart.
  std::string save_state() const;
  /// Replaces the records and counters with a save_state() text; PushTopics are rebuilt from
  /// their records. Returns the reason when the text is not a valid state (nothing changes
  /// then), "" when loaded.
  std::string load_state(const std::string& json);
  /// Changes with every transaction (the emulator saves a persisted org when it changed).
  std::uint64_t change_count() const noexcept;

  /// Creates (empty `id`) or updates a record in a transaction stamped `stamp`, earlier than
  /// the clock: a long transaction that commits now with the SystemModstamp, LastModifiedDate
  /// (and CreatedDate) of when it wrote. PushTopic and CDC events follow as for any write. A
  /// stamp later than the clock is refused (INVALID_ARGUMENT).
  op_result commit_late(const std::string& object, const std::string& id, const std::string& fields_json,
                        std::chrono::system_clock::time_point stamp, const caller& who = {});
  /// Replaces the DailyApiRequests allocation: `max` per 24 h with `remaining` left now.
  void set_api_allocation(std::uint64_t max, std::uint64_t remaining);
  /// DailyApiRequests left now.
  std::uint64_t api_requests_remaining() const;

 private:
  std::unique_ptr<rest_api_impl> impl_;
};

}  // namespace sfstream::emulator::data
