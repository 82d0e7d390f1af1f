// Change Data Capture: change events (merged per transaction), gap and overflow events, bulk
// changes.
#include "emulator/data/rest_api_impl.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include <rapidjson/error/en.h>

namespace sfstream::emulator::data {

/// The payload fields of a CDC event, as JSON member text (no braces), in schema order.
std::string rest_api_impl::cdc_body(const object_def& object, const field_map& fields, const std::vector<std::string>* only,
                     bool last_modified_by) {
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartObject();
  auto wanted = [&](const std::string& name) {
    return !only || std::find(only->begin(), only->end(), name) != only->end();
  };
  bool name_written = false;
  for (const auto& f : object.fields) {
    if (f.name == "Id" || f.name == "IsDeleted" || f.name == "SystemModstamp") continue;
    if (object.compound_name && (f.name_part || f.name == "Name")) {
      if (name_written) continue;
      name_written = true;
      bool any = false;
      for (const auto& part : object.fields)
        if (part.name_part && wanted(part.name) && (only || !is_null(value_of(fields, part.name)))) any = true;
      if (!any) continue;
      w.Key("Name");
      w.StartObject();
      for (const auto& part : object.fields) {
        if (!part.name_part || !wanted(part.name) || (!only && is_null(value_of(fields, part.name)))) continue;
        write_key(w, part.name);
        write_value(w, value_of(fields, part.name), date_style::streaming);
      }
      w.EndObject();
      continue;
    }
    const bool audit = f.name == "LastModifiedDate" || (f.name == "LastModifiedById" && last_modified_by);
    if (only) {
      if (!wanted(f.name) && !audit) continue;
    } else if (is_null(value_of(fields, f.name))) {
      continue;
    }
    write_key(w, f.name);
    write_value(w, value_of(fields, f.name), date_style::streaming);
  }
  w.EndObject();
  std::string text = buffer.GetString();
  return text.substr(1, text.size() - 2);
}

change_event rest_api_impl::make_change_event(const record_change& c) {
  change_event e;
  e.object = c.object;
  e.record_ids.push_back(c.id);
  switch (c.kind) {
    case change_kind::create:
      e.change_type = "CREATE";
      e.body = cdc_body(*c.object, c.after, nullptr, true);
      break;
    case change_kind::undelete:
      e.change_type = "UNDELETE";
      e.body = cdc_body(*c.object, c.after, nullptr, true);
      break;
    case change_kind::remove:
      e.change_type = "DELETE";
      break;
    case change_kind::update: {
      e.change_type = "UPDATE";
      std::vector<std::string> names;
      for (const auto& name : c.changed) {
        const field_def* f = c.object->find_field(name);
        if (c.object->compound_name && name == "Name") continue;
        names.push_back(name);
        e.changed_fields.push_back(f && f->name_part ? "Name." + name : name);
      }
      e.body = cdc_body(*c.object, c.after, &names, c.last_modified_by_changed);
      e.changed_fields.push_back("LastModifiedDate");
      if (c.last_modified_by_changed) e.changed_fields.push_back("LastModifiedById");
      break;
    }
  }
  return e;
}

void rest_api_impl::publish_change_event(transaction& txn, const change_event& e) {
  const int sequence = ++txn.sequence;
  auto render = [&](std::int64_t replay_id, clock::time_point) {
    rapidjson::StringBuffer buffer;
    json_writer w(buffer);
    w.StartObject();
    w.Key("schema");
    w.String(e.object->schema_id);
    w.Key("payload");
    w.StartObject();
    w.Key("ChangeEventHeader");
    w.StartObject();
    w.Key("commitNumber");
    w.Int64(txn.commit_number);
    w.Key("commitUser");
    w.String(txn.user_id);
    w.Key("sequenceNumber");
    w.Int(sequence);
    w.Key("entityName");
    w.String(e.object->name);
    w.Key("changeType");
    w.String(e.change_type);
    w.Key("changedFields");
    w.StartArray();
    for (const auto& f : e.changed_fields) w.String(f);
    w.EndArray();
    w.Key("changeOrigin");
    w.String(txn.origin);
    w.Key("transactionKey");
    w.String(txn.key);
    w.Key("commitTimestamp");
    w.Int64(txn.commit_timestamp);
    w.Key("recordIds");
    w.StartArray();
    for (const auto& id : e.record_ids) w.String(id);
    w.EndArray();
    w.EndObject();
    w.EndObject();
    w.Key("event");
    w.StartObject();
    w.Key("replayId");
    w.Int64(replay_id);
    w.EndObject();
    w.EndObject();
    std::string text = buffer.GetString();
    if (!e.body.empty()) {
      // Splice the record fields in after "payload":{ so that they sit beside the header.
      const std::string marker = "\"payload\":{";
      text.insert(text.find(marker) + marker.size(), e.body + ",");
    }
    return text;
  };
  bus_.publish("/data/ChangeEvents", render);
  bus_.publish(e.object->change_event_channel(), render);
}

op_result rest_api_impl::enable_cdc(const std::string& entity) {
  const object_def* object = schema_.find(entity);
  if (!object || object->kind == object_kind::platform_event || object->name == "PushTopic" ||
      object->name == "StreamingChannel")
    return {{}, api_error{"INVALID_TYPE", "Change Data Capture is not available for entity '" + entity + "'", {}}};
  cdc_.insert(object->name);
  bus_.declare_channel("/data/ChangeEvents", retention::hours_72);
  bus_.declare_channel(object->change_event_channel(), retention::hours_72);
  return {object->name, std::nullopt};
}

const object_def* rest_api_impl::cdc_object(const std::string& entity, api_error& error) const {
  const object_def* object = schema_.find(entity);
  if (!object || !cdc_.count(object->name)) {
    error = {"INVALID_TYPE", "Change Data Capture is not enabled for entity '" + entity + "'", {}};
    return nullptr;
  }
  return object;
}

op_result rest_api_impl::emit_gap(const std::string& entity, const std::vector<std::string>& ids, const std::string& type) {
  api_error error;
  const object_def* object = cdc_object(entity, error);
  if (!object) return {{}, error};
  change_event e;
  e.object = object;
  e.change_type = type;
  for (const auto& id : ids) {
    const std::string id18 = to_id18(id);
    if (id18.empty()) return {{}, api_error{"MALFORMED_ID", "id value of incorrect type: " + id, {}}};
    e.record_ids.push_back(id18);
  }
  if (e.record_ids.empty()) return {{}, api_error{"REQUIRED_FIELD_MISSING", "Required fields are missing: [recordIds]", {}}};
  transaction txn = begin({}, direct_origin());
  publish_change_event(txn, e);
  return {txn.key, std::nullopt};
}

op_result rest_api_impl::emit_overflow(const std::string& entity, transaction* within) {
  api_error error;
  const object_def* object = cdc_object(entity, error);
  if (!object) return {{}, error};
  change_event e;
  e.object = object;
  e.change_type = "GAP_OVERFLOW";
  e.record_ids.push_back(overflow_record_id);
  transaction own = begin({}, direct_origin());
  transaction& txn = within ? *within : own;
  publish_change_event(txn, e);
  return {txn.key, std::nullopt};
}

op_result rest_api_impl::bulk_change(const std::string& entity, std::size_t count, const caller& who) {
  const object_def* object = schema_.find(entity);
  if (!object || object->kind == object_kind::platform_event || object->name == "PushTopic" ||
      object->name == "StreamingChannel")
    return {{}, api_error{"INVALID_TYPE", "sObject type '" + entity + "' is not supported.", {}}};
  transaction txn = begin(who, "com/salesforce/api/bulk/" + version_text(options_.max_api_version) + ";client=sfstream-emulator");
  const field_def* target = nullptr;
  for (const auto& f : object->fields)
    if (f.origin == field_origin::user && !f.required && !f.name_part &&
        (f.type == field_type::string || f.type == field_type::textarea)) {
      target = &f;
      break;
    }
  const std::string user = effective(who).user_id;
  const std::string stamp = txn.stamp;
  const std::string marker = "Bulk change " + std::to_string(txn.commit_number);
  std::vector<record_change> changes;
  std::vector<std::string> updatable;
  for (const auto& [id, r] : store_.of(object->name))
    if (!r.deleted) updatable.push_back(id);
  for (const auto& id : updatable) {
    if (changes.size() >= count || !target) break;
    std::optional<api_error> failure;
    record_change c = store_.update(*store_.find(id), {{target->name, marker}}, user, stamp, failure);
    if (!failure) changes.push_back(std::move(c));
  }
  for (std::size_t n = 0; changes.size() < count; ++n) {
    field_map values;
    for (const auto& f : object->fields) {
      if (f.origin != field_origin::user || !f.required || object->defaults.count(f.name)) continue;
      switch (f.type) {
        case field_type::number: values[f.name] = 0.0; break;
        case field_type::boolean: values[f.name] = false; break;
        case field_type::date: values[f.name] = stamp.substr(0, 10); break;
        case field_type::datetime: values[f.name] = stamp; break;
        default: values[f.name] = "Bulk record " + std::to_string(txn.commit_number) + "-" + std::to_string(n + 1); break;
      }
    }
    if (object->find_field("Name") && object->find_field("Name")->origin == field_origin::user && !values.count("Name"))
      values["Name"] = "Bulk record " + std::to_string(txn.commit_number) + "-" + std::to_string(n + 1);
    std::optional<api_error> failure;
    record_change c = store_.create(*object, values, user, stamp, ids_.next(object->key_prefix), failure);
    if (failure) return {{}, *failure};
    changes.push_back(std::move(c));
  }
  // Salesforce: Bulk API changes do not reach PushTopics (§6.1). Past the overflow threshold
  // the first `threshold` changes still produce events and the rest one GAP_OVERFLOW (§6.4).
  if (changes.size() > options_.overflow_threshold) {
    const std::vector<record_change> first(changes.begin(),
                                           changes.begin() + static_cast<std::ptrdiff_t>(options_.overflow_threshold));
    dispatch(txn, first, false);
    if (cdc_.count(object->name)) emit_overflow(object->name, &txn);
  } else {
    dispatch(txn, changes, false);
  }
  return {txn.key, std::nullopt};
}

}  // namespace sfstream::emulator::data
