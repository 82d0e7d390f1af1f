#include "emulator/cometd/request_fields.hpp"

#include <cctype>
#include <charconv>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace sfstream::emulator::cometd {

std::optional<int> parse_version_tenths(std::string_view text) {
  auto dot = text.find('.');
  std::string_view major_text = text.substr(0, dot);
  int major = 0;
  auto [p, ec] = std::from_chars(major_text.data(), major_text.data() + major_text.size(), major);
  if (major_text.empty() || ec != std::errc{} || p != major_text.data() + major_text.size() ||
      major > 10000) {
    return std::nullopt;
  }
  int minor = 0;
  if (dot != std::string_view::npos) {
    std::string_view minor_text = text.substr(dot + 1);
    if (minor_text.empty() || minor_text.size() > 3) return std::nullopt;
    for (char c : minor_text) {
      if (c < '0' || c > '9') return std::nullopt;
    }
    minor = minor_text[0] - '0';
  }
  return major * 10 + minor;
}

std::optional<std::string> cookie_value(const transport::header_list& headers,
                                        std::string_view name) {
  for (const auto& [header, value] : headers) {
    if (header.size() != 6 || (header[0] != 'C' && header[0] != 'c') ||
        header.substr(1) != "ookie") {
      continue;
    }
    std::string_view rest = value;
    while (!rest.empty()) {
      auto semi = rest.find(';');
      std::string_view pair = rest.substr(0, semi);
      rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
      while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
      auto eq = pair.find('=');
      if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
        return std::string(pair.substr(eq + 1));
      }
    }
  }
  return std::nullopt;
}

std::string bearer_token(const transport::http_request& request) {
  const std::string* header = transport::find_header(request.headers, "Authorization");
  if (header == nullptr) {
    return {};
  }
  std::string_view value = *header;
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  auto space = value.find(' ');
  if (space != std::string_view::npos) {
    std::string scheme(value.substr(0, space));
    for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (scheme == "bearer" || scheme == "oauth") {
      value.remove_prefix(space + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    }
  }
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  return std::string(value);
}

std::string percent_decode_lenient(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
      };
      int hi = hex(text[i + 1]);
      int lo = hex(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

std::string java_map(const rapidjson::Value& map) {
  std::string out = "{";
  bool first = true;
  for (auto it = map.MemberBegin(); it != map.MemberEnd(); ++it) {
    if (!first) out += ", ";
    first = false;
    out.append(it->name.GetString(), it->name.GetStringLength());
    out += '=';
    if (it->value.IsNull()) {
      out += "null";
    } else if (it->value.IsString()) {
      out.append(it->value.GetString(), it->value.GetStringLength());
    } else {
      rapidjson::StringBuffer sb;
      rapidjson::Writer<rapidjson::StringBuffer> w(sb);
      it->value.Accept(w);
      out += sb.GetString();
    }
  }
  out += '}';
  return out;
}

std::optional<int> endpoint_version(std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  std::string_view rest = path.size() > 8 ? path.substr(8) : std::string_view{};
  return parse_version_tenths(rest.substr(0, rest.find('/')));
}

}  // namespace sfstream::emulator::cometd
