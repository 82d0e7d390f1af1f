// data_options::parse_json: the data side's part of the emulator config file.
#include "emulator/data/rest_api.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include "emulator/data/schema.hpp"

namespace sfstream::emulator::data {

std::optional<data_options> data_options::parse_json(const std::string& json, error_info* why) {
  auto fail = [&](const std::string& text) -> std::optional<data_options> {
    if (why) {
      why->code = make_error_code(errc::invalid_config);
      why->diag.context = "reading the emulator data config";
      why->diag.server_text = text;
    }
    return std::nullopt;
  };
  rapidjson::Document doc;
  doc.Parse(json.c_str(), json.size());
  if (doc.HasParseError())
    return fail(std::string("not JSON: ") + rapidjson::GetParseError_En(doc.GetParseError()) + " at offset " +
                std::to_string(doc.GetErrorOffset()));
  if (!doc.IsObject()) return fail("the config must be a JSON object");
  data_options out;
  auto read_fields = [&](const rapidjson::Value& owner, std::vector<field_definition>& fields,
                         const std::string& where) -> std::string {
    if (!owner.HasMember("fields")) return {};
    const auto& list = owner["fields"];
    if (!list.IsArray()) return where + ".fields must be an array";
    for (const auto& f : list.GetArray()) {
      if (!f.IsObject() || !f.HasMember("name") || !f["name"].IsString())
        return where + ".fields: each field needs a string \"name\"";
      field_definition def;
      def.name = f["name"].GetString();
      if (f.HasMember("type")) {
        if (!f["type"].IsString()) return where + "." + def.name + ".type must be a string";
        def.type = f["type"].GetString();
      }
      if (f.HasMember("referenceTo") && f["referenceTo"].IsString()) def.reference_to = f["referenceTo"].GetString();
      if (f.HasMember("required")) {
        if (!f["required"].IsBool()) return where + "." + def.name + ".required must be a boolean";
        def.required = f["required"].GetBool();
      }
      if (!parse_field_type(def.type)) return where + "." + def.name + " has unknown type '" + def.type + "'";
      fields.push_back(std::move(def));
    }
    return {};
  };
  if (doc.HasMember("orgId")) {
    if (!doc["orgId"].IsString() || to_id18(doc["orgId"].GetString()).empty()) return fail("orgId must be a valid Salesforce id");
    out.org_id = to_id18(doc["orgId"].GetString());
    out.automated_user.org_id = out.org_id;
  }
  if (doc.HasMember("customObjects")) {
    if (!doc["customObjects"].IsArray()) return fail("customObjects must be an array");
    for (const auto& o : doc["customObjects"].GetArray()) {
      if (!o.IsObject() || !o.HasMember("name") || !o["name"].IsString()) return fail("each custom object needs a string \"name\"");
      object_definition def;
      def.name = o["name"].GetString();
      if (o.HasMember("keyPrefix")) {
        if (!o["keyPrefix"].IsString()) return fail(def.name + ".keyPrefix must be a string");
        def.key_prefix = o["keyPrefix"].GetString();
      }
      if (auto problem = read_fields(o, def.fields, def.name); !problem.empty()) return fail(problem);
      out.custom_objects.push_back(std::move(def));
    }
  }
  if (doc.HasMember("platformEvents")) {
    if (!doc["platformEvents"].IsArray()) return fail("platformEvents must be an array");
    for (const auto& o : doc["platformEvents"].GetArray()) {
      if (!o.IsObject() || !o.HasMember("name") || !o["name"].IsString()) return fail("each platform event needs a string \"name\"");
      platform_event_definition def;
      def.name = o["name"].GetString();
      if (auto problem = read_fields(o, def.fields, def.name); !problem.empty()) return fail(problem);
      out.platform_events.push_back(std::move(def));
    }
  }
  if (doc.HasMember("cdcEntities")) {
    if (!doc["cdcEntities"].IsArray()) return fail("cdcEntities must be an array of names");
    for (const auto& e : doc["cdcEntities"].GetArray()) {
      if (!e.IsString()) return fail("cdcEntities must be an array of names");
      out.cdc_entities.emplace_back(e.GetString());
    }
  }
  for (const char* key : {"overflowThreshold", "queryBatchSize"}) {
    if (!doc.HasMember(key)) continue;
    if (!doc[key].IsUint64() || doc[key].GetUint64() == 0) return fail(std::string(key) + " must be a positive integer");
    (std::string(key) == "overflowThreshold" ? out.overflow_threshold : out.query_batch_size) =
        static_cast<std::size_t>(doc[key].GetUint64());
  }
  if (doc.HasMember("dailyApiRequests")) {
    if (!doc["dailyApiRequests"].IsUint64()) return fail("dailyApiRequests must be a whole number (0: unlimited)");
    out.daily_api_requests = doc["dailyApiRequests"].GetUint64();
  }
  std::vector<std::string> problems;
  schema check(out, &problems);
  if (!problems.empty()) return fail(problems.front());
  return out;
}

}  // namespace sfstream::emulator::data
