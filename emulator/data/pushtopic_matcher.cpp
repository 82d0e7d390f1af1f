// Which record changes a PushTopic notifies (operation flags, NotifyForFields, WHERE), and the
// events it publishes; change dispatch to PushTopics and CDC.
#include "emulator/data/rest_api_impl.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include <rapidjson/error/en.h>

namespace sfstream::emulator::data {

void rest_api_impl::dispatch(transaction& txn, const std::vector<record_change>& changes, bool notify_pushtopics) {
  if (notify_pushtopics)
    for (const auto& c : changes) notify_pushtopics_of(c);
  std::vector<change_event> events;
  for (const auto& c : changes) {
    if (!cdc_.count(c.object->name)) continue;
    change_event e = make_change_event(c);
    if (!events.empty()) {
      change_event& last = events.back();
      if (last.object == e.object && last.change_type == e.change_type && e.change_type == "UPDATE" &&
          last.body == e.body && last.changed_fields == e.changed_fields) {
        last.record_ids.push_back(e.record_ids.front());
        continue;
      }
    }
    events.push_back(std::move(e));
  }
  for (const auto& e : events) publish_change_event(txn, e);
}

void rest_api_impl::notify_pushtopics_of(const record_change& c) {
  static const char* const types[] = {"created", "updated", "deleted", "undeleted"};
  static const char* const flags[] = {"NotifyForOperationCreate", "NotifyForOperationUpdate", "NotifyForOperationDelete",
                                      "NotifyForOperationUndelete"};
  const auto kind_index = static_cast<std::size_t>(c.kind);
  const std::string at_now = now();
  for (const auto& [topic_id, topic] : pushtopics_) {
    const record* t = store_.find(topic_id);
    if (!t || t->deleted || topic.query.object != c.object) continue;
    if (value_of(t->fields, "IsActive") != field_value(true)) continue;
    if (value_of(t->fields, flags[kind_index]) != field_value(true)) continue;
    const field_map& state = c.kind == change_kind::remove ? c.before : c.after;
    if (!topic.query.matches(state, at_now)) continue;
    if (c.kind == change_kind::update && !fields_rule_allows(*t, topic.query, c.changed)) continue;
    const std::vector<const field_def*>& select = topic.query.select;
    const bool deleted = c.kind == change_kind::remove;
    bus_.publish(topic.channel, [&](std::int64_t replay_id, clock::time_point at) {
      rapidjson::StringBuffer buffer;
      json_writer w(buffer);
      w.StartObject();
      w.Key("event");
      w.StartObject();
      w.Key("createdDate");
      w.String(format_datetime(at));
      w.Key("replayId");
      w.Int64(replay_id);
      w.Key("type");
      w.String(types[kind_index]);
      w.EndObject();
      w.Key("sobject");
      w.StartObject();
      if (deleted) {
        w.Key("Id");
        w.String(c.id);
      } else {
        for (const field_def* f : select) {
          write_key(w, f->name);
          write_value(w, value_of(state, f->name), date_style::rest);
        }
      }
      w.EndObject();
      w.EndObject();
      return std::string(buffer.GetString());
    });
  }
}

bool rest_api_impl::fields_rule_allows(const record& topic, const soql_query& query, const std::vector<std::string>& changed) {
  const auto* rule = std::get_if<std::string>(&value_of(topic.fields, "NotifyForFields"));
  const std::string mode = rule ? *rule : "Referenced";
  if (mode == "All") return true;
  std::vector<std::string> watched;
  if (mode == "Select" || mode == "Referenced")
    for (const field_def* f : query.select) watched.push_back(f->name);
  if (mode == "Where" || mode == "Referenced") {
    if (mode == "Where" && !query.where) return !changed.empty();
    for (auto& f : query.where_fields()) watched.push_back(f);
  }
  return std::any_of(changed.begin(), changed.end(), [&](const std::string& name) {
    return std::find(watched.begin(), watched.end(), name) != watched.end();
  });
}

}  // namespace sfstream::emulator::data
