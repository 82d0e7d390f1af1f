// The state of one org's data side and the operations on it. rest_api forwards to this class;
// its member functions live in one file per concern:
//   records.cpp            record CRUD, transactions, rendering
//   field_conversion.cpp   JSON body → typed field values (REST's validation texts)
//   streaming_records.cpp  PushTopic / StreamingChannel record rules and their channels
//   pushtopic_matcher.cpp  which record changes a PushTopic notifies, and the events
//   cdc_publisher.cpp      Change Data Capture events, gaps, overflow, bulk changes
//   generic_streaming.cpp  StreamingChannel push (generic events)
//   platform_events.cpp    platform event publish
//   rest_router.cpp        the /services/data routes, versions and resources
//   query_cursors.cpp      SOQL query/queryAll and paging (query locators)
//   org_limits.cpp         the /limits resource
//   org_persistence.cpp    the org's records and counters saved and restored (--state-dir)
//   deleted_records.cpp    the "get deleted" resource (sobjects/<Obj>/deleted/)
//   late_commit.cpp        the late-commit control (a write stamped in the past)
// Internal to the emulator: not installed.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <rapidjson/document.h>

#include "emulator/clock.hpp"
#include "emulator/data/api_allocation.hpp"
#include "emulator/data/record_store.hpp"
#include "emulator/data/rest_api.hpp"
#include "emulator/data/rest_support.hpp"
#include "emulator/data/schema.hpp"
#include "emulator/data/soql.hpp"
#include "emulator/data/values.hpp"
#include "emulator/event_bus.hpp"

namespace sfstream::emulator::data {

/// One REST call or control operation: the changes it makes share a transaction key.
struct transaction {
  std::string key;
  std::int64_t commit_number = 0;
  std::int64_t commit_timestamp = 0;
  std::string user_id;
  std::string origin;
  std::string stamp;  ///< Canonical datetime of the commit: every write of the transaction uses it.
  int sequence = 0;
};

/// A CDC event about to be published (possibly merged over several records).
struct change_event {
  const object_def* object = nullptr;
  std::string change_type;
  std::vector<std::string> record_ids;
  std::string body;  ///< The payload's fields as JSON members text (without braces), merge key.
  std::vector<std::string> changed_fields;
};

/// A PushTopic's channel and its parsed query.
struct pushtopic_state {
  std::string channel;
  soql_query query;
};

/// The records of a query still being paged through (query locator).
struct query_cursor {
  std::string version;
  bool all = false;
  std::vector<std::string> records;  ///< Rendered JSON of each record, at query time.
};

/// One org's records, PushTopics, CDC settings and query cursors (single-threaded).
class rest_api_impl {
 public:
  rest_api_impl(clock& clk, event_bus& bus, data_options options);

  // ---- helpers --------------------------------------------------------------------------
  std::string now() const;
  const caller& effective(const caller& who) const;
  std::string uuid();
  transaction begin(const caller& who, const std::string& origin);
  static std::string origin_for(int version, const std::string& client);
  std::string direct_origin() const;

  // ---- JSON body → fields ---------------------------------------------------------------
  bool convert_fields(const object_def& object, const rapidjson::Value& body, bool creating, field_map& out,
                      api_error& error);
  bool parse_body(const std::string& text, rapidjson::Document& doc, api_error& error);

  // ---- record rendering -----------------------------------------------------------------
  std::string record_url(int version, const object_def& o, const std::string& id) const;
  void write_attributes(json_writer& w, int version, const object_def& o, const std::string& id) const;
  std::string render_record(int version, const record& r, const std::vector<const field_def*>* only) const;

  // ---- writes ---------------------------------------------------------------------------
  op_result create(const std::string& object_name, const std::string& body, const caller& who, transaction& txn,
                   int version);
  op_result update(const std::string& object_name, const std::string& id, const std::string& body, const caller& who,
                   transaction& txn);
  op_result remove(const std::string& object_name, const std::string& id, const caller& who, transaction& txn);
  op_result undelete(const std::string& object_name, const std::string& id, const caller& who, transaction& txn);
  record* locate(const std::string& object_name, const std::string& id);
  api_error missing(const std::string& object_name, const std::string& id) const;

