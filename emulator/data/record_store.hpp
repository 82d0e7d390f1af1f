// In-memory records of the emulated org: create, update, delete to the recycle bin, undelete.
// Each write reports what changed so that PushTopics and CDC can be fed from it. Pure: the
// caller passes the time and the user.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "emulator/data/schema.hpp"

namespace sfstream::emulator::data {

/// One stored record; `fields` holds every set field, system fields included.
struct record {
  std::string id;
  const object_def* object = nullptr;
  field_map fields;
  bool deleted = false;  ///< In the recycle bin (IsDeleted = true; seen by queryAll only).
};

enum class change_kind { create, update, remove, undelete };

/// What one write did to one record.
struct record_change {
  change_kind kind = change_kind::create;
  const object_def* object = nullptr;
  std::string id;
  field_map before;  ///< Fields before the write (empty for create).
  field_map after;   ///< Fields after the write.
  /// User and computed fields whose value changed (update), in schema order; system fields
  /// are not listed (LastModifiedDate always changes).
  std::vector<std::string> changed;
  bool last_modified_by_changed = false;
};

/// Records of every object, ordered by id (ids grow with creation, so this is creation order).
class record_store {
 public:
  /// Creates a record of `object` with `values` (canonical field names, user fields only).
  /// Checks required fields and applies defaults. `now` is a datetime value.
  record_change create(const object_def& object, const field_map& values, const std::string& user_id,
                       const std::string& now, std::string id, std::optional<api_error>& error);
  /// Updates user fields; `values` may hold nulls (clearing a field).
  record_change update(record& target, const field_map& values, const std::string& user_id,
                       const std::string& now, std::optional<api_error>& error);
  /// Moves a record to the recycle bin.
  record_change remove(record& target, const std::string& user_id, const std::string& now);
  /// Restores a record from the recycle bin.
  record_change undelete(record& target, const std::string& user_id, const std::string& now);

  /// Any record (deleted ones included) by 15- or 18-char id.
  record* find(const std::string& id);
  const record* find(const std::string& id) const;
  /// Every record of an object, deleted ones included, ordered by id.
  const std::map<std::string, record>& of(const std::string& object_name) const;
  std::size_t live_count(const std::string& object_name) const;
  /// Puts back a record exactly as it was saved (restoring an org): no defaults, no checks.
  void restore(record r);

 private:
  std::map<std::string, std::map<std::string, record>> by_object_;
  std::map<std::string, std::string> object_of_id_;
};

/// Fills the computed fields (compound Name) from the user fields.
void compute_fields(const object_def& object, field_map& fields);

}  // namespace sfstream::emulator::data
