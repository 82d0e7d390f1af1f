// Change Data Capture events, typed: the ChangeEventHeader and the record fields of a CDC
// message with their JSON types kept.
//
//   sfstream::error_info why;
//   if (auto change = sfstream::parse_change_event(e, &why)) {
//     if (change->header.type == sfstream::change_type::update)
//       for (const auto& name : change->header.changed_fields) ...
//   }
//
// Field values keep the difference between a field that is absent (not changed, `field()`
// returns nullptr) and a field sent as JSON null (the field was nulled).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sfstream/error.hpp"

namespace sfstream {

class event;

/// A JSON value as Salesforce sent it: null, boolean, integer, floating-point number, string,
/// object (compound fields such as Name or BillingAddress, and {"diff": …} values) or array.
/// Integers that fit in 64 bits stay integers; other numbers are doubles. Objects keep the
/// member order received.
class field_value {
 public:
  enum class kind { null, boolean, integer, number, string, object, array };

  /// JSON null.
  field_value() = default;
  static field_value make_bool(bool v);
  static field_value make_int(std::int64_t v);
  static field_value make_double(double v);
  static field_value make_string(std::string v);
  /// An object from its members, in order.
  static field_value make_object(std::vector<std::pair<std::string, field_value>> members);
  static field_value make_array(std::vector<field_value> elements);

  kind type() const noexcept { return kind_; }
  bool is_null() const noexcept { return kind_ == kind::null; }
  bool is_bool() const noexcept { return kind_ == kind::boolean; }
  /// True for integers and doubles.
  bool is_number() const noexcept { return kind_ == kind::integer || kind_ == kind::number; }
  bool is_string() const noexcept { return kind_ == kind::string; }
  bool is_object() const noexcept { return kind_ == kind::object; }
  bool is_array() const noexcept { return kind_ == kind::array; }
  /// An object with a string member "diff": a large text field sent as a diff
  /// (`{"diff": "--- \n+++ <sha256>\n…"}`), not the field's new value.
  bool is_diff() const noexcept;

  /// The value, or the fallback when the kind does not match. as_double converts integers.
  bool as_bool(bool fallback = false) const noexcept;
  std::int64_t as_int(std::int64_t fallback = 0) const noexcept;
  double as_double(double fallback = 0) const noexcept;
  /// The string; empty for other kinds.
  const std::string& as_string() const noexcept;

  /// Object member names, in order (empty for other kinds); values are at the same index in
  /// elements().
  const std::vector<std::string>& keys() const noexcept { return keys_; }
  /// Object member values or array elements, in order.
  const std::vector<field_value>& elements() const noexcept { return elements_; }
  /// The object member `name`, or nullptr (not an object, or no such member).
  const field_value* find(std::string_view name) const noexcept;

  /// Compact JSON text of the value (member order kept). For objects this is the raw JSON
  /// text of the compound value, re-serialised.
  std::string to_json() const;

  /// Structural equality; an integer equals a double of the same numeric value (REST and
  /// streaming may render 5 and 5.0 differently).
  friend bool operator==(const field_value& a, const field_value& b) noexcept;

 private:
  kind kind_ = kind::null;
  bool bool_ = false;
  std::int64_t int_ = 0;
  double double_ = 0;
  std::string string_;
  std::vector<std::string> keys_;
  std::vector<field_value> elements_;
};

/// Record fields in the order received: name → value.
using field_list = std::vector<std::pair<std::string, field_value>>;

/// The value named `name` in `fields`, or nullptr when the field is absent.
const field_value* find_field(const field_list& fields, std::string_view name) noexcept;

/// Parses a JSON object's text into fields (e.g. a record from the REST API; its
/// "attributes" member is left out). Fails with errc::protocol_error for anything but a JSON
/// object. Never throws.
std::optional<field_list> parse_field_list(std::string_view json_object, error_info* why = nullptr);

/// Compact JSON object text of `fields`.
std::string to_json(const field_list& fields);

/// ChangeEventHeader.changeType. `remove` is DELETE and `gap_remove` GAP_DELETE (`delete` is a
/// C++ keyword).
enum class change_type {
  create,
  update,
  remove,
  undelete,
  gap_create,
  gap_update,
  gap_remove,
  gap_undelete,
  gap_overflow,
};

/// "CREATE", "UPDATE", "DELETE", "UNDELETE", "GAP_CREATE", …, "GAP_OVERFLOW".
std::string_view to_string(change_type type) noexcept;
/// The change type named exactly (upper case) as Salesforce sends it; nullopt otherwise
/// (SNAPSHOT, reserved by Salesforce, is not accepted).
std::optional<change_type> parse_change_type(std::string_view text) noexcept;
/// True for GAP_CREATE, GAP_UPDATE, GAP_DELETE and GAP_UNDELETE (not GAP_OVERFLOW).
bool is_gap(change_type type) noexcept;

/// A record id that stands for many records, e.g. "001*" after a field type conversion.
bool is_wildcard_id(std::string_view id) noexcept;

/// The ChangeEventHeader, field for field as sent in CometD.
struct change_header {
  std::string entity_name;  ///< e.g. "Account", "Invoice__c".
  /// The records changed: one, several (a merged event), a wildcard ("001*"), or for
  /// GAP_OVERFLOW the placeholder "000000000000000AAA".
  std::vector<std::string> record_ids;
  change_type type = change_type::create;
  std::string change_origin;          ///< e.g. "com/salesforce/api/soap/60.0;client=…".
  std::string transaction_key;        ///< Shared by the events of one transaction.
  std::int64_t sequence_number = 0;   ///< Position within the transaction, from 1.
  std::int64_t commit_timestamp = 0;  ///< Epoch milliseconds.
  std::int64_t commit_number = 0;
  std::string commit_user;  ///< User id.
  /// Names of the changed fields (UPDATE; empty otherwise). Compound members appear as
  /// "Name.FirstName". Absent in the message → empty (some renderings omit it).
  std::vector<std::string> changed_fields;
};

/// One Change Data Capture event.
struct change_event {
  std::string channel;                    ///< e.g. "/data/AccountChangeEvent".
  std::optional<std::int64_t> replay_id;  ///< data.event.replayId.
  std::string schema;                     ///< data.schema (may be empty).
  change_header header;
  /// The payload's record fields (ChangeEventHeader excluded), in the order received.
  field_list fields;

  /// The field named `name`: nullptr when absent (unchanged), a null value when nulled.
  const field_value* field(std::string_view name) const noexcept {
    return find_field(fields, name);
  }
  /// True when any record id is a wildcard.
  bool has_wildcard_ids() const noexcept;
};

/// Parses a whole CometD message {"channel":…,"data":{"schema":…,"payload":{…},"event":{…}}}.
/// Fails with errc::protocol_error, saying what is missing or wrong in the diagnostics, for
/// malformed JSON, a payload without ChangeEventHeader, an unknown changeType or a missing or
/// mistyped header field (entityName, recordIds, changeType, changeOrigin, transactionKey,
/// sequenceNumber, commitTimestamp, commitNumber, commitUser). Never throws.
std::optional<change_event> parse_change_event(std::string_view message_json,
                                               error_info* why = nullptr);
/// The same for an event received by the client.
std::optional<change_event> parse_change_event(const event& e, error_info* why = nullptr);

}  // namespace sfstream