  // ---- PushTopic and StreamingChannel records -------------------------------------------
  /// Checks the rules of PushTopic and StreamingChannel records before a write.
  std::optional<api_error> validate_special(const object_def& object, const field_map& values, const record* existing);
  std::optional<std::string> duplicate_name(const object_def& object, const std::string& name, const record* self) const;
  /// Keeps the channel bookkeeping of PushTopic and StreamingChannel records in step.
  void after_special(const record_change& change);

  // ---- change dispatch: PushTopics and CDC ----------------------------------------------
  void dispatch(transaction& txn, const std::vector<record_change>& changes, bool notify_pushtopics);
  void notify_pushtopics_of(const record_change& c);
  static bool fields_rule_allows(const record& topic, const soql_query& query, const std::vector<std::string>& changed);
  /// The payload fields of a CDC event, as JSON member text (no braces), in schema order.
  std::string cdc_body(const object_def& object, const field_map& fields, const std::vector<std::string>* only,
                       bool last_modified_by);
  change_event make_change_event(const record_change& c);
  void publish_change_event(transaction& txn, const change_event& e);

  // ---- CDC controls ---------------------------------------------------------------------
  op_result enable_cdc(const std::string& entity);
  const object_def* cdc_object(const std::string& entity, api_error& error) const;
  op_result emit_gap(const std::string& entity, const std::vector<std::string>& ids, const std::string& type);
  op_result emit_overflow(const std::string& entity, transaction* within);
  op_result bulk_change(const std::string& entity, std::size_t count, const caller& who);

  // ---- generic streaming ----------------------------------------------------------------
  const record* find_channel(const std::string& name_or_id) const;
  op_result push(const record& channel, const std::string& payload, std::vector<std::string> user_ids = {});
  transport::http_response handle_push(const std::string& method, const record& channel, const std::string& body);

  // ---- platform events ------------------------------------------------------------------
  op_result publish_event(const object_def& event, const rapidjson::Value& body, const caller& who, int version);

  // ---- HTTP -----------------------------------------------------------------------------
  static transport::http_response method_not_allowed(const std::string& method, const std::string& allowed);
  static std::string create_reply(const std::string& id, const std::vector<std::pair<std::string, std::string>>& notes);
  transport::http_response handle(const transport::http_request& req, const caller& who);
  std::size_t batch_size(const transport::http_request& req) const;
  transport::http_response handle_sobjects(const transport::http_request& req, const caller& who, int version,
                                           const std::vector<std::string>& rest);
  transport::http_response versions() const;
  transport::http_response resources(int version) const;
  transport::http_response limits() const;
  transport::http_response get_deleted(const object_def& object, const std::map<std::string, std::string>& params);
  transport::http_response run_query(int version, const std::string& text, bool all, std::size_t batch);
  transport::http_response page(const std::string& locator, std::size_t start);
  transport::http_response next_page(int, const std::string& token);
  static std::string page_json(std::size_t total, bool done, const std::string& next, const std::vector<std::string>& records,
                               std::size_t start, std::size_t end);

  // ---- saving and restoring the org (org_persistence.cpp)
  std::string save_state() const;
  std::string load_state(const std::string& json);

  // ---- state
  clock& clock_;
  event_bus& bus_;
  data_options options_;
  schema schema_;
  record_store store_;
  id_generator ids_;
  std::mt19937_64 rng_;
  std::int64_t commit_number_ = 1'082'990'428'000;
  std::set<std::string> cdc_;
  std::map<std::string, pushtopic_state> pushtopics_;
  std::map<std::string, query_cursor> cursors_;
  std::map<std::string, std::size_t> cursor_batch_;
  std::deque<std::string> cursor_order_;
  std::string last_event_uuid_;
  api_allocation api_requests_{options_.daily_api_requests};
};

}  // namespace sfstream::emulator::data
