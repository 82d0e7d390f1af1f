// Parsing of CDC messages into sfstream::change_event.
#include "sfstream/change_event.hpp"

#include <array>
#include <cmath>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "sfstream/event.hpp"
#include "src/cdc/json_value.hpp"

namespace sfstream {

namespace {

constexpr std::array<std::string_view, 9> change_type_names = {
    "CREATE",     "UPDATE",     "DELETE",       "UNDELETE",    "GAP_CREATE",
    "GAP_UPDATE", "GAP_DELETE", "GAP_UNDELETE", "GAP_OVERFLOW"};

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

void write(json_writer& w, const field_value& v) {
  switch (v.type()) {
    case field_value::kind::null:
      w.Null();
      break;
    case field_value::kind::boolean:
      w.Bool(v.as_bool());
      break;
    case field_value::kind::integer:
      w.Int64(v.as_int());
      break;
    case field_value::kind::number:
      if (std::isfinite(v.as_double())) {
        w.Double(v.as_double());
      } else {
        w.Null();
      }
      break;
    case field_value::kind::string:
      w.String(v.as_string().data(), static_cast<rapidjson::SizeType>(v.as_string().size()));
      break;
    case field_value::kind::object:
      w.StartObject();
      for (std::size_t i = 0; i < v.keys().size(); ++i) {
        w.Key(v.keys()[i].data(), static_cast<rapidjson::SizeType>(v.keys()[i].size()));
        write(w, v.elements()[i]);
      }
      w.EndObject();
      break;
    case field_value::kind::array:
      w.StartArray();
      for (const auto& e : v.elements()) write(w, e);
      w.EndArray();
      break;
  }
}

error_info protocol(std::string text) {
  error_info e;
  e.code = make_error_code(errc::protocol_error);
  e.diag.server_text = std::move(text);
  e.diag.context = "reading a Change Data Capture event";
  return e;
}

bool fail(error_info* why, std::string text) {
  if (why) *why = protocol(std::move(text));
  return false;
}

const rapidjson::Value* member(const rapidjson::Value& object, const char* name) {
  if (!object.IsObject()) return nullptr;
  auto it = object.FindMember(name);
  return it == object.MemberEnd() ? nullptr : &it->value;
}

bool read_string(const rapidjson::Value& header, const char* name, std::string& out,
                 error_info* why) {
  const auto* v = member(header, name);
  if (!v) return fail(why, std::string("ChangeEventHeader has no ") + name);
  if (!v->IsString())
    return fail(why, std::string("ChangeEventHeader.") + name + " is not a string");
  out.assign(v->GetString(), v->GetStringLength());
  return true;
}

bool read_int(const rapidjson::Value& header, const char* name, std::int64_t& out,
              error_info* why) {
  const auto* v = member(header, name);
  if (!v) return fail(why, std::string("ChangeEventHeader has no ") + name);
  if (!v->IsInt64())
    return fail(why, std::string("ChangeEventHeader.") + name + " is not an integer");
  out = v->GetInt64();
  return true;
}

bool read_strings(const rapidjson::Value& v, const char* name, std::vector<std::string>& out,
                  error_info* why) {
  if (!v.IsArray()) return fail(why, std::string("ChangeEventHeader.") + name + " is not an array");
  for (const auto& e : v.GetArray()) {
    if (!e.IsString())
      return fail(why, std::string("ChangeEventHeader.") + name + " holds a non-string");
    out.emplace_back(e.GetString(), e.GetStringLength());
  }
  return true;
}

}  // namespace

// --- field_value -----------------------------------------------------------------------------

field_value field_value::make_bool(bool v) {
  field_value f;
  f.kind_ = kind::boolean;
  f.bool_ = v;
  return f;
}

field_value field_value::make_int(std::int64_t v) {
  field_value f;
  f.kind_ = kind::integer;
  f.int_ = v;
  return f;
}

field_value field_value::make_double(double v) {
  field_value f;
  f.kind_ = kind::number;
  f.double_ = v;
  return f;
}

field_value field_value::make_string(std::string v) {
  field_value f;
  f.kind_ = kind::string;
  f.string_ = std::move(v);
  return f;
}

field_value field_value::make_object(std::vector<std::pair<std::string, field_value>> members) {
  field_value f;
  f.kind_ = kind::object;
  f.keys_.reserve(members.size());
  f.elements_.reserve(members.size());
  for (auto& [k, v] : members) {
    f.keys_.push_back(std::move(k));
    f.elements_.push_back(std::move(v));
  }
  return f;
}

field_value field_value::make_array(std::vector<field_value> elements) {
  field_value f;
  f.kind_ = kind::array;
  f.elements_ = std::move(elements);
  return f;
}

bool field_value::is_diff() const noexcept {
  const auto* d = find("diff");
  return d && d->is_string();
}

bool field_value::as_bool(bool fallback) const noexcept {
  return kind_ == kind::boolean ? bool_ : fallback;
}

std::int64_t field_value::as_int(std::int64_t fallback) const noexcept {
  return kind_ == kind::integer ? int_ : fallback;
}

double field_value::as_double(double fallback) const noexcept {
  if (kind_ == kind::number) return double_;
  if (kind_ == kind::integer) return static_cast<double>(int_);
  return fallback;
}

const std::string& field_value::as_string() const noexcept {
  static const std::string empty;
  return kind_ == kind::string ? string_ : empty;
}

const field_value* field_value::find(std::string_view name) const noexcept {
  if (kind_ != kind::object) return nullptr;
  for (std::size_t i = 0; i < keys_.size(); ++i)
    if (keys_[i] == name) return &elements_[i];
  return nullptr;
}

std::string field_value::to_json() const {
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  write(w, *this);
  return {buffer.GetString(), buffer.GetSize()};
}

bool operator==(const field_value& a, const field_value& b) noexcept {
  if (a.is_number() && b.is_number()) {
    if (a.kind_ == field_value::kind::integer && b.kind_ == field_value::kind::integer)
      return a.int_ == b.int_;
    return a.as_double() == b.as_double();
  }
  if (a.kind_ != b.kind_) return false;
  switch (a.kind_) {
    case field_value::kind::null:
      return true;
    case field_value::kind::boolean:
      return a.bool_ == b.bool_;
    case field_value::kind::string:
      return a.string_ == b.string_;
    default:
      return a.keys_ == b.keys_ && a.elements_ == b.elements_;
  }
}

const field_value* find_field(const field_list& fields, std::string_view name) noexcept {
  for (const auto& [k, v] : fields)
    if (k == name) return &v;
  return nullptr;
}

std::optional<field_list> parse_field_list(std::string_view json_object, error_info* why) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(json_object.data(), json_object.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    fail(why, "a record is not a JSON object");
    return std::nullopt;
  }
  field_list out;
  std::string problem;
  if (!cdc_detail::to_fields(doc, out, problem)) {
    fail(why, problem);
    return std::nullopt;
  }
  if (why) *why = {};
  return out;
}

