#include "src/cdc/json_value.hpp"

namespace sfstream::cdc_detail {

bool to_value(const rapidjson::Value& v, field_value& out, int depth, std::string& problem) {
  if (depth > max_value_depth) {
    problem = "value nested more than " + std::to_string(max_value_depth) + " levels deep";
    return false;
  }
  if (v.IsNull()) {
    out = field_value{};
  } else if (v.IsBool()) {
    out = field_value::make_bool(v.GetBool());
  } else if (v.IsInt64()) {
    out = field_value::make_int(v.GetInt64());
  } else if (v.IsNumber()) {
    out = field_value::make_double(v.GetDouble());
  } else if (v.IsString()) {
    out = field_value::make_string(std::string(v.GetString(), v.GetStringLength()));
  } else if (v.IsArray()) {
    std::vector<field_value> elements;
    elements.reserve(v.Size());
    for (const auto& e : v.GetArray()) {
      field_value x;
      if (!to_value(e, x, depth + 1, problem)) return false;
      elements.push_back(std::move(x));
    }
    out = field_value::make_array(std::move(elements));
  } else {
    std::vector<std::pair<std::string, field_value>> members;
    members.reserve(v.MemberCount());
    for (const auto& m : v.GetObject()) {
      field_value x;
      if (!to_value(m.value, x, depth + 1, problem)) return false;
      members.emplace_back(std::string(m.name.GetString(), m.name.GetStringLength()), std::move(x));
    }
    out = field_value::make_object(std::move(members));
  }
  return true;
}

bool to_fields(const rapidjson::Value& object, field_list& out, std::string& problem) {
  if (!object.IsObject()) {
    problem = "not a JSON object";
    return false;
  }
  for (const auto& m : object.GetObject()) {
    std::string name(m.name.GetString(), m.name.GetStringLength());
    if (name == "attributes") continue;
    field_value v;
    if (!to_value(m.value, v, 1, problem)) {
      problem = "field " + name.substr(0, 64) + ": " + problem;
      return false;
    }
    out.emplace_back(std::move(name), std::move(v));
  }
  return true;
}

}  // namespace sfstream::cdc_detail
