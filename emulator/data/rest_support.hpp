// Shared pieces of the REST side: Salesforce's JSON error array and response heads, field value
// rendering, and the URL helpers (path segments, query strings, API versions) every route uses.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "emulator/data/rest_api.hpp"
#include "emulator/data/schema.hpp"
#include "emulator/data/values.hpp"
#include "src/transport/http_types.hpp"

namespace sfstream::emulator::data {

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

/// The record id Salesforce puts in a GAP_OVERFLOW event.
inline constexpr const char* overflow_record_id = "000000000000000AAA";
/// Bytes of a generic streaming payload at most (Salesforce: 3,000 characters).
inline constexpr std::size_t generic_payload_limit = 3000;

/// ASCII case-insensitive equality.
bool iequals(std::string_view a, std::string_view b);

/// How values are rendered: REST and PushTopic use "+0000" datetimes; CDC and platform events "Z".
enum class date_style { rest, streaming };

void write_key(json_writer& w, const std::string& key);
void write_value(json_writer& w, const field_value& v, date_style style);
/// The field's value, or null when the map does not hold it.
const field_value& value_of(const field_map& fields, const std::string& name);

/// Salesforce's REST error body: [{"message","errorCode","fields"?}, …].
std::string error_json(const std::vector<api_error>& errors);
/// A REST response with Salesforce's head (Sforce-Limit-Info; no body for 204).
transport::http_response json_response(unsigned status, std::string body);
transport::http_response error_response(unsigned status, const api_error& e);
api_error not_found();
/// 404 for NOT_FOUND and ENTITY_IS_DELETED, else 400.
unsigned status_for(const api_error& e);

/// %XX and '+' decoding of a URL component.
std::string percent_decode(std::string_view s);
std::map<std::string, std::string> parse_query_string(std::string_view q);
/// Non-empty, decoded path segments.
std::vector<std::string> split_path(std::string_view path);
/// "vNN.0" → NN when within the limits of `options`.
std::optional<int> parse_version(const std::string& segment, const data_options& options);
/// The release name of an API version, e.g. 59 → "Winter '24".
std::string release_label(int version);
/// 59 → "59.0".
std::string version_text(int v);

}  // namespace sfstream::emulator::data