std::string to_json(const field_list& fields) {
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartObject();
  for (const auto& [k, v] : fields) {
    w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
    write(w, v);
  }
  w.EndObject();
  return {buffer.GetString(), buffer.GetSize()};
}

// --- change types ----------------------------------------------------------------------------

std::string_view to_string(change_type type) noexcept {
  const auto i = static_cast<std::size_t>(type);
  return i < change_type_names.size() ? change_type_names[i] : std::string_view("UNKNOWN");
}

std::optional<change_type> parse_change_type(std::string_view text) noexcept {
  for (std::size_t i = 0; i < change_type_names.size(); ++i)
    if (change_type_names[i] == text) return static_cast<change_type>(i);
  return std::nullopt;
}

bool is_gap(change_type type) noexcept {
  return type == change_type::gap_create || type == change_type::gap_update ||
         type == change_type::gap_remove || type == change_type::gap_undelete;
}

bool is_wildcard_id(std::string_view id) noexcept {
  return !id.empty() && id.back() == '*';
}

bool change_event::has_wildcard_ids() const noexcept {
  for (const auto& id : header.record_ids)
    if (is_wildcard_id(id)) return true;
  return false;
}

// --- parsing ---------------------------------------------------------------------------------

std::optional<change_event> parse_change_event(std::string_view message_json, error_info* why) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(message_json.data(), message_json.size());
  if (doc.HasParseError()) {
    fail(why, "the message is not valid JSON");
    return std::nullopt;
  }
  if (!doc.IsObject()) {
    fail(why, "the message is not a JSON object");
    return std::nullopt;
  }
  change_event out;
  if (const auto* c = member(doc, "channel"); c && c->IsString())
    out.channel.assign(c->GetString(), c->GetStringLength());
  const auto* data = member(doc, "data");
  if (!data || !data->IsObject()) {
    fail(why, "the message has no data object");
    return std::nullopt;
  }
  if (const auto* s = member(*data, "schema"); s && s->IsString())
    out.schema.assign(s->GetString(), s->GetStringLength());
  if (const auto* ev = member(*data, "event")) {
    if (const auto* r = member(*ev, "replayId"); r && r->IsInt64()) out.replay_id = r->GetInt64();
  }
  const auto* payload = member(*data, "payload");
  if (!payload || !payload->IsObject()) {
    fail(why, "data.payload is missing or not an object");
    return std::nullopt;
  }
  const auto* header = member(*payload, "ChangeEventHeader");
  if (!header || !header->IsObject()) {
    fail(why, "data.payload has no ChangeEventHeader object");
    return std::nullopt;
  }
  change_header& h = out.header;
  std::string type_text;
  if (!read_string(*header, "entityName", h.entity_name, why) ||
      !read_string(*header, "changeType", type_text, why))
    return std::nullopt;
  const auto type = parse_change_type(type_text);
  if (!type) {
    fail(why, "unknown changeType \"" + type_text.substr(0, 64) + "\"");
    return std::nullopt;
  }
  h.type = *type;
  const auto* ids = member(*header, "recordIds");
  if (!ids) {
    fail(why, "ChangeEventHeader has no recordIds");
    return std::nullopt;
  }
  if (!read_strings(*ids, "recordIds", h.record_ids, why)) return std::nullopt;
  if (h.record_ids.empty()) {
    fail(why, "ChangeEventHeader.recordIds is empty");
    return std::nullopt;
  }
  if (!read_string(*header, "changeOrigin", h.change_origin, why) ||
      !read_string(*header, "transactionKey", h.transaction_key, why) ||
      !read_int(*header, "sequenceNumber", h.sequence_number, why) ||
      !read_int(*header, "commitTimestamp", h.commit_timestamp, why) ||
      !read_int(*header, "commitNumber", h.commit_number, why) ||
      !read_string(*header, "commitUser", h.commit_user, why))
    return std::nullopt;
  if (const auto* changed = member(*header, "changedFields")) {
    if (!read_strings(*changed, "changedFields", h.changed_fields, why)) return std::nullopt;
  }
  std::string problem;
  for (const auto& m : payload->GetObject()) {
    std::string name(m.name.GetString(), m.name.GetStringLength());
    if (name == "ChangeEventHeader") continue;
    field_value v;
    if (!cdc_detail::to_value(m.value, v, 0, problem)) {
      fail(why, "field " + name.substr(0, 64) + ": " + problem);
      return std::nullopt;
    }
    out.fields.emplace_back(std::move(name), std::move(v));
  }
  if (why) *why = {};
  return out;
}

std::optional<change_event> parse_change_event(const event& e, error_info* why) {
  auto out = parse_change_event(e.json(), why);
  if (out) {
    if (out->channel.empty()) out->channel = e.channel();
    if (!out->replay_id) out->replay_id = e.replay_id();
  }
  return out;
}

}  // namespace sfstream
