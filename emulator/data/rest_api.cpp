#include "emulator/data/rest_api.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <deque>
#include <map>
#include <random>
#include <set>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "emulator/clock.hpp"
#include "emulator/data/record_store.hpp"
#include "emulator/data/schema.hpp"
#include "emulator/data/soql.hpp"
#include "emulator/data/values.hpp"
#include "emulator/event_bus.hpp"

namespace sfstream::emulator::data {

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

namespace {

constexpr const char* overflow_record_id = "000000000000000AAA";
constexpr std::size_t generic_payload_limit = 3000;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

/// How values are rendered: REST and PushTopic use "+0000" datetimes; CDC and platform events "Z".
enum class date_style { rest, streaming };

void write_key(json_writer& w, const std::string& key) {
  w.Key(key.c_str(), static_cast<rapidjson::SizeType>(key.size()));
}

void write_value(json_writer& w, const field_value& v, date_style style) {
  if (is_null(v)) {
    w.Null();
  } else if (const auto* b = std::get_if<bool>(&v)) {
    w.Bool(*b);
  } else if (const auto* d = std::get_if<double>(&v)) {
    if (std::isfinite(*d) && std::floor(*d) == *d && std::fabs(*d) < 1e15)
      w.Int64(static_cast<std::int64_t>(*d));
    else
      w.Double(*d);
  } else {
    const auto& s = std::get<std::string>(v);
    const bool datetime = s.size() == 24 && s[10] == 'T' && s.back() == 'Z' && parse_datetime(s).has_value();
    w.String(datetime && style == date_style::rest ? rest_datetime(s) : s);
  }
}

const field_value& value_of(const field_map& fields, const std::string& name) {
  static const field_value null_value;
  auto it = fields.find(name);
  return it == fields.end() ? null_value : it->second;
}

std::string error_json(const std::vector<api_error>& errors) {
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartArray();
  for (const auto& e : errors) {
    w.StartObject();
    w.Key("message");
    w.String(e.message);
    w.Key("errorCode");
    w.String(e.error_code);
    if (!e.fields.empty()) {
      w.Key("fields");
      w.StartArray();
      for (const auto& f : e.fields) w.String(f);
      w.EndArray();
    }
    w.EndObject();
  }
  w.EndArray();
  return buffer.GetString();
}

transport::http_response json_response(unsigned status, std::string body) {
  transport::http_response r;
  r.status = status;
  static const std::map<unsigned, const char*> reasons{{200, "OK"},          {201, "Created"},
                                                       {204, "No Content"},  {400, "Bad Request"},
                                                       {404, "Not Found"},   {405, "Method Not Allowed"},
                                                       {413, "Request Entity Too Large"}};
  auto it = reasons.find(status);
  r.reason = it == reasons.end() ? "Error" : it->second;
  r.headers.emplace_back("Sforce-Limit-Info", "api-usage=1/15000");
  if (status != 204) {
    r.headers.emplace_back("Content-Type", "application/json;charset=UTF-8");
    r.body = std::move(body);
  }
  return r;
}

transport::http_response error_response(unsigned status, const api_error& e) {
  return json_response(status, error_json({e}));
}

api_error not_found() { return {"NOT_FOUND", "The requested resource does not exist", {}}; }

unsigned status_for(const api_error& e) {
  if (e.error_code == "NOT_FOUND" || e.error_code == "ENTITY_IS_DELETED") return 404;
  return 400;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> parse_query_string(std::string_view q) {
  std::map<std::string, std::string> out;
  while (!q.empty()) {
    const std::size_t amp = q.find('&');
    const std::string_view part = q.substr(0, amp);
    const std::size_t eq = part.find('=');
    out[percent_decode(part.substr(0, eq))] = eq == std::string_view::npos ? "" : percent_decode(part.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return out;
}

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t slash = path.find('/', start);
    const std::string_view part = path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (!part.empty()) out.push_back(percent_decode(part));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

/// "vNN.0" → NN when within the limits.
std::optional<int> parse_version(const std::string& segment, const data_options& options) {
  if (segment.size() < 4 || segment[0] != 'v' || segment.substr(segment.size() - 2) != ".0") return std::nullopt;
  const std::string digits = segment.substr(1, segment.size() - 3);
  if (digits.empty() || digits.size() > 3 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    return std::nullopt;
  const int v = std::stoi(digits);
  if (v < options.min_api_version || v > options.max_api_version) return std::nullopt;
  return v;
}

std::string release_label(int version) {
  static const char* const seasons[] = {"Winter", "Spring", "Summer"};
  const int index = version - 20;
  const int year = 11 + index / 3;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s '%02d", seasons[index % 3], year % 100);
  return buf;
}

std::string version_text(int v) { return std::to_string(v) + ".0"; }

}  // namespace

// ---------------------------------------------------------------------------------------------

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
  std::vector<std::string> problems;
  schema check(out, &problems);
  if (!problems.empty()) return fail(problems.front());
  return out;
}

// ---------------------------------------------------------------------------------------------

/// One REST call or control operation: the changes it makes share a transaction key.
struct transaction {
  std::string key;
  std::int64_t commit_number = 0;
  std::int64_t commit_timestamp = 0;
  std::string user_id;
  std::string origin;
  std::string stamp;  ///< Canonical datetime of the commit: every write of the transaction uses it.
  int sequence = 0;
};

/// A CDC event about to be published (possibly merged over several records).
struct change_event {
  const object_def* object = nullptr;
  std::string change_type;
  std::vector<std::string> record_ids;
  std::string body;  ///< The payload's fields as JSON members text (without braces), merge key.
  std::vector<std::string> changed_fields;
};

struct pushtopic_state {
  std::string channel;
  soql_query query;
};

struct query_cursor {
  std::string version;
  bool all = false;
  std::vector<std::string> records;  ///< Rendered JSON of each record, at query time.
};

class rest_api_impl {
 public:
  rest_api_impl(clock& clk, event_bus& bus, data_options options)
      : clock_(clk), bus_(bus), options_(std::move(options)), schema_(options_) {
    std::random_device device;
    rng_.seed(options_.seed != 0 ? options_.seed : (static_cast<std::uint64_t>(device()) << 32) ^ device());
    for (const auto& o : schema_.objects())
      if (o->kind == object_kind::platform_event) bus_.declare_channel("/event/" + o->name, retention::hours_72);
    for (const auto& entity : options_.cdc_entities) enable_cdc(entity);
  }

  // ---- helpers --------------------------------------------------------------------------

  std::string now() const { return format_datetime(clock_.now()); }

  const caller& effective(const caller& who) const { return who.user_id.empty() ? options_.automated_user : who; }

  std::string uuid() {
    std::uniform_int_distribution<unsigned> byte(0, 255);
    unsigned char b[16];
    for (auto& x : b) x = static_cast<unsigned char>(byte(rng_));
    b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
    b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
    char out[37];
    std::snprintf(out, sizeof out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
                  b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    return out;
  }

  transaction begin(const caller& who, const std::string& origin) {
    transaction t;
    t.key = uuid();
    t.commit_number = ++commit_number_;
    t.commit_timestamp =
        std::chrono::duration_cast<std::chrono::milliseconds>(clock_.now().time_since_epoch()).count();
    t.user_id = effective(who).user_id;
    t.origin = origin;
    t.stamp = format_datetime(std::chrono::system_clock::time_point(std::chrono::milliseconds(t.commit_timestamp)));
    return t;
  }

  static std::string origin_for(int version, const std::string& client) {
    std::string o = "com/salesforce/api/rest/" + version_text(version);
    if (!client.empty()) o += ";client=" + client;
    return o;
  }
  std::string direct_origin() const { return origin_for(options_.max_api_version, "sfstream-emulator"); }

  // ---- JSON body → fields ---------------------------------------------------------------

  bool convert_fields(const object_def& object, const rapidjson::Value& body, bool creating, field_map& out,
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

  bool parse_body(const std::string& text, rapidjson::Document& doc, api_error& error) {
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

  // ---- record rendering -----------------------------------------------------------------

  std::string record_url(int version, const object_def& o, const std::string& id) const {
    return "/services/data/v" + version_text(version) + "/sobjects/" + o.name + "/" + id;
  }

  void write_attributes(json_writer& w, int version, const object_def& o, const std::string& id) const {
    w.Key("attributes");
    w.StartObject();
    w.Key("type");
    w.String(o.name);
    w.Key("url");
    w.String(record_url(version, o, id));
    w.EndObject();
  }

  std::string render_record(int version, const record& r, const std::vector<const field_def*>* only) const {
    rapidjson::StringBuffer buffer;
    json_writer w(buffer);
    w.StartObject();
    write_attributes(w, version, *r.object, r.id);
    auto emit = [&](const field_def& f) {
      write_key(w, f.name);
      write_value(w, value_of(r.fields, f.name), date_style::rest);
    };
    if (only)
      for (const field_def* f : *only) emit(*f);
    else
      for (const auto& f : r.object->fields) emit(f);
    w.EndObject();
    return buffer.GetString();
  }

  // ---- writes ---------------------------------------------------------------------------

  op_result create(const std::string& object_name, const std::string& body, const caller& who, transaction& txn,
                   int version) {
    const object_def* object = schema_.find(object_name);
    if (!object) return {{}, not_found()};
    rapidjson::Document doc;
    api_error error;
    if (!parse_body(body, doc, error)) return {{}, error};
    if (object->kind == object_kind::platform_event) return publish_event(*object, doc, who, version);
    field_map values;
    if (!convert_fields(*object, doc, true, values, error)) return {{}, error};
    if (auto problem = validate_special(*object, values, nullptr); problem) return {{}, *problem};
    std::optional<api_error> failure;
    const std::string id = ids_.next(object->key_prefix);
    record_change change = store_.create(*object, values, effective(who).user_id, txn.stamp, id, failure);
    if (failure) return {{}, *failure};
    after_special(change);
    dispatch(txn, {change}, true);
    return {id, std::nullopt};
  }

  op_result update(const std::string& object_name, const std::string& id, const std::string& body, const caller& who,
                   transaction& txn) {
    record* target = locate(object_name, id);
    if (!target) return {{}, missing(object_name, id)};
    if (target->deleted) return {{}, api_error{"ENTITY_IS_DELETED", "entity is deleted", {}}};
    rapidjson::Document doc;
    api_error error;
    if (!parse_body(body, doc, error)) return {{}, error};
    field_map values;
    if (!convert_fields(*target->object, doc, false, values, error)) return {{}, error};
    if (auto problem = validate_special(*target->object, values, target); problem) return {{}, *problem};
    std::optional<api_error> failure;
    record_change change = store_.update(*target, values, effective(who).user_id, txn.stamp, failure);
    if (failure) return {{}, *failure};
    after_special(change);
    dispatch(txn, {change}, true);
    return {target->id, std::nullopt};
  }

  op_result remove(const std::string& object_name, const std::string& id, const caller& who, transaction& txn) {
    record* target = locate(object_name, id);
    if (!target) return {{}, missing(object_name, id)};
    if (target->deleted) return {{}, api_error{"ENTITY_IS_DELETED", "entity is deleted", {}}};
    record_change change = store_.remove(*target, effective(who).user_id, txn.stamp);
    after_special(change);
    dispatch(txn, {change}, true);
    return {target->id, std::nullopt};
  }

  op_result undelete(const std::string& object_name, const std::string& id, const caller& who, transaction& txn) {
    record* target = locate(object_name, id);
    if (!target) return {{}, missing(object_name, id)};
    if (!target->deleted) return {{}, api_error{"UNDELETE_FAILED", "Entity is not in the recycle bin", {}}};
    if (auto problem = validate_special(*target->object, target->fields, target); problem) return {{}, *problem};
    record_change change = store_.undelete(*target, effective(who).user_id, txn.stamp);
    after_special(change);
    dispatch(txn, {change}, true);
    return {target->id, std::nullopt};
  }

  record* locate(const std::string& object_name, const std::string& id) {
    const object_def* object = schema_.find(object_name);
    if (!object || object->kind == object_kind::platform_event) return nullptr;
    record* r = store_.find(id);
    if (!r || r->object != object) return nullptr;
    return r;
  }

  api_error missing(const std::string& object_name, const std::string& id) const {
    const object_def* object = schema_.find(object_name);
    if (object && !is_valid_id(id))
      return {"NOT_FOUND", "Provided external ID field does not exist or is not accessible: " + id, {}};
    return not_found();
  }

  // ---- PushTopic and StreamingChannel records -------------------------------------------

  /// Checks the rules of PushTopic and StreamingChannel records before a write.
  std::optional<api_error> validate_special(const object_def& object, const field_map& values, const record* existing) {
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

  std::optional<std::string> duplicate_name(const object_def& object, const std::string& name, const record* self) const {
    for (const auto& [id, r] : store_.of(object.name)) {
      if (r.deleted || &r == self) continue;
      if (const auto* n = std::get_if<std::string>(&value_of(r.fields, "Name")); n && iequals(*n, name)) return id;
    }
    return std::nullopt;
  }

  /// Keeps the channel bookkeeping of PushTopic and StreamingChannel records in step.
  void after_special(const record_change& change) {
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

  // ---- change dispatch: PushTopics and CDC ----------------------------------------------

  void dispatch(transaction& txn, const std::vector<record_change>& changes, bool notify_pushtopics) {
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

  void notify_pushtopics_of(const record_change& c) {
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

  static bool fields_rule_allows(const record& topic, const soql_query& query, const std::vector<std::string>& changed) {
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

  /// The payload fields of a CDC event, as JSON member text (no braces), in schema order.
  std::string cdc_body(const object_def& object, const field_map& fields, const std::vector<std::string>* only,
                       bool last_modified_by) {
    rapidjson::StringBuffer buffer;
    json_writer w(buffer);
    w.StartObject();
    auto wanted = [&](const std::string& name) {
      return !only || std::find(only->begin(), only->end(), name) != only->end();
    };
    bool name_written = false;
    for (const auto& f : object.fields) {
      if (f.name == "Id" || f.name == "IsDeleted" || f.name == "SystemModstamp") continue;
      if (object.compound_name && (f.name_part || f.name == "Name")) {
        if (name_written) continue;
        name_written = true;
        bool any = false;
        for (const auto& part : object.fields)
          if (part.name_part && wanted(part.name) && (only || !is_null(value_of(fields, part.name)))) any = true;
        if (!any) continue;
        w.Key("Name");
        w.StartObject();
        for (const auto& part : object.fields) {
          if (!part.name_part || !wanted(part.name) || (!only && is_null(value_of(fields, part.name)))) continue;
          write_key(w, part.name);
          write_value(w, value_of(fields, part.name), date_style::streaming);
        }
        w.EndObject();
        continue;
      }
      const bool audit = f.name == "LastModifiedDate" || (f.name == "LastModifiedById" && last_modified_by);
      if (only) {
        if (!wanted(f.name) && !audit) continue;
      } else if (is_null(value_of(fields, f.name))) {
        continue;
      }
      write_key(w, f.name);
      write_value(w, value_of(fields, f.name), date_style::streaming);
    }
    w.EndObject();
    std::string text = buffer.GetString();
    return text.substr(1, text.size() - 2);
  }

  change_event make_change_event(const record_change& c) {
    change_event e;
    e.object = c.object;
    e.record_ids.push_back(c.id);
    switch (c.kind) {
      case change_kind::create:
        e.change_type = "CREATE";
        e.body = cdc_body(*c.object, c.after, nullptr, true);
        break;
      case change_kind::undelete:
        e.change_type = "UNDELETE";
        e.body = cdc_body(*c.object, c.after, nullptr, true);
        break;
      case change_kind::remove:
        e.change_type = "DELETE";
        break;
      case change_kind::update: {
        e.change_type = "UPDATE";
        std::vector<std::string> names;
        for (const auto& name : c.changed) {
          const field_def* f = c.object->find_field(name);
          if (c.object->compound_name && name == "Name") continue;
          names.push_back(name);
          e.changed_fields.push_back(f && f->name_part ? "Name." + name : name);
        }
        e.body = cdc_body(*c.object, c.after, &names, c.last_modified_by_changed);
        e.changed_fields.push_back("LastModifiedDate");
        if (c.last_modified_by_changed) e.changed_fields.push_back("LastModifiedById");
        break;
      }
    }
    return e;
  }

  void publish_change_event(transaction& txn, const change_event& e) {
    const int sequence = ++txn.sequence;
    auto render = [&](std::int64_t replay_id, clock::time_point) {
      rapidjson::StringBuffer buffer;
      json_writer w(buffer);
      w.StartObject();
      w.Key("schema");
      w.String(e.object->schema_id);
      w.Key("payload");
      w.StartObject();
      w.Key("ChangeEventHeader");
      w.StartObject();
      w.Key("commitNumber");
      w.Int64(txn.commit_number);
      w.Key("commitUser");
      w.String(txn.user_id);
      w.Key("sequenceNumber");
      w.Int(sequence);
      w.Key("entityName");
      w.String(e.object->name);
      w.Key("changeType");
      w.String(e.change_type);
      w.Key("changedFields");
      w.StartArray();
      for (const auto& f : e.changed_fields) w.String(f);
      w.EndArray();
      w.Key("changeOrigin");
      w.String(txn.origin);
      w.Key("transactionKey");
      w.String(txn.key);
      w.Key("commitTimestamp");
      w.Int64(txn.commit_timestamp);
      w.Key("recordIds");
      w.StartArray();
      for (const auto& id : e.record_ids) w.String(id);
      w.EndArray();
      w.EndObject();
      w.EndObject();
      w.Key("event");
      w.StartObject();
      w.Key("replayId");
      w.Int64(replay_id);
      w.EndObject();
      w.EndObject();
      std::string text = buffer.GetString();
      if (!e.body.empty()) {
        // Splice the record fields in after "payload":{ so that they sit beside the header.
        const std::string marker = "\"payload\":{";
        text.insert(text.find(marker) + marker.size(), e.body + ",");
      }
      return text;
    };
    bus_.publish("/data/ChangeEvents", render);
    bus_.publish(e.object->change_event_channel(), render);
  }

  // ---- CDC controls ---------------------------------------------------------------------

  op_result enable_cdc(const std::string& entity) {
    const object_def* object = schema_.find(entity);
    if (!object || object->kind == object_kind::platform_event || object->name == "PushTopic" ||
        object->name == "StreamingChannel")
      return {{}, api_error{"INVALID_TYPE", "Change Data Capture is not available for entity '" + entity + "'", {}}};
    cdc_.insert(object->name);
    bus_.declare_channel("/data/ChangeEvents", retention::hours_72);
    bus_.declare_channel(object->change_event_channel(), retention::hours_72);
    return {object->name, std::nullopt};
  }

  const object_def* cdc_object(const std::string& entity, api_error& error) const {
    const object_def* object = schema_.find(entity);
    if (!object || !cdc_.count(object->name)) {
      error = {"INVALID_TYPE", "Change Data Capture is not enabled for entity '" + entity + "'", {}};
      return nullptr;
    }
    return object;
  }

  op_result emit_gap(const std::string& entity, const std::vector<std::string>& ids, const std::string& type) {
    api_error error;
    const object_def* object = cdc_object(entity, error);
    if (!object) return {{}, error};
    change_event e;
    e.object = object;
    e.change_type = type;
    for (const auto& id : ids) {
      const std::string id18 = to_id18(id);
      if (id18.empty()) return {{}, api_error{"MALFORMED_ID", "id value of incorrect type: " + id, {}}};
      e.record_ids.push_back(id18);
    }
    if (e.record_ids.empty()) return {{}, api_error{"REQUIRED_FIELD_MISSING", "Required fields are missing: [recordIds]", {}}};
    transaction txn = begin({}, direct_origin());
    publish_change_event(txn, e);
    return {txn.key, std::nullopt};
  }

  op_result emit_overflow(const std::string& entity, transaction* within) {
    api_error error;
    const object_def* object = cdc_object(entity, error);
    if (!object) return {{}, error};
    change_event e;
    e.object = object;
    e.change_type = "GAP_OVERFLOW";
    e.record_ids.push_back(overflow_record_id);
    transaction own = begin({}, direct_origin());
    transaction& txn = within ? *within : own;
    publish_change_event(txn, e);
    return {txn.key, std::nullopt};
  }

  op_result bulk_change(const std::string& entity, std::size_t count, const caller& who) {
    const object_def* object = schema_.find(entity);
    if (!object || object->kind == object_kind::platform_event || object->name == "PushTopic" ||
        object->name == "StreamingChannel")
      return {{}, api_error{"INVALID_TYPE", "sObject type '" + entity + "' is not supported.", {}}};
    transaction txn = begin(who, "com/salesforce/api/bulk/" + version_text(options_.max_api_version) + ";client=sfstream-emulator");
    const field_def* target = nullptr;
    for (const auto& f : object->fields)
      if (f.origin == field_origin::user && !f.required && !f.name_part &&
          (f.type == field_type::string || f.type == field_type::textarea)) {
        target = &f;
        break;
      }
    const std::string user = effective(who).user_id;
    const std::string stamp = txn.stamp;
    const std::string marker = "Bulk change " + std::to_string(txn.commit_number);
    std::vector<record_change> changes;
    std::vector<std::string> updatable;
    for (const auto& [id, r] : store_.of(object->name))
      if (!r.deleted) updatable.push_back(id);
    for (const auto& id : updatable) {
      if (changes.size() >= count || !target) break;
      std::optional<api_error> failure;
      record_change c = store_.update(*store_.find(id), {{target->name, marker}}, user, stamp, failure);
      if (!failure) changes.push_back(std::move(c));
    }
    for (std::size_t n = 0; changes.size() < count; ++n) {
      field_map values;
      for (const auto& f : object->fields) {
        if (f.origin != field_origin::user || !f.required || object->defaults.count(f.name)) continue;
        switch (f.type) {
          case field_type::number: values[f.name] = 0.0; break;
          case field_type::boolean: values[f.name] = false; break;
          case field_type::date: values[f.name] = stamp.substr(0, 10); break;
          case field_type::datetime: values[f.name] = stamp; break;
          default: values[f.name] = "Bulk record " + std::to_string(txn.commit_number) + "-" + std::to_string(n + 1); break;
        }
      }
      if (object->find_field("Name") && object->find_field("Name")->origin == field_origin::user && !values.count("Name"))
        values["Name"] = "Bulk record " + std::to_string(txn.commit_number) + "-" + std::to_string(n + 1);
      std::optional<api_error> failure;
      record_change c = store_.create(*object, values, user, stamp, ids_.next(object->key_prefix), failure);
      if (failure) return {{}, *failure};
      changes.push_back(std::move(c));
    }
    // Salesforce: Bulk API changes do not reach PushTopics (§6.1). Past the overflow threshold
    // the first `threshold` changes still produce events and the rest one GAP_OVERFLOW (§6.4).
    if (changes.size() > options_.overflow_threshold) {
      const std::vector<record_change> first(changes.begin(),
                                             changes.begin() + static_cast<std::ptrdiff_t>(options_.overflow_threshold));
      dispatch(txn, first, false);
      if (cdc_.count(object->name)) emit_overflow(object->name, &txn);
    } else {
      dispatch(txn, changes, false);
    }
    return {txn.key, std::nullopt};
  }

  // ---- generic streaming ----------------------------------------------------------------

  const record* find_channel(const std::string& name_or_id) const {
    if (const record* r = store_.find(name_or_id); r && r->object->name == "StreamingChannel" && !r->deleted) return r;
    for (const auto& [id, r] : store_.of("StreamingChannel"))
      if (!r.deleted && value_of(r.fields, "Name") == field_value(name_or_id)) return &r;
    return nullptr;
  }

  op_result push(const record& channel, const std::string& payload,
                 std::vector<std::string> user_ids = {}) {
    if (payload.size() > generic_payload_limit)
      return {{}, api_error{"STRING_TOO_LONG",
                            "payload: data value too large (max length=" + std::to_string(generic_payload_limit) + ")",
                            {"payload"}}};
    const std::string name = std::get<std::string>(value_of(channel.fields, "Name"));
    bus_.declare_channel(name, retention::hours_24);
    const std::int64_t replay = bus_.publish(name, [&](std::int64_t replay_id, clock::time_point at) {
      rapidjson::StringBuffer buffer;
      json_writer w(buffer);
      w.StartObject();
      w.Key("event");
      w.StartObject();
      w.Key("createdDate");
      w.String(format_datetime(at));
      w.Key("replayId");
      w.Int64(replay_id);
      w.EndObject();
      w.Key("payload");
      w.String(payload);
      w.EndObject();
      return std::string(buffer.GetString());
    }, std::move(user_ids));
    return {std::to_string(replay), std::nullopt};
  }

  transport::http_response handle_push(const std::string& method, const record& channel, const std::string& body) {
    if (method == "GET") {
      rapidjson::StringBuffer buffer;
      json_writer w(buffer);
      w.StartObject();
      w.Key("OnlineUserIds");
      w.StartArray();
      w.EndArray();
      w.Key("ChannelName");
      w.String(std::get<std::string>(value_of(channel.fields, "Name")));
      w.EndObject();
      return json_response(200, buffer.GetString());
    }
    if (method != "POST") return method_not_allowed(method, "GET,POST");
    rapidjson::Document doc;
    api_error error;
    if (!parse_body(body, doc, error)) return error_response(400, error);
    if (!doc.IsObject() || !doc.HasMember("pushEvents") || !doc["pushEvents"].IsArray())
      return error_response(400, {"JSON_PARSER_ERROR", "The request body must be {\"pushEvents\":[{\"payload\":…,\"userIds\":[…]}]}", {}});
    struct push_event {
      std::string payload;
      std::vector<std::string> user_ids;  // empty: every subscriber
    };
    std::vector<push_event> events;
    for (const auto& e : doc["pushEvents"].GetArray()) {
      if (!e.IsObject() || !e.HasMember("payload") || !e["payload"].IsString())
        return error_response(400, {"JSON_PARSER_ERROR", "Each push event needs a string payload", {}});
      if (e.HasMember("userIds") && !e["userIds"].IsArray())
        return error_response(400, {"JSON_PARSER_ERROR", "userIds must be an array of User ids", {}});
      if (e["payload"].GetStringLength() > generic_payload_limit)
        return error_response(400, {"STRING_TOO_LONG",
                                    "payload: data value too large (max length=" + std::to_string(generic_payload_limit) + ")",
                                    {"payload"}});
      push_event p{std::string(e["payload"].GetString(), e["payload"].GetStringLength()), {}};
      if (e.HasMember("userIds")) {
        for (const auto& u : e["userIds"].GetArray()) {
          if (!u.IsString())
            return error_response(400, {"JSON_PARSER_ERROR", "userIds must be an array of User ids", {}});
          std::string id(u.GetString(), u.GetStringLength());
          if (std::find(p.user_ids.begin(), p.user_ids.end(), id) == p.user_ids.end())
            p.user_ids.push_back(std::move(id));
        }
      }
      events.push_back(std::move(p));
    }
    const std::string name = std::get<std::string>(value_of(channel.fields, "Name"));
    rapidjson::StringBuffer buffer;
    json_writer w(buffer);
    w.StartArray();
    for (auto& p : events) {
      // Salesforce: fanoutCount -1 without userIds; with them, the subscribers reached, and
      // userOnlineStatus says per user whether one of its clients is subscribed.
      std::int64_t fanout = p.user_ids.empty() ? -1 : 0;
      std::vector<std::pair<std::string, bool>> online;
      for (const auto& user : p.user_ids) {
        const std::size_t n = bus_.subscribers(name, user);
        fanout += static_cast<std::int64_t>(n);
        online.emplace_back(user, n > 0);
      }
      push(channel, p.payload, p.user_ids);
      w.StartObject();
      w.Key("fanoutCount");
      w.Int64(fanout);
      w.Key("userOnlineStatus");
      w.StartObject();
      for (const auto& [user, is_online] : online) {
        w.Key(user.c_str(), static_cast<rapidjson::SizeType>(user.size()));
        w.Bool(is_online);
      }
      w.EndObject();
      w.EndObject();
    }
    w.EndArray();
    return json_response(200, buffer.GetString());
  }

  // ---- platform events ------------------------------------------------------------------

  op_result publish_event(const object_def& event, const rapidjson::Value& body, const caller& who, int version) {
    field_map values;
    api_error error;
    if (!convert_fields(event, body, true, values, error)) return {{}, error};
    std::vector<std::string> missing_fields;
    for (const auto& f : event.fields)
      if (f.required && !values.count(f.name)) missing_fields.push_back(f.name);
    if (!missing_fields.empty()) {
      std::string list;
      for (const auto& m : missing_fields) list += (list.empty() ? "" : ", ") + m;
      return {{}, api_error{"REQUIRED_FIELD_MISSING", "Required fields are missing: [" + list + "]", missing_fields}};
    }
    const std::string id = ids_.next(event.key_prefix);
    const std::string event_uuid = uuid();
    const std::string user = effective(who).user_id;
    const bool with_uuid = version >= 52;
    bus_.publish("/event/" + event.name, [&](std::int64_t replay_id, clock::time_point at) {
      rapidjson::StringBuffer buffer;
      json_writer w(buffer);
      w.StartObject();
      w.Key("schema");
      w.String(event.schema_id);
      w.Key("payload");
      w.StartObject();
      w.Key("CreatedDate");
      w.String(format_datetime(at));
      w.Key("CreatedById");
      w.String(user);
      for (const auto& f : event.fields) {
        if (f.origin == field_origin::system) continue;
        write_key(w, f.name);
        write_value(w, value_of(values, f.name), date_style::streaming);
      }
      w.EndObject();
      w.Key("event");
      w.StartObject();
      if (with_uuid) {
        w.Key("EventUuid");
        w.String(event_uuid);
      }
      w.Key("replayId");
      w.Int64(replay_id);
      w.EndObject();
      w.EndObject();
      return std::string(buffer.GetString());
    });
    last_event_uuid_ = with_uuid ? event_uuid : std::string();
    return {id, std::nullopt};
  }

  // ---- HTTP -----------------------------------------------------------------------------

  static transport::http_response method_not_allowed(const std::string& method, const std::string& allowed) {
    auto r = error_response(405, {"METHOD_NOT_ALLOWED", "HTTP Method '" + method + "' not allowed. Allowed are " + allowed, {}});
    r.headers.emplace_back("Allow", allowed);
    return r;
  }

  static std::string create_reply(const std::string& id, const std::vector<std::pair<std::string, std::string>>& notes) {
    rapidjson::StringBuffer buffer;
    json_writer w(buffer);
    w.StartObject();
    w.Key("id");
    w.String(id);
    w.Key("success");
    w.Bool(true);
    w.Key("errors");
    w.StartArray();
    for (const auto& [code, message] : notes) {
      w.StartObject();
      w.Key("statusCode");
      w.String(code);
      w.Key("message");
      w.String(message);
      w.Key("fields");
      w.StartArray();
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    return buffer.GetString();
  }

  transport::http_response handle(const transport::http_request& req, const caller& who) {
    const std::string& target = req.target;
    const std::size_t question = target.find('?');
    const std::string path = target.substr(0, question);
    const auto params = question == std::string::npos ? std::map<std::string, std::string>{}
                                                       : parse_query_string(std::string_view(target).substr(question + 1));
    const auto parts = split_path(path);
    if (parts.size() < 2 || parts[0] != "services" || parts[1] != "data") return error_response(404, not_found());
    if (parts.size() == 2) {
      if (req.method != "GET") return method_not_allowed(req.method, "GET");
      return versions();
    }
    const auto version = parse_version(parts[2], options_);
    if (!version) return error_response(404, not_found());
    const std::vector<std::string> rest(parts.begin() + 3, parts.end());
    if (rest.empty()) {
      if (req.method != "GET") return method_not_allowed(req.method, "GET");
      return resources(*version);
    }
    const std::string& resource = rest[0];
    if (resource == "limits" && rest.size() == 1) {
      if (req.method != "GET") return method_not_allowed(req.method, "GET");
      return limits();
    }
    if (resource == "query" || resource == "queryAll") {
      if (req.method != "GET") return method_not_allowed(req.method, "GET");
      if (rest.size() == 1) {
        auto q = params.find("q");
        if (q == params.end() || q->second.empty())
          return error_response(400, {"MALFORMED_QUERY", "A query string has to be specified", {}});
        return run_query(*version, q->second, resource == "queryAll", batch_size(req));
      }
      if (rest.size() == 2) return next_page(*version, rest[1]);
      return error_response(404, not_found());
    }
    if (resource == "sobjects") return handle_sobjects(req, who, *version, rest);
    return error_response(404, not_found());
  }

  std::size_t batch_size(const transport::http_request& req) const {
    std::size_t size = options_.query_batch_size;
    if (const std::string* h = transport::find_header(req.headers, "Sforce-Query-Options")) {
      const std::size_t at = h->find("batchSize=");
      if (at != std::string::npos) {
        const long n = std::strtol(h->c_str() + at + 10, nullptr, 10);
        if (n >= 200 && n <= 2000) size = std::min(size, static_cast<std::size_t>(n));
      }
    }
    return size;
  }

  transport::http_response handle_sobjects(const transport::http_request& req, const caller& who, int version,
                                           const std::vector<std::string>& rest) {
    if (rest.size() < 2) return error_response(404, not_found());
    const object_def* object = schema_.find(rest[1]);
    if (!object) return error_response(404, not_found());
    std::string client;
    if (const std::string* h = transport::find_header(req.headers, "Sforce-Call-Options")) {
      const std::size_t at = h->find("client=");
      if (at != std::string::npos) client = h->substr(at + 7, h->find(',', at) == std::string::npos ? std::string::npos : h->find(',', at) - at - 7);
    }
    transaction txn = begin(who, origin_for(version, client));
    if (rest.size() == 2) {
      if (req.method != "POST") return method_not_allowed(req.method, "POST");
      op_result r = create(object->name, req.body, who, txn, version);
      if (!r) return error_response(status_for(*r.error), *r.error);
      if (object->kind == object_kind::platform_event && !last_event_uuid_.empty())
        return json_response(201, create_reply(r.id, {{"OPERATION_ENQUEUED", last_event_uuid_}}));
      return json_response(201, create_reply(r.id, {}));
    }
    const std::string& id = rest[2];
    if (rest.size() == 4 && rest[3] == "push" && object->name == "StreamingChannel") {
      const record* channel = locate(object->name, id);
      if (!channel || channel->deleted) return error_response(404, missing(object->name, id));
      return handle_push(req.method, *channel, req.body);
    }
    if (rest.size() == 4 && rest[3] == "undelete") {
      if (req.method != "POST") return method_not_allowed(req.method, "POST");
      op_result r = undelete(object->name, id, who, txn);
      if (!r) return error_response(status_for(*r.error), *r.error);
      return json_response(204, {});
    }
    if (rest.size() != 3 || object->kind == object_kind::platform_event) return error_response(404, not_found());
    if (req.method == "GET") {
      const record* r = locate(object->name, id);
      if (!r || r->deleted) return error_response(404, missing(object->name, id));
      const auto question = req.target.find('?');
      if (question != std::string::npos) {
        auto params = parse_query_string(std::string_view(req.target).substr(question + 1));
        if (auto fields = params.find("fields"); fields != params.end()) {
          std::vector<const field_def*> only;
          std::string_view list = fields->second;
          while (!list.empty()) {
            const std::size_t comma = list.find(',');
            std::string name(list.substr(0, comma));
            name.erase(std::remove(name.begin(), name.end(), ' '), name.end());
            const field_def* f = object->find_field(name);
            if (!f)
              return error_response(400, {"INVALID_FIELD", "No such column '" + name + "' on sobject of type " + object->name, {}});
            only.push_back(f);
            if (comma == std::string_view::npos) break;
            list.remove_prefix(comma + 1);
          }
          return json_response(200, render_record(version, *r, &only));
        }
      }
      return json_response(200, render_record(version, *r, nullptr));
    }
    if (req.method == "PATCH") {
      op_result r = update(object->name, id, req.body, who, txn);
      if (!r) return error_response(status_for(*r.error), *r.error);
      return json_response(204, {});
    }
    if (req.method == "DELETE") {
      op_result r = remove(object->name, id, who, txn);
      if (!r) return error_response(status_for(*r.error), *r.error);
      return json_response(204, {});
    }
    return method_not_allowed(req.method, "GET,PATCH,DELETE");
  }

  transport::http_response versions() const {
    rapidjson::StringBuffer buffer;
    json_writer w(buffer);
    w.StartArray();
    for (int v = options_.min_api_version; v <= options_.max_api_version; ++v) {
      w.StartObject();
      w.Key("label");
      w.String(release_label(v));
      w.Key("url");
      w.String("/services/data/v" + version_text(v));
      w.Key("version");
      w.String(version_text(v));
      w.EndObject();
    }
    w.EndArray();
    return json_response(200, buffer.GetString());
  }

  transport::http_response resources(int version) const {
    rapidjson::StringBuffer buffer;
    json_writer w(buffer);
    w.StartObject();
    for (const char* r : {"sobjects", "query", "queryAll", "limits"}) {
      w.Key(r);
      w.String("/services/data/v" + version_text(version) + "/" + r);
    }
    w.EndObject();
    return json_response(200, buffer.GetString());
  }

  transport::http_response limits() const {
    static const std::pair<const char*, int> values[] = {{"DailyApiRequests", 15000},
                                                         {"DailyDurableGenericStreamingApiEvents", 10000},
                                                         {"DailyDurableStreamingApiEvents", 10000},
                                                         {"DailyGenericStreamingApiEvents", 10000},
                                                         {"DailyStreamingApiEvents", 10000},
                                                         {"DurableStreamingApiConcurrentClients", 20},
                                                         {"StreamingApiConcurrentClients", 20}};
    rapidjson::StringBuffer buffer;
    json_writer w(buffer);
    w.StartObject();
    for (const auto& [name, max] : values) {
      w.Key(name);
      w.StartObject();
      w.Key("Max");
      w.Int(max);
      w.Key("Remaining");
      w.Int(max);
      w.EndObject();
    }
    w.EndObject();
    return json_response(200, buffer.GetString());
  }

  transport::http_response run_query(int version, const std::string& text, bool all, std::size_t batch) {
    api_error error;
    auto query = parse_soql(text, schema_, error);
    if (!query) return error_response(400, error);
    const auto matches = run_soql(*query, store_, all, now());
    if (query->count_only) return json_response(200, page_json(matches.size(), true, {}, {}, 0, 0));
    query_cursor cursor;
    cursor.version = version_text(version);
    cursor.all = all;
    cursor.records.reserve(matches.size());
    for (const record* r : matches) cursor.records.push_back(render_record(version, *r, &query->select));
    if (cursor.records.size() <= batch) return json_response(200, page_json(cursor.records.size(), true, {}, cursor.records, 0, cursor.records.size()));
    const std::string locator = ids_.next("01g");
    cursors_[locator] = std::move(cursor);
    cursor_batch_[locator] = batch;
    cursor_order_.push_back(locator);
    while (cursor_order_.size() > 50) {
      cursors_.erase(cursor_order_.front());
      cursor_batch_.erase(cursor_order_.front());
      cursor_order_.pop_front();
    }
    return page(locator, 0);
  }

  transport::http_response page(const std::string& locator, std::size_t start) {
    const query_cursor& c = cursors_.at(locator);
    const std::size_t batch = cursor_batch_.at(locator);
    const std::size_t end = std::min(c.records.size(), start + batch);
    const bool done = end >= c.records.size();
    std::string next;
    if (!done) next = "/services/data/v" + c.version + (c.all ? "/queryAll/" : "/query/") + locator + "-" + std::to_string(end);
    return json_response(200, page_json(c.records.size(), done, next, c.records, start, end));
  }

  transport::http_response next_page(int, const std::string& token) {
    const std::size_t dash = token.rfind('-');
    const api_error invalid{"INVALID_QUERY_LOCATOR", "invalid query locator", {}};
    if (dash == std::string::npos) return error_response(400, invalid);
    const std::string locator = token.substr(0, dash);
    const std::string offset = token.substr(dash + 1);
    if (offset.empty() || offset.size() > 9 ||
        !std::all_of(offset.begin(), offset.end(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); }))
      return error_response(400, invalid);
    auto it = cursors_.find(locator);
    const std::size_t start = static_cast<std::size_t>(std::stoul(offset));
    if (it == cursors_.end() || start >= it->second.records.size()) return error_response(400, invalid);
    return page(locator, start);
  }

  static std::string page_json(std::size_t total, bool done, const std::string& next, const std::vector<std::string>& records,
                               std::size_t start, std::size_t end) {
    std::string out = "{\"totalSize\":" + std::to_string(total) + ",\"done\":" + (done ? "true" : "false");
    if (!next.empty()) out += ",\"nextRecordsUrl\":\"" + next + "\"";
    out += ",\"records\":[";
    for (std::size_t i = start; i < end; ++i) {
      if (i > start) out += ',';
      out += records[i];
    }
    out += "]}";
    return out;
  }

  // ---- state ----------------------------------------------------------------------------

  clock& clock_;
  event_bus& bus_;
  data_options options_;
  schema schema_;
  record_store store_;
  id_generator ids_;
  std::mt19937_64 rng_;
  std::int64_t commit_number_ = 1'082'990'428'000;
  std::set<std::string> cdc_;
  std::map<std::string, pushtopic_state> pushtopics_;
  std::map<std::string, query_cursor> cursors_;
  std::map<std::string, std::size_t> cursor_batch_;
  std::deque<std::string> cursor_order_;
  std::string last_event_uuid_;
};

// ---------------------------------------------------------------------------------------------

rest_api::rest_api(clock& clk, event_bus& bus, data_options options)
    : impl_(std::make_unique<rest_api_impl>(clk, bus, std::move(options))) {}

rest_api::~rest_api() = default;

transport::http_response rest_api::handle(const transport::http_request& req, const caller& who) {
  try {
    return impl_->handle(req, who);
  } catch (const std::exception& e) {
    return error_response(500, {"UNKNOWN_EXCEPTION", std::string("An unexpected error occurred: ") + e.what(), {}});
  }
}

op_result rest_api::create_record(const std::string& object, const std::string& fields_json, const caller& who) {
  transaction txn = impl_->begin(who, impl_->direct_origin());
  return impl_->create(object, fields_json, who, txn, 59);
}

op_result rest_api::update_record(const std::string& object, const std::string& id, const std::string& fields_json,
                                  const caller& who) {
  transaction txn = impl_->begin(who, impl_->direct_origin());
  return impl_->update(object, id, fields_json, who, txn);
}

op_result rest_api::delete_record(const std::string& object, const std::string& id, const caller& who) {
  transaction txn = impl_->begin(who, impl_->direct_origin());
  return impl_->remove(object, id, who, txn);
}

op_result rest_api::undelete_record(const std::string& object, const std::string& id, const caller& who) {
  transaction txn = impl_->begin(who, impl_->direct_origin());
  return impl_->undelete(object, id, who, txn);
}

std::optional<std::string> rest_api::get_record(const std::string& object, const std::string& id) const {
  const record* r = impl_->locate(object, id);
  if (!r || r->deleted) return std::nullopt;
  return impl_->render_record(impl_->options_.max_api_version, *r, nullptr);
}

op_result rest_api::create_pushtopic(const pushtopic_spec& spec, const caller& who) {
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartObject();
  w.Key("Name");
  w.String(spec.name);
  w.Key("Query");
  w.String(spec.query);
  w.Key("ApiVersion");
  w.Double(spec.api_version);
  w.Key("NotifyForOperationCreate");
  w.Bool(spec.notify_for_operation_create);
  w.Key("NotifyForOperationUpdate");
  w.Bool(spec.notify_for_operation_update);
  w.Key("NotifyForOperationDelete");
  w.Bool(spec.notify_for_operation_delete);
  w.Key("NotifyForOperationUndelete");
  w.Bool(spec.notify_for_operation_undelete);
  w.Key("NotifyForFields");
  w.String(spec.notify_for_fields);
  w.Key("IsActive");
  w.Bool(spec.is_active);
  w.EndObject();
  return create_record("PushTopic", buffer.GetString(), who);
}

op_result rest_api::create_streaming_channel(const std::string& name, const caller& who) {
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartObject();
  w.Key("Name");
  w.String(name);
  w.EndObject();
  return create_record("StreamingChannel", buffer.GetString(), who);
}

op_result rest_api::push_generic(const std::string& channel_name_or_id, const std::string& payload) {
  const record* channel = impl_->find_channel(channel_name_or_id);
  if (!channel) return {{}, not_found()};
  return impl_->push(*channel, payload);
}

void rest_api::define_platform_event(const platform_event_definition& definition) {
  object_def def;
  if (!impl_->schema_.make_platform_event(definition, def).empty()) return;
  if (!impl_->schema_.define(std::move(def)).empty()) return;
  impl_->bus_.declare_channel("/event/" + definition.name, retention::hours_72);
}

op_result rest_api::publish_platform_event(const std::string& name, const std::string& fields_json, const caller& who,
                                           double api_version) {
  const object_def* event = impl_->schema_.find(name);
  if (!event || event->kind != object_kind::platform_event) return {{}, not_found()};
  transaction txn = impl_->begin(who, impl_->direct_origin());
  return impl_->create(event->name, fields_json, who, txn, static_cast<int>(api_version));
}

op_result rest_api::enable_cdc(const std::string& entity) { return impl_->enable_cdc(entity); }

op_result rest_api::emit_gap_events(const std::string& entity, const std::vector<std::string>& ids, gap_type type) {
  static const char* const names[] = {"GAP_CREATE", "GAP_UPDATE", "GAP_DELETE", "GAP_UNDELETE"};
  return impl_->emit_gap(entity, ids, names[static_cast<int>(type)]);
}

op_result rest_api::emit_overflow(const std::string& entity) { return impl_->emit_overflow(entity, nullptr); }

op_result rest_api::bulk_change(const std::string& entity, std::size_t count, const caller& who) {
  return impl_->bulk_change(entity, count, who);
}

std::size_t rest_api::record_count(const std::string& object) const {
  const object_def* o = impl_->schema_.find(object);
  return o ? impl_->store_.live_count(o->name) : 0;
}

void rest_api::set_overflow_threshold(std::size_t threshold) { impl_->options_.overflow_threshold = threshold; }

}  // namespace sfstream::emulator::data
