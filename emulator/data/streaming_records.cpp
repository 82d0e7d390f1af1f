// PushTopic and StreamingChannel records: their validation rules and the channels they own.
#include "emulator/data/rest_api_impl.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include <rapidjson/error/en.h>

namespace sfstream::emulator::data {

/// Checks the rules of PushTopic and StreamingChannel records before a write.
std::optional<api_error> rest_api_impl::validate_special(const object_def& object, const field_map& values, const record* existing) {
  field_map merged = existing ? existing->fields : object.defaults;
  for (const auto& [k, v] : values) merged[k] = v;
  if (object.name == "PushTopic") {
    if (values.count("Name") && !is_null(values.at("Name")))
      if (auto dup = duplicate_name(object, std::get<std::string>(values.at("Name")), existing))
        return api_error{"DUPLICATE_VALUE", "duplicate value found: Name duplicates value on record with id: " + *dup, {"Name"}};
    if (const auto* q = std::get_if<std::string>(&value_of(merged, "Query"))) {
      api_error error;
      auto parsed = parse_soql(*q, schema_, error);
      if (!parsed) return error;
      if (std::find_if(parsed->select.begin(), parsed->select.end(),
                       [](const field_def* f) { return f->name == "Id"; }) == parsed->select.end())
        return api_error{"INVALID_FIELD", "The PushTopic query must select the Id field.", {"Query"}};
      if (parsed->count_only || !parsed->order.empty() || parsed->limit || parsed->offset)
        return api_error{"INVALID_FIELD", "PushTopic queries support neither COUNT(), ORDER BY, LIMIT nor OFFSET.", {"Query"}};
    }
    if (const auto* n = std::get_if<std::string>(&value_of(merged, "NotifyForFields"))) {
      if (*n != "All" && *n != "Referenced" && *n != "Select" && *n != "Where")
        return api_error{"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                         "Notify For Fields: bad value for restricted picklist field: " + *n, {"NotifyForFields"}};
    }
    if (const auto* v = std::get_if<double>(&value_of(merged, "ApiVersion")); v && *v <= 20.0)
      return api_error{"FIELD_INTEGRITY_EXCEPTION", "PushTopic ApiVersion must be greater than 20.0", {"ApiVersion"}};
  }
  if (object.name == "StreamingChannel" && values.count("Name")) {
    const auto* name = std::get_if<std::string>(&values.at("Name"));
    if (!name || name->rfind("/u/", 0) != 0 || name->size() <= 3)
      return api_error{"FIELD_INTEGRITY_EXCEPTION", "Streaming Channel Name must start with /u/ followed by a name", {"Name"}};
    if (auto dup = duplicate_name(object, *name, existing))
      return api_error{"DUPLICATE_DEVELOPER_NAME", "duplicate value found: Name duplicates value on record with id: " + *dup,
                       {"Name"}};
  }
  return std::nullopt;
}

std::optional<std::string> rest_api_impl::duplicate_name(const object_def& object, const std::string& name, const record* self) const {
  for (const auto& [id, r] : store_.of(object.name)) {
    if (r.deleted || &r == self) continue;
    if (const auto* n = std::get_if<std::string>(&value_of(r.fields, "Name")); n && iequals(*n, name)) return id;
  }
  return std::nullopt;
}

/// Keeps the channel bookkeeping of PushTopic and StreamingChannel records in step.
void rest_api_impl::after_special(const record_change& change) {
  const std::string& object = change.object->name;
  if (object == "PushTopic") {
    if (change.kind == change_kind::remove) {
      auto it = pushtopics_.find(change.id);
      if (it != pushtopics_.end()) bus_.remove_channel(it->second.channel);
      pushtopics_.erase(change.id);
      return;
    }
    api_error ignored;
    auto query = parse_soql(std::get<std::string>(value_of(change.after, "Query")), schema_, ignored);
    auto it = pushtopics_.find(change.id);
    std::string channel = it != pushtopics_.end() && change.kind == change_kind::update
                              ? it->second.channel
                              : "/topic/" + std::get<std::string>(value_of(change.after, "Name"));
    bus_.declare_channel(channel, retention::hours_24);
    if (query) pushtopics_[change.id] = pushtopic_state{channel, std::move(*query)};
  } else if (object == "StreamingChannel") {
    if (change.kind == change_kind::remove) {
      bus_.remove_channel(std::get<std::string>(value_of(change.before, "Name")));
      return;
    }
    if (change.kind == change_kind::update) {
      const auto* old_name = std::get_if<std::string>(&value_of(change.before, "Name"));
      if (old_name) bus_.remove_channel(*old_name);
    }
    bus_.declare_channel(std::get<std::string>(value_of(change.after, "Name")), retention::hours_24);
  }
}

}  // namespace sfstream::emulator::data
