#include "src/poll/poll_query.hpp"

#include <algorithm>
#include <cctype>
#include <string_view>

namespace sfstream::poll_detail {
namespace {

bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

const field_value* field_named(const field_list& fields, std::string_view name) {
  for (const auto& [key, value] : fields)
    if (same_name(key, name)) return &value;
  return nullptr;
}

std::string quoted(std::string_view text) {
  field_value v = field_value::make_string(std::string(text));
  return v.to_json();
}

error_info malformed(std::string text) {
  error_info e;
  e.code = make_error_code(errc::protocol_error);
  e.diag.server_text = std::move(text);
  e.diag.context = "reading a polled record";
  return e;
}

}  // namespace

std::string build_poll_soql(const std::string& object, const std::vector<std::string>& fields,
                            const std::string& where, std::optional<std::int64_t> lower) {
  std::vector<std::string> select(std::begin(system_fields), std::end(system_fields));
  for (const auto& f : fields)
    if (std::none_of(select.begin(), select.end(), [&](const auto& s) { return same_name(s, f); }))
      select.push_back(f);
  std::string soql = "SELECT ";
  for (std::size_t i = 0; i < select.size(); ++i) soql += (i ? ", " : "") + select[i];
  soql += " FROM " + object;
  std::string filter;
  if (lower) filter = "SystemModstamp >= " + soql_datetime(*lower);
  if (!where.empty()) filter += (filter.empty() ? "(" : " AND (") + where + ")";
  if (!filter.empty()) soql += " WHERE " + filter;
  return soql + " ORDER BY SystemModstamp, Id";
}

std::string build_newest_soql(const std::string& object, const std::string& where) {
  std::string soql = "SELECT Id, SystemModstamp FROM " + object;
  if (!where.empty()) soql += " WHERE (" + where + ")";
  return soql + " ORDER BY SystemModstamp DESC, Id DESC LIMIT 1";
}

std::optional<polled_record> read_polled_record(const sobject_record& record,
                                                const std::vector<std::string>& fields,
                                                error_info& why) {
  polled_record out;
  const field_value* id = field_named(record.fields, "Id");
  if (!id || !is_record_id(id->as_string())) {
    why = malformed("a record has no valid Id");
    return std::nullopt;
  }
  out.version.id = id->as_string();
  const field_value* modstamp = field_named(record.fields, "SystemModstamp");
  const auto modstamp_ms = modstamp ? parse_datetime_ms(modstamp->as_string()) : std::nullopt;
  if (!modstamp_ms) {
    why = malformed("record " + out.version.id + " has no valid SystemModstamp");
    return std::nullopt;
  }
  out.version.ms = *modstamp_ms;
  const field_value* created = field_named(record.fields, "CreatedDate");
  const auto created_ms = created ? parse_datetime_ms(created->as_string()) : std::nullopt;
  if (!created_ms) {
    why = malformed("record " + out.version.id + " has no valid CreatedDate");
    return std::nullopt;
  }
  const field_value* deleted = field_named(record.fields, "IsDeleted");
  if (deleted && deleted->as_bool())
    out.type = "deleted";
  else
    out.type = *created_ms == *modstamp_ms ? "created" : "updated";

  field_list sobject;
  sobject.emplace_back("Id", *id);
  if (out.type != "deleted") {
    for (const auto& name : fields) {
      if (same_name(name, "Id")) continue;
      const auto known = std::find_if(record.fields.begin(), record.fields.end(),
                                      [&](const auto& kv) { return same_name(kv.first, name); });
      // A field the reply left out (Salesforce omits none; a proxy or an older API might).
      if (known == record.fields.end()) continue;
      if (std::any_of(sobject.begin(), sobject.end(),
                      [&](const auto& kv) { return same_name(kv.first, name); }))
        continue;
      sobject.push_back(*known);
    }
  }
  out.sobject_json = to_json(sobject);
  why = {};
  return out;
}

std::string build_poll_event(const std::string& channel, const polled_record& record) {
  std::string out = "{\"channel\":" + quoted(channel) + ",\"data\":{\"event\":{\"type\":\"" +
                    record.type + "\",\"createdDate\":\"" + format_ms(record.version.ms) +
                    "\"},\"sobject\":" + record.sobject_json + "}}";
  return out;
}

}  // namespace sfstream::poll_detail
