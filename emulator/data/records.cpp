// Record CRUD of the org: transactions, create/update/delete/undelete, REST rendering.
#include "emulator/data/rest_api_impl.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include <rapidjson/error/en.h>

namespace sfstream::emulator::data {

rest_api_impl::rest_api_impl(clock& clk, event_bus& bus, data_options options)
  : clock_(clk), bus_(bus), options_(std::move(options)), schema_(options_) {
  std::random_device device;
  rng_.seed(options_.seed != 0 ? options_.seed : (static_cast<std::uint64_t>(device()) << 32) ^ device());
  for (const auto& o : schema_.objects())
    if (o->kind == object_kind::platform_event) bus_.declare_channel("/event/" + o->name, retention::hours_72);
  for (const auto& entity : options_.cdc_entities) enable_cdc(entity);
}

std::string rest_api_impl::now() const { return format_datetime(clock_.now()); }

const caller& rest_api_impl::effective(const caller& who) const { return who.user_id.empty() ? options_.automated_user : who; }

std::string rest_api_impl::uuid() {
  std::uniform_int_distribution<unsigned> byte(0, 255);
  unsigned char b[16];
  for (auto& x : b) x = static_cast<unsigned char>(byte(rng_));
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  char out[37];
  std::snprintf(out, sizeof out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
                b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return out;
}

transaction rest_api_impl::begin(const caller& who, const std::string& origin) {
  transaction t;
  t.key = uuid();
  t.commit_number = ++commit_number_;
  t.commit_timestamp =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_.now().time_since_epoch()).count();
  t.user_id = effective(who).user_id;
  t.origin = origin;
  t.stamp = format_datetime(std::chrono::system_clock::time_point(std::chrono::milliseconds(t.commit_timestamp)));
  return t;
}

std::string rest_api_impl::origin_for(int version, const std::string& client) {
  std::string o = "com/salesforce/api/rest/" + version_text(version);
  if (!client.empty()) o += ";client=" + client;
  return o;
}

std::string rest_api_impl::direct_origin() const { return origin_for(options_.max_api_version, "sfstream-emulator"); }

std::string rest_api_impl::record_url(int version, const object_def& o, const std::string& id) const {
  return "/services/data/v" + version_text(version) + "/sobjects/" + o.name + "/" + id;
}

void rest_api_impl::write_attributes(json_writer& w, int version, const object_def& o, const std::string& id) const {
  w.Key("attributes");
  w.StartObject();
  w.Key("type");
  w.String(o.name);
  w.Key("url");
  w.String(record_url(version, o, id));
  w.EndObject();
}

std::string rest_api_impl::render_record(int version, const record& r, const std::vector<const field_def*>* only) const {
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartObject();
  write_attributes(w, version, *r.object, r.id);
  auto emit = [&](const field_def& f) {
    write_key(w, f.name);
    write_value(w, value_of(r.fields, f.name), date_style::rest);
  };
  if (only)
    for (const field_def* f : *only) emit(*f);
  else
    for (const auto& f : r.object->fields) emit(f);
  w.EndObject();
  return buffer.GetString();
}

op_result rest_api_impl::create(const std::string& object_name, const std::string& body, const caller& who, transaction& txn,
                 int version) {
  const object_def* object = schema_.find(object_name);
  if (!object) return {{}, not_found()};
  rapidjson::Document doc;
  api_error error;
  if (!parse_body(body, doc, error)) return {{}, error};
  if (object->kind == object_kind::platform_event) return publish_event(*object, doc, who, version);
  field_map values;
  if (!convert_fields(*object, doc, true, values, error)) return {{}, error};
  if (auto problem = validate_special(*object, values, nullptr); problem) return {{}, *problem};
  std::optional<api_error> failure;
  const std::string id = ids_.next(object->key_prefix);
  record_change change = store_.create(*object, values, effective(who).user_id, txn.stamp, id, failure);
  if (failure) return {{}, *failure};
  after_special(change);
  dispatch(txn, {change}, true);
  return {id, std::nullopt};
}

op_result rest_api_impl::update(const std::string& object_name, const std::string& id, const std::string& body, const caller& who,
                 transaction& txn) {
  record* target = locate(object_name, id);
  if (!target) return {{}, missing(object_name, id)};
  if (target->deleted) return {{}, api_error{"ENTITY_IS_DELETED", "entity is deleted", {}}};
  rapidjson::Document doc;
  api_error error;
  if (!parse_body(body, doc, error)) return {{}, error};
  field_map values;
  if (!convert_fields(*target->object, doc, false, values, error)) return {{}, error};
  if (auto problem = validate_special(*target->object, values, target); problem) return {{}, *problem};
  std::optional<api_error> failure;
  record_change change = store_.update(*target, values, effective(who).user_id, txn.stamp, failure);
  if (failure) return {{}, *failure};
  after_special(change);
  dispatch(txn, {change}, true);
  return {target->id, std::nullopt};
}

op_result rest_api_impl::remove(const std::string& object_name, const std::string& id, const caller& who, transaction& txn) {
  record* target = locate(object_name, id);
  if (!target) return {{}, missing(object_name, id)};
  if (target->deleted) return {{}, api_error{"ENTITY_IS_DELETED", "entity is deleted", {}}};
  record_change change = store_.remove(*target, effective(who).user_id, txn.stamp);
  after_special(change);
  dispatch(txn, {change}, true);
  return {target->id, std::nullopt};
}

op_result rest_api_impl::undelete(const std::string& object_name, const std::string& id, const caller& who, transaction& txn) {
  record* target = locate(object_name, id);
  if (!target) return {{}, missing(object_name, id)};
  if (!target->deleted) return {{}, api_error{"UNDELETE_FAILED", "Entity is not in the recycle bin", {}}};
  if (auto problem = validate_special(*target->object, target->fields, target); problem) return {{}, *problem};
  record_change change = store_.undelete(*target, effective(who).user_id, txn.stamp);
  after_special(change);
  dispatch(txn, {change}, true);
  return {target->id, std::nullopt};
}

record* rest_api_impl::locate(const std::string& object_name, const std::string& id) {
  const object_def* object = schema_.find(object_name);
  if (!object || object->kind == object_kind::platform_event) return nullptr;
  record* r = store_.find(id);
  if (!r || r->object != object) return nullptr;
  return r;
}

api_error rest_api_impl::missing(const std::string& object_name, const std::string& id) const {
  const object_def* object = schema_.find(object_name);
  if (object && !is_valid_id(id))
    return {"NOT_FOUND", "Provided external ID field does not exist or is not accessible: " + id, {}};
  return not_found();
}

}  // namespace sfstream::emulator::data
