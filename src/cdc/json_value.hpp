// RapidJSON → sfstream::field_value conversion, shared by the CDC parser and the REST client.
// Internal: RapidJSON stays out of public headers.
#pragma once

#include <string>

#include <rapidjson/document.h>

#include "sfstream/change_event.hpp"

namespace sfstream::cdc_detail {

/// Deepest nesting accepted in a field value; deeper input is refused, not recursed into.
inline constexpr int max_value_depth = 64;

/// Converts `v` (nesting level `depth`); false with `problem` set when it is nested too deeply.
bool to_value(const rapidjson::Value& v, field_value& out, int depth, std::string& problem);

/// Converts every member of the object `object` except "attributes" (REST record metadata).
bool to_fields(const rapidjson::Value& object, field_list& out, std::string& problem);

}  // namespace sfstream::cdc_detail
