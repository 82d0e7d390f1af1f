// rest_api: the public face of the data side; every call forwards to rest_api_impl.
#include "emulator/data/rest_api.hpp"

#include "emulator/data/rest_api_impl.hpp"

namespace sfstream::emulator::data {

rest_api::rest_api(clock& clk, event_bus& bus, data_options options)
    : impl_(std::make_unique<rest_api_impl>(clk, bus, std::move(options))) {}

rest_api::~rest_api() = default;

transport::http_response rest_api::handle(const transport::http_request& req, const caller& who) {
  try {
    return impl_->handle(req, who);
  } catch (const std::exception& e) {
    return error_response(500, {"UNKNOWN_EXCEPTION", std::string("An unexpected error occurred: ") + e.what(), {}});
  }
}

op_result rest_api::create_record(const std::string& object, const std::string& fields_json, const caller& who) {
  transaction txn = impl_->begin(who, impl_->direct_origin());
  return impl_->create(object, fields_json, who, txn, 59);
}

op_result rest_api::update_record(const std::string& object, const std::string& id, const std::string& fields_json,
                                  const caller& who) {
  transaction txn = impl_->begin(who, impl_->direct_origin());
  return impl_->update(object, id, fields_json, who, txn);
}

op_result rest_api::delete_record(const std::string& object, const std::string& id, const caller& who) {
  transaction txn = impl_->begin(who, impl_->direct_origin());
  return impl_->remove(object, id, who, txn);
}

op_result rest_api::undelete_record(const std::string& object, const std::string& id, const caller& who) {
  transaction txn = impl_->begin(who, impl_->direct_origin());
  return impl_->undelete(object, id, who, txn);
}

std::optional<std::string> rest_api::get_record(const std::string& object, const std::string& id) const {
  const record* r = impl_->locate(object, id);
  if (!r || r->deleted) return std::nullopt;
  return impl_->render_record(impl_->options_.max_api_version, *r, nullptr);
}

op_result rest_api::create_pushtopic(const pushtopic_spec& spec, const caller& who) {
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartObject();
  w.Key("Name");
  w.String(spec.name);
  w.Key("Query");
  w.String(spec.query);
  w.Key("ApiVersion");
  w.Double(spec.api_version);
  w.Key("NotifyForOperationCreate");
  w.Bool(spec.notify_for_operation_create);
  w.Key("NotifyForOperationUpdate");
  w.Bool(spec.notify_for_operation_update);
  w.Key("NotifyForOperationDelete");
  w.Bool(spec.notify_for_operation_delete);
  w.Key("NotifyForOperationUndelete");
  w.Bool(spec.notify_for_operation_undelete);
  w.Key("NotifyForFields");
  w.String(spec.notify_for_fields);
  w.Key("IsActive");
  w.Bool(spec.is_active);
  w.EndObject();
  return create_record("PushTopic", buffer.GetString(), who);
}

op_result rest_api::create_streaming_channel(const std::string& name, const caller& who) {
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartObject();
  w.Key("Name");
  w.String(name);
  w.EndObject();
  return create_record("StreamingChannel", buffer.GetString(), who);
}

op_result rest_api::push_generic(const std::string& channel_name_or_id, const std::string& payload) {
  const record* channel = impl_->find_channel(channel_name_or_id);
  if (!channel) return {{}, not_found()};
  return impl_->push(*channel, payload);
}

void rest_api::define_platform_event(const platform_event_definition& definition) {
  object_def def;
  if (!impl_->schema_.make_platform_event(definition, def).empty()) return;
  if (!impl_->schema_.define(std::move(def)).empty()) return;
  impl_->bus_.declare_channel("/event/" + definition.name, retention::hours_72);
}

op_result rest_api::publish_platform_event(const std::string& name, const std::string& fields_json, const caller& who,
                                           double api_version) {
  const object_def* event = impl_->schema_.find(name);
  if (!event || event->kind != object_kind::platform_event) return {{}, not_found()};
  transaction txn = impl_->begin(who, impl_->direct_origin());
  return impl_->create(event->name, fields_json, who, txn, static_cast<int>(api_version));
}

op_result rest_api::enable_cdc(const std::string& entity) { return impl_->enable_cdc(entity); }

op_result rest_api::emit_gap_events(const std::string& entity, const std::vector<std::string>& ids, gap_type type) {
  static const char* const names[] = {"GAP_CREATE", "GAP_UPDATE", "GAP_DELETE", "GAP_UNDELETE"};
  return impl_->emit_gap(entity, ids, names[static_cast<int>(type)]);
}

op_result rest_api::emit_overflow(const std::string& entity) { return impl_->emit_overflow(entity, nullptr); }

op_result rest_api::bulk_change(const std::string& entity, std::size_t count, const caller& who) {
  return impl_->bulk_change(entity, count, who);
}

std::size_t rest_api::record_count(const std::string& object) const {
  const object_def* o = impl_->schema_.find(object);
  return o ? impl_->store_.live_count(o->name) : 0;
}

void rest_api::set_overflow_threshold(std::size_t threshold) { impl_->options_.overflow_threshold = threshold; }

std::string rest_api::save_state() const { return impl_->save_state(); }

std::string rest_api::load_state(const std::string& json) { return impl_->load_state(json); }

std::uint64_t rest_api::change_count() const noexcept {
  return static_cast<std::uint64_t>(impl_->commit_number_);
}

}  // namespace sfstream::emulator::data
