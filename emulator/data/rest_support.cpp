#include "emulator/data/rest_support.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

namespace sfstream::emulator::data {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

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

}  // namespace sfstream::emulator::data
