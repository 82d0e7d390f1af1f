// The org's data saved and restored across emulator restarts: every record (deleted ones in
// the recycle bin too) with its fields, the id counters (new ids never repeat old ones) and the
// commit number; PushTopics are rebuilt from their records.
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include "emulator/data/rest_api_impl.hpp"

namespace sfstream::emulator::data {

std::string rest_api_impl::save_state() const {
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartObject();
  w.Key("commitNumber");
  w.Int64(commit_number_);
  w.Key("ids");
  w.StartObject();
  for (const auto& [prefix, made] : ids_.counters()) {
    write_key(w, prefix);
    w.Uint64(made);
  }
  w.EndObject();
  w.Key("records");
  w.StartArray();
  for (const auto& object : schema_.objects()) {
    if (object->kind == object_kind::platform_event) continue;
    for (const auto& [id, r] : store_.of(object->name)) {
      w.StartObject();
      w.Key("object");
      w.String(object->name);
      w.Key("id");
      w.String(id);
      w.Key("deleted");
      w.Bool(r.deleted);
      w.Key("fields");
      w.StartObject();
      for (const auto& [name, value] : r.fields) {
        write_key(w, name);
        if (is_null(value)) {
          w.Null();
        } else if (const auto* b = std::get_if<bool>(&value)) {
          w.Bool(*b);
        } else if (const auto* d = std::get_if<double>(&value)) {
          w.Double(*d);
        } else {
          w.String(std::get<std::string>(value));
        }
      }
      w.EndObject();
      w.EndObject();
    }
  }
  w.EndArray();
  w.EndObject();
  return buffer.GetString();
}

std::string rest_api_impl::load_state(const std::string& json) {
  rapidjson::Document doc;
  doc.Parse(json.c_str(), json.size());
  if (doc.HasParseError())
    return std::string("not JSON: ") + rapidjson::GetParseError_En(doc.GetParseError());
  if (!doc.IsObject()) return "the data state must be a JSON object";
  auto commit = doc.FindMember("commitNumber");
  auto ids = doc.FindMember("ids");
  auto records = doc.FindMember("records");
  if (commit == doc.MemberEnd() || !commit->value.IsInt64() || ids == doc.MemberEnd() ||
      !ids->value.IsObject() || records == doc.MemberEnd() || !records->value.IsArray())
    return "the data state needs \"commitNumber\", \"ids\" and \"records\"";
  // Read everything first: a bad record changes nothing.
  std::vector<record> loaded;
  for (const auto& r : records->value.GetArray()) {
    if (!r.IsObject() || !r.HasMember("object") || !r["object"].IsString() || !r.HasMember("id") ||
        !r["id"].IsString() || !r.HasMember("deleted") || !r["deleted"].IsBool() ||
        !r.HasMember("fields") || !r["fields"].IsObject())
      return "each record needs \"object\", \"id\", \"deleted\" and \"fields\"";
    const object_def* object = schema_.find(r["object"].GetString());
    if (object == nullptr || object->kind == object_kind::platform_event)
      return std::string("a record of an object this org does not have: ") + r["object"].GetString();
    record out;
    out.id = r["id"].GetString();
    out.object = object;
    out.deleted = r["deleted"].GetBool();
    for (const auto& f : r["fields"].GetObject()) {
      const auto& v = f.value;
      field_value value;
      if (v.IsBool()) {
        value = v.GetBool();
      } else if (v.IsNumber()) {
        value = v.GetDouble();
      } else if (v.IsString()) {
        value = std::string(v.GetString(), v.GetStringLength());
      } else if (!v.IsNull()) {
        return "record " + out.id + ": field " + f.name.GetString() + " has a value of no field type";
      }
      out.fields[f.name.GetString()] = std::move(value);
    }
    loaded.push_back(std::move(out));
  }
  for (const auto& [prefix, made] : ids->value.GetObject()) {
    if (!made.IsUint64()) return "the id counters must be whole numbers";
  }
  store_ = record_store{};
  pushtopics_.clear();
  for (auto& r : loaded) {
    if (r.object->name == "PushTopic" && !r.deleted) {
      api_error ignored;
      const auto* query = std::get_if<std::string>(&value_of(r.fields, "Query"));
      const auto* name = std::get_if<std::string>(&value_of(r.fields, "Name"));
      if (query && name) {
        if (auto parsed = parse_soql(*query, schema_, ignored)) {
          bus_.declare_channel("/topic/" + *name, retention::hours_24);
          pushtopics_[r.id] = pushtopic_state{"/topic/" + *name, std::move(*parsed)};
        }
      }
    }
    if (r.object->name == "StreamingChannel" && !r.deleted) {
      if (const auto* name = std::get_if<std::string>(&value_of(r.fields, "Name")))
        bus_.declare_channel(*name, retention::hours_24);
    }
    store_.restore(std::move(r));
  }
  for (const auto& [prefix, made] : ids->value.GetObject()) ids_.set_counter(prefix.GetString(), made.GetUint64());
  commit_number_ = commit->value.GetInt64();
  return {};
}

}  // namespace sfstream::emulator::data
