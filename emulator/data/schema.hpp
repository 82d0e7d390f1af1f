// The emulated org's schema: standard objects, custom objects (Name__c) and platform events
// (Name__e), their fields and key prefixes; Salesforce Ids (15-char base + case-safe suffix);
// field values. Pure: no I/O, no clock.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "emulator/data/rest_api.hpp"

namespace sfstream::emulator::data {

/// Type of a field; decides literal types in SOQL and JSON rendering.
enum class field_type { id, string, textarea, number, boolean, date, datetime, reference };

/// Parses the config-file spelling ("string", "textarea", …); nullopt when unknown.
std::optional<field_type> parse_field_type(std::string_view text);

/// A field value. Dates are "YYYY-MM-DD"; datetimes are UTC "YYYY-MM-DDTHH:MM:SS.mmmZ" so that
/// string order is time order; ids and references are 18-char ids.
using field_value = std::variant<std::monostate, bool, double, std::string>;

/// Field values of one record by canonical field name.
using field_map = std::map<std::string, field_value>;

inline bool is_null(const field_value& v) noexcept { return std::holds_alternative<std::monostate>(v); }

/// Whether a field is set by the user, or maintained by the store.
enum class field_origin {
  user,      ///< Createable and updateable.
  computed,  ///< Derived (compound Name of Contact/Lead); read-only.
  system,    ///< Id, CreatedDate, …: read-only.
};

struct field_def {
  std::string name;
  field_type type = field_type::string;
  field_origin origin = field_origin::user;
  bool required = false;
  std::size_t max_length = 0;  ///< For strings: 0 = unlimited.
  std::string reference_to;
  /// Part of the compound Name (FirstName/LastName of Contact and Lead).
  bool name_part = false;
  /// Whether SOQL may filter on it (long text areas cannot).
  bool filterable() const noexcept { return type != field_type::textarea; }
};

enum class object_kind { standard, custom, platform_event };

struct object_def {
  std::string name;
  std::string key_prefix;
  object_kind kind = object_kind::standard;
  std::vector<field_def> fields;
  /// Contact and Lead: Name is FirstName + " " + LastName and travels as a compound in CDC.
  bool compound_name = false;
  /// 22-char schema id (platform events and change events); changes with the definition.
  std::string schema_id;
  /// Default values for user fields on create (e.g. Lead Status).
  field_map defaults;

  /// Case-insensitive field lookup (SOQL and REST accept any case).
  const field_def* find_field(std::string_view field_name) const noexcept;
  /// CDC entity channel: /data/AccountChangeEvent, /data/Invoice__ChangeEvent.
  std::string change_event_channel() const;
};

/// Every object of the org.
class schema {
 public:
  /// The standard objects plus the custom objects and platform events of `options`.
  /// Invalid definitions are reported through `why` and skipped.
  explicit schema(const data_options& options, std::vector<std::string>* problems = nullptr);

  /// Case-insensitive lookup by API name.
  const object_def* find(std::string_view object_name) const noexcept;
  /// The object whose key prefix starts the id.
  const object_def* find_by_id(std::string_view id) const noexcept;
  /// Adds or replaces a custom object or platform event; returns an error text or "".
  std::string define(object_def def);
  const std::vector<std::unique_ptr<object_def>>& objects() const noexcept { return objects_; }

  /// Converts a config-file definition; returns an error text or "" and fills `out`.
  std::string make_custom_object(const object_definition& def, object_def& out);
  std::string make_platform_event(const platform_event_definition& def, object_def& out) const;

 private:
  std::string next_custom_prefix() const;
  std::vector<std::unique_ptr<object_def>> objects_;
};

/// The 3-char case-safe suffix of a 15-char id (Salesforce's algorithm: for each 5-char chunk,
/// bit i is set when char i is an upper-case letter; the 5-bit value indexes A–Z0–5).
std::string id_checksum(std::string_view id15);
/// True for a 15-char alphanumeric id, or an 18-char one whose suffix is right.
bool is_valid_id(std::string_view id);
/// The 18-char form of a valid 15- or 18-char id ("" when invalid).
std::string to_id18(std::string_view id);

/// Makes 18-char ids: prefix + "5f" (pod) + "0" + 9 base-62 digits of a per-prefix counter.
class id_generator {
 public:
  std::string next(std::string_view key_prefix);
  /// Ids made so far per key prefix (saving and restoring an org).
  const std::map<std::string, std::uint64_t, std::less<>>& counters() const noexcept { return counters_; }
  void set_counter(const std::string& key_prefix, std::uint64_t made) { counters_[key_prefix] = made; }

 private:
  std::map<std::string, std::uint64_t, std::less<>> counters_;
};

/// A 22-char id (A–Z a–z 0–9 - _) derived from `text`; used as a schema id.
std::string make_schema_id(std::string_view text);

}  // namespace sfstream::emulator::data
