#include "emulator/data/schema.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace sfstream::emulator::data {
namespace {

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool ends_with(std::string_view s, std::string_view suffix) noexcept {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool is_api_name(std::string_view s) noexcept {
  if (s.empty() || !std::isalpha(static_cast<unsigned char>(s.front()))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

field_def user_field(std::string name, field_type type, bool required = false, std::size_t max_length = 0,
                     std::string reference_to = {}) {
  field_def f;
  f.name = std::move(name);
  f.type = type;
  f.required = required;
  f.max_length = max_length;
  f.reference_to = std::move(reference_to);
  return f;
}

field_def system_field(std::string name, field_type type, std::string reference_to = {}) {
  field_def f = user_field(std::move(name), type, false, 0, std::move(reference_to));
  f.origin = field_origin::system;
  return f;
}

void add_system_fields(object_def& o) {
  o.fields.insert(o.fields.begin(), system_field("Id", field_type::id));
  o.fields.push_back(system_field("IsDeleted", field_type::boolean));
  o.fields.push_back(system_field("CreatedDate", field_type::datetime));
  o.fields.push_back(system_field("CreatedById", field_type::reference, "User"));
  o.fields.push_back(system_field("LastModifiedDate", field_type::datetime));
  o.fields.push_back(system_field("LastModifiedById", field_type::reference, "User"));
  o.fields.push_back(system_field("SystemModstamp", field_type::datetime));
}

object_def standard(std::string name, std::string prefix, std::vector<field_def> fields) {
  object_def o;
  o.name = std::move(name);
  o.key_prefix = std::move(prefix);
  o.fields = std::move(fields);
  add_system_fields(o);
  return o;
}

std::vector<field_def> person_name_fields() {
  field_def first = user_field("FirstName", field_type::string, false, 40);
  first.name_part = true;
  field_def last = user_field("LastName", field_type::string, true, 80);
  last.name_part = true;
  field_def full = user_field("Name", field_type::string, false, 121);
  full.origin = field_origin::computed;
  return {first, last, full};
}

std::vector<object_def> standard_objects() {
  std::vector<object_def> out;
  out.push_back(standard("Account", "001",
                         {user_field("Name", field_type::string, true, 255), user_field("Type", field_type::string, false, 255),
                          user_field("Industry", field_type::string, false, 255),
                          user_field("Phone", field_type::string, false, 40),
                          user_field("Website", field_type::string, false, 255),
                          user_field("BillingCity", field_type::string, false, 40),
                          user_field("AnnualRevenue", field_type::number),
                          user_field("NumberOfEmployees", field_type::number),
                          user_field("Description", field_type::textarea, false, 32000),
                          user_field("ParentId", field_type::reference, false, 0, "Account"),
                          user_field("OwnerId", field_type::reference, false, 0, "User")}));

  auto contact_fields = person_name_fields();
  for (auto f : {user_field("Email", field_type::string, false, 80), user_field("Phone", field_type::string, false, 40),
                 user_field("Title", field_type::string, false, 128),
                 user_field("AccountId", field_type::reference, false, 0, "Account"),
                 user_field("Birthdate", field_type::date), user_field("Description", field_type::textarea, false, 32000),
                 user_field("OwnerId", field_type::reference, false, 0, "User")})
    contact_fields.push_back(f);
  out.push_back(standard("Contact", "003", contact_fields));
  out.back().compound_name = true;

  auto lead_fields = person_name_fields();
  for (auto f : {user_field("Company", field_type::string, true, 255), user_field("Email", field_type::string, false, 80),
                 user_field("Phone", field_type::string, false, 40), user_field("Status", field_type::string, false, 255),
                 user_field("Description", field_type::textarea, false, 32000),
                 user_field("OwnerId", field_type::reference, false, 0, "User")})
    lead_fields.push_back(f);
  out.push_back(standard("Lead", "00Q", lead_fields));
  out.back().compound_name = true;
  out.back().defaults["Status"] = std::string("Open - Not Contacted");

  out.push_back(standard("Opportunity", "006",
                         {user_field("Name", field_type::string, true, 120),
                          user_field("StageName", field_type::string, true, 255),
                          user_field("CloseDate", field_type::date, true), user_field("Amount", field_type::number),
                          user_field("Probability", field_type::number),
                          user_field("AccountId", field_type::reference, false, 0, "Account"),
                          user_field("Description", field_type::textarea, false, 32000),
                          user_field("OwnerId", field_type::reference, false, 0, "User")}));

  out.push_back(standard("Task", "00T",
                         {user_field("Subject", field_type::string, false, 255),
                          user_field("Status", field_type::string, false, 255),
                          user_field("Priority", field_type::string, false, 255),
                          user_field("ActivityDate", field_type::date),
                          user_field("WhoId", field_type::reference, false, 0, "Contact"),
                          user_field("WhatId", field_type::reference, false, 0, "Account"),
                          user_field("Description", field_type::textarea, false, 32000),
                          user_field("OwnerId", field_type::reference, false, 0, "User")}));
  out.back().defaults["Status"] = std::string("Not Started");
  out.back().defaults["Priority"] = std::string("Normal");

  out.push_back(standard("PushTopic", "0IF",
                         {user_field("Name", field_type::string, true, 25), user_field("Query", field_type::string, true, 1300),
                          user_field("ApiVersion", field_type::number, true),
                          user_field("NotifyForOperationCreate", field_type::boolean),
                          user_field("NotifyForOperationUpdate", field_type::boolean),
                          user_field("NotifyForOperationDelete", field_type::boolean),
                          user_field("NotifyForOperationUndelete", field_type::boolean),
                          user_field("NotifyForFields", field_type::string, false, 40),
                          user_field("IsActive", field_type::boolean),
                          user_field("Description", field_type::string, false, 400)}));
  for (const char* k : {"NotifyForOperationCreate", "NotifyForOperationUpdate", "NotifyForOperationDelete",
                        "NotifyForOperationUndelete", "IsActive"})
    out.back().defaults[k] = true;
  out.back().defaults["NotifyForFields"] = std::string("Referenced");

  out.push_back(standard("StreamingChannel", "0M6",
                         {user_field("Name", field_type::string, true, 80),
                          user_field("Description", field_type::string, false, 255)}));

  auto user_fields = person_name_fields();
  for (auto f : {user_field("Username", field_type::string, true, 80), user_field("Email", field_type::string, false, 128),
                 user_field("IsActive", field_type::boolean)})
    user_fields.push_back(f);
  out.push_back(standard("User", "005", user_fields));
  out.back().compound_name = true;
  out.back().defaults["IsActive"] = true;
  return out;
}

std::uint64_t fnv1a(std::string_view text, std::uint64_t seed) noexcept {
  std::uint64_t h = 14695981039346656037ull ^ seed;
  for (char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

std::string describe_fields(const object_def& o) {
  std::string text = o.name;
  for (const auto& f : o.fields) {
    text += '|';
    text += f.name;
    text += ':';
    text += std::to_string(static_cast<int>(f.type));
  }
  return text;
}

}  // namespace

std::optional<field_type> parse_field_type(std::string_view text) {
  static constexpr std::array<std::pair<std::string_view, field_type>, 7> names{{{"string", field_type::string},
                                                                                 {"textarea", field_type::textarea},
                                                                                 {"number", field_type::number},
                                                                                 {"boolean", field_type::boolean},
                                                                                 {"date", field_type::date},
                                                                                 {"datetime", field_type::datetime},
                                                                                 {"reference", field_type::reference}}};
  for (const auto& [n, t] : names)
    if (iequals(n, text)) return t;
  return std::nullopt;
}

const field_def* object_def::find_field(std::string_view field_name) const noexcept {
  for (const auto& f : fields)
    if (iequals(f.name, field_name)) return &f;
  return nullptr;
}

std::string object_def::change_event_channel() const {
  if (kind == object_kind::custom) return "/data/" + name.substr(0, name.size() - 3) + "__ChangeEvent";
  return "/data/" + name + "ChangeEvent";
}

schema::schema(const data_options& options, std::vector<std::string>* problems) {
  for (auto& o : standard_objects()) {
    o.schema_id = make_schema_id(describe_fields(o));
    objects_.push_back(std::make_unique<object_def>(std::move(o)));
  }
  auto report = [&](const std::string& problem) {
    if (!problem.empty() && problems) problems->push_back(problem);
  };
  for (const auto& c : options.custom_objects) {
    object_def o;
    std::string problem = make_custom_object(c, o);
    if (problem.empty()) problem = define(std::move(o));
    report(problem);
  }
  for (const auto& e : options.platform_events) {
    object_def o;
    std::string problem = make_platform_event(e, o);
    if (problem.empty()) problem = define(std::move(o));
    report(problem);
  }
}

const object_def* schema::find(std::string_view object_name) const noexcept {
  for (const auto& o : objects_)
    if (iequals(o->name, object_name)) return o.get();
  return nullptr;
}

const object_def* schema::find_by_id(std::string_view id) const noexcept {
  if (id.size() < 3) return nullptr;
  for (const auto& o : objects_)
    if (o->key_prefix == id.substr(0, 3)) return o.get();
  return nullptr;
}

std::string schema::next_custom_prefix() const {
  static constexpr std::string_view digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  for (char hi : digits.substr(0, 10))
    for (char lo : digits) {
      std::string p{'a', hi, lo};
      if (!find_by_id(p + "000000000000")) return p;
    }
  return {};
}

std::string schema::make_custom_object(const object_definition& def, object_def& out) {
  if (!ends_with(def.name, "__c") || !is_api_name(def.name))
    return "custom object name '" + def.name + "' must be an API name ending in __c";
  out = object_def{};
  out.name = def.name;
  out.kind = object_kind::custom;
  if (const object_def* existing = find(def.name)) out.key_prefix = existing->key_prefix;
  if (!def.key_prefix.empty()) {
    if (def.key_prefix.size() != 3 || !is_api_name("x" + def.key_prefix))
      return "key prefix '" + def.key_prefix + "' of " + def.name + " must be 3 letters or digits";
    const object_def* owner = find_by_id(def.key_prefix + "000000000000");
    if (owner && !iequals(owner->name, def.name))
      return "key prefix '" + def.key_prefix + "' of " + def.name + " is already used by " + owner->name;
    out.key_prefix = def.key_prefix;
  }
  if (out.key_prefix.empty()) out.key_prefix = next_custom_prefix();
  out.fields.push_back(user_field("Name", field_type::string, false, 80));
  out.fields.push_back(user_field("OwnerId", field_type::reference, false, 0, "User"));
  for (const auto& f : def.fields) {
    auto type = parse_field_type(f.type);
    if (!type) return "field " + def.name + "." + f.name + " has unknown type '" + f.type + "'";
    if (!is_api_name(f.name)) return "field name '" + f.name + "' of " + def.name + " is not an API name";
    if (out.find_field(f.name)) {
      if (iequals(f.name, "Name") && *type == field_type::string) {
        for (auto& existing : out.fields)
          if (existing.name == "Name") existing.required = f.required;
        continue;
      }
      return "field " + def.name + "." + f.name + " is declared twice";
    }
    out.fields.push_back(user_field(f.name, *type, f.required, *type == field_type::string ? 255 : 0, f.reference_to));
  }
  add_system_fields(out);
  out.schema_id = make_schema_id(describe_fields(out));
  return {};
}

std::string schema::make_platform_event(const platform_event_definition& def, object_def& out) const {
  if (!ends_with(def.name, "__e") || !is_api_name(def.name))
    return "platform event name '" + def.name + "' must be an API name ending in __e";
  out = object_def{};
  out.name = def.name;
  out.kind = object_kind::platform_event;
  out.key_prefix = "e00";
  out.fields.push_back(system_field("CreatedDate", field_type::datetime));
  out.fields.push_back(system_field("CreatedById", field_type::reference, "User"));
  for (const auto& f : def.fields) {
    auto type = parse_field_type(f.type);
    if (!type) return "field " + def.name + "." + f.name + " has unknown type '" + f.type + "'";
    if (!is_api_name(f.name)) return "field name '" + f.name + "' of " + def.name + " is not an API name";
    if (out.find_field(f.name)) return "field " + def.name + "." + f.name + " is declared twice";
    out.fields.push_back(user_field(f.name, *type, f.required, 0, f.reference_to));
  }
  out.schema_id = make_schema_id(describe_fields(out));
  return {};
}

std::string schema::define(object_def def) {
  for (auto& o : objects_) {
    if (iequals(o->name, def.name)) {
      if (o->kind == object_kind::standard) return "cannot redefine standard object " + o->name;
      *o = std::move(def);
      return {};
    }
  }
  objects_.push_back(std::make_unique<object_def>(std::move(def)));
  return {};
}

std::string id_checksum(std::string_view id15) {
  static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
  std::string suffix;
  for (std::size_t chunk = 0; chunk < 3; ++chunk) {
    unsigned bits = 0;
    for (std::size_t i = 0; i < 5; ++i) {
      const std::size_t at = chunk * 5 + i;
      const char c = at < id15.size() ? id15[at] : '0';
      if (c >= 'A' && c <= 'Z') bits |= 1u << i;
    }
    suffix += alphabet[bits];
  }
  return suffix;
}

bool is_valid_id(std::string_view id) {
  if (id.size() != 15 && id.size() != 18) return false;
  if (!std::all_of(id.begin(), id.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }))
    return false;
  if (id.size() == 15) return true;
  std::string expected = id_checksum(id.substr(0, 15));
  return iequals(expected, id.substr(15));
}

std::string to_id18(std::string_view id) {
  if (!is_valid_id(id)) return {};
  return std::string(id.substr(0, 15)) + id_checksum(id.substr(0, 15));
}

std::string id_generator::next(std::string_view key_prefix) {
  static constexpr std::string_view base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  auto it = counters_.find(key_prefix);
  if (it == counters_.end()) it = counters_.emplace(std::string(key_prefix), 0).first;
  std::uint64_t n = ++it->second;
  std::string digits(9, '0');
  for (std::size_t i = digits.size(); i-- > 0 && n > 0; n /= 62) digits[i] = base62[n % 62];
  std::string id15 = std::string(key_prefix) + "5f0" + digits;
  return id15 + id_checksum(id15);
}

std::string make_schema_id(std::string_view text) {
  static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::uint64_t a = fnv1a(text, 0x5f3759dfull);
  std::uint64_t b = fnv1a(text, 0x9e3779b97f4a7c15ull);
  std::string out;
  for (int i = 0; i < 22; ++i) {
    std::uint64_t& source = i < 11 ? a : b;
    out += alphabet[source & 63u];
    source = (source >> 6) | (source << 58);
  }
  return out;
}

}  // namespace sfstream::emulator::data
