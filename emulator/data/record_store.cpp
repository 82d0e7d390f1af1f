#include "emulator/data/record_store.hpp"

namespace sfstream::emulator::data {
namespace {

const std::map<std::string, record> no_records;

void set_audit(field_map& fields, const std::string& user_id, const std::string& now) {
  fields["LastModifiedDate"] = now;
  fields["LastModifiedById"] = user_id;
  fields["SystemModstamp"] = now;
}

const field_value& get(const field_map& fields, const std::string& name) {
  static const field_value null_value;
  auto it = fields.find(name);
  return it == fields.end() ? null_value : it->second;
}

bool blank(const field_value& v) {
  if (is_null(v)) return true;
  if (const auto* s = std::get_if<std::string>(&v)) return s->empty();
  return false;
}

}  // namespace

void compute_fields(const object_def& object, field_map& fields) {
  if (!object.compound_name) return;
  std::string name;
  for (const char* part : {"FirstName", "LastName"}) {
    const auto* s = std::get_if<std::string>(&get(fields, part));
    if (!s || s->empty()) continue;
    if (!name.empty()) name += ' ';
    name += *s;
  }
  if (name.empty())
    fields.erase("Name");
  else
    fields["Name"] = name;
}

record_change record_store::create(const object_def& object, const field_map& values, const std::string& user_id,
                                   const std::string& now, std::string id, std::optional<api_error>& error) {
  record_change change;
  change.kind = change_kind::create;
  change.object = &object;
  field_map fields = object.defaults;
  for (const auto& [name, value] : values) {
    if (is_null(value))
      fields.erase(name);
    else
      fields[name] = value;
  }
  std::vector<std::string> missing;
  for (const auto& f : object.fields)
    if (f.required && f.origin == field_origin::user && blank(get(fields, f.name))) missing.push_back(f.name);
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    error = api_error{"REQUIRED_FIELD_MISSING", "Required fields are missing: [" + list + "]", missing};
    return change;
  }
  compute_fields(object, fields);
  fields["Id"] = id;
  fields["IsDeleted"] = false;
  fields["CreatedDate"] = now;
  fields["CreatedById"] = user_id;
  if (object.find_field("OwnerId") && blank(get(fields, "OwnerId"))) fields["OwnerId"] = user_id;
  set_audit(fields, user_id, now);
  record r{id, &object, fields, false};
  by_object_[object.name][id] = r;
  object_of_id_[id] = object.name;
  change.id = id;
  change.after = std::move(fields);
  return change;
}

record_change record_store::update(record& target, const field_map& values, const std::string& user_id,
                                   const std::string& now, std::optional<api_error>& error) {
  record_change change;
  change.kind = change_kind::update;
  change.object = target.object;
  change.id = target.id;
  change.before = target.fields;
  field_map fields = target.fields;
  for (const auto& [name, value] : values) {
    if (is_null(value))
      fields.erase(name);
    else
      fields[name] = value;
  }
  for (const auto& f : target.object->fields)
    if (f.required && f.origin == field_origin::user && blank(get(fields, f.name))) {
      error = api_error{"REQUIRED_FIELD_MISSING", "Required fields are missing: [" + f.name + "]", {f.name}};
      return change;
    }
  compute_fields(*target.object, fields);
  for (const auto& f : target.object->fields)
    if (f.origin != field_origin::system && get(fields, f.name) != get(change.before, f.name))
      change.changed.push_back(f.name);
  change.last_modified_by_changed = get(change.before, "LastModifiedById") != field_value(user_id);
  set_audit(fields, user_id, now);
  target.fields = fields;
  change.after = std::move(fields);
  return change;
}

record_change record_store::remove(record& target, const std::string& user_id, const std::string& now) {
  record_change change;
  change.kind = change_kind::remove;
  change.object = target.object;
  change.id = target.id;
  change.before = target.fields;
  target.deleted = true;
  target.fields["IsDeleted"] = true;
  set_audit(target.fields, user_id, now);
  change.after = target.fields;
  return change;
}

record_change record_store::undelete(record& target, const std::string& user_id, const std::string& now) {
  record_change change;
  change.kind = change_kind::undelete;
  change.object = target.object;
  change.id = target.id;
  change.before = target.fields;
  target.deleted = false;
  target.fields["IsDeleted"] = false;
  set_audit(target.fields, user_id, now);
  change.after = target.fields;
  return change;
}

record* record_store::find(const std::string& id) {
  const std::string id18 = to_id18(id);
  auto owner = object_of_id_.find(id18);
  if (owner == object_of_id_.end()) return nullptr;
  auto& records = by_object_[owner->second];
  auto it = records.find(id18);
  return it == records.end() ? nullptr : &it->second;
}

const record* record_store::find(const std::string& id) const {
  return const_cast<record_store*>(this)->find(id);
}

const std::map<std::string, record>& record_store::of(const std::string& object_name) const {
  auto it = by_object_.find(object_name);
  return it == by_object_.end() ? no_records : it->second;
}

std::size_t record_store::live_count(const std::string& object_name) const {
  std::size_t n = 0;
  for (const auto& [id, r] : of(object_name))
    if (!r.deleted) ++n;
  return n;
}

void record_store::restore(record r) {
  const std::string object = r.object->name;
  object_of_id_[r.id] = object;
  const std::string id = r.id;
  by_object_[object][id] = std::move(r);
}

}  // namespace sfstream::emulator::data
