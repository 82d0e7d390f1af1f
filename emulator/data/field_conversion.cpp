// JSON request bodies to typed field values, with REST's exact validation errors.
#include "emulator/data/rest_api_impl.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include <rapidjson/error/en.h>

namespace sfstream::emulator::data {

bool rest_api_impl::convert_fields(const object_def& object, const rapidjson::Value& body, bool creating, field_map& out,
                    api_error& error) {
  if (!body.IsObject()) {
    error = {"JSON_PARSER_ERROR", "The request body must be a JSON object of field values.", {}};
    return false;
  }
  for (const auto& member : body.GetObject()) {
    const std::string name = member.name.GetString();
    if (name == "attributes") continue;
    const field_def* f = object.find_field(name);
    if (!f) {
      error = {"INVALID_FIELD", "No such column '" + name + "' on sobject of type " + object.name, {}};
      return false;
    }
    if (f->origin != field_origin::user) {
      error = {"INVALID_FIELD_FOR_INSERT_UPDATE",
               "Unable to create/update fields: " + f->name +
                   ". Please check the security settings of this field and verify that it is read/write for your "
                   "profile or permission set.",
               {f->name}};
      return false;
    }
    const auto& v = member.value;
    field_value value;
    auto bad = [&](const char* type_name) {
      std::string shown;
      if (v.IsString())
        shown = std::string("VALUE_STRING value ") + v.GetString();
      else if (v.IsBool())
        shown = v.GetBool() ? "VALUE_TRUE" : "VALUE_FALSE";
      else if (v.IsNumber())
        shown = "VALUE_NUMBER";
      else
        shown = v.IsObject() ? "START_OBJECT" : "START_ARRAY";
      error = {"JSON_PARSER_ERROR",
               std::string("Cannot deserialize instance of ") + type_name + " from " + shown +
                   " or request may be missing a required field",
               {}};
      return false;
    };
    const bool empty_string = v.IsString() && v.GetStringLength() == 0;
    if (v.IsNull() || (empty_string && f->type != field_type::string && f->type != field_type::textarea)) {
      value = std::monostate{};
    } else {
      switch (f->type) {
        case field_type::string:
        case field_type::textarea:
        case field_type::id:
          if (v.IsString())
            value = std::string(v.GetString(), v.GetStringLength());
          else if (v.IsNumber() || v.IsBool()) {
            rapidjson::StringBuffer b;
            json_writer w(b);
            v.Accept(w);
            value = std::string(b.GetString());
          } else
            return bad("string");
          break;
        case field_type::number:
          if (v.IsNumber())
            value = v.GetDouble();
          else if (v.IsString()) {
            char* end = nullptr;
            const double d = std::strtod(v.GetString(), &end);
            if (end == v.GetString() || *end != '\0' || !std::isfinite(d)) return bad("double");
            value = d;
          } else
            return bad("double");
          break;
        case field_type::boolean:
          if (v.IsBool())
            value = v.GetBool();
          else if (v.IsString() && (iequals(v.GetString(), "true") || iequals(v.GetString(), "false")))
            value = iequals(v.GetString(), "true");
          else
            return bad("boolean");
          break;
        case field_type::date: {
          std::optional<std::string> d;
          if (v.IsString()) d = parse_date(v.GetString());
          if (!d && v.IsString()) {
            if (auto dt = parse_datetime(v.GetString())) d = dt->substr(0, 10);
          }
          if (!d) return bad("date");
          value = *d;
          break;
        }
        case field_type::datetime: {
          std::optional<std::string> d;
          if (v.IsString()) d = parse_datetime(v.GetString());
          if (!d && v.IsString() && parse_date(v.GetString())) d = std::string(v.GetString()) + "T00:00:00.000Z";
          if (!d) return bad("datetime");
          value = *d;
          break;
        }
        case field_type::reference: {
          const std::string id = v.IsString() ? to_id18(v.GetString()) : std::string();
          if (id.empty()) {
            std::string shown = v.IsString() ? v.GetString() : "";
            error = {"MALFORMED_ID", f->name + ": id value of incorrect type: " + shown, {f->name}};
            return false;
          }
          value = id;
          break;
        }
      }
    }
    if (const auto* s = std::get_if<std::string>(&value); s && f->max_length > 0 && s->size() > f->max_length) {
      error = {"STRING_TOO_LONG",
               f->name + ": data value too large: " + s->substr(0, 40) + (s->size() > 40 ? "..." : "") +
                   " (max length=" + std::to_string(f->max_length) + ")",
               {f->name}};
      return false;
    }
    if (creating && is_null(value)) continue;
    out[f->name] = value;
  }
  return true;
}

bool rest_api_impl::parse_body(const std::string& text, rapidjson::Document& doc, api_error& error) {
  doc.Parse(text.c_str(), text.size());
  if (doc.HasParseError()) {
    error = {"JSON_PARSER_ERROR",
             std::string("Unexpected character in the request body at offset ") + std::to_string(doc.GetErrorOffset()) +
                 ": " + rapidjson::GetParseError_En(doc.GetParseError()),
             {}};
    return false;
  }
  return true;
}

}  // namespace sfstream::emulator::data
