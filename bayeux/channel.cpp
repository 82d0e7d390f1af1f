#include "bayeux/channel.hpp"

#include <algorithm>

namespace sfstream::bayeux {
namespace {

error_info channel_error(std::string_view name, std::string text) {
  error_info e{make_error_code(errc::invalid_channel), {}};
  e.diag.server_text = std::move(text);
  e.diag.context = "validating channel \"" + std::string(name.substr(0, 200)) + "\"";
  return e;
}

bool is_name_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

bool is_segment_char(char c) noexcept {
  return is_name_char(c) || c == '-' || c == '.';
}

bool all_of(std::string_view s, bool (*pred)(char) noexcept) {
  return std::all_of(s.begin(), s.end(), [pred](char c) { return pred(c); });
}

bool ends_with(std::string_view s, std::string_view suffix) noexcept {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

std::string_view replay_key_of(std::string_view name) noexcept {
  return name.substr(0, std::min(name.find('?'), name.size()));
}

std::string_view channel::replay_key() const noexcept {
  return replay_key_of(name);
}

std::chrono::hours channel::retention() const noexcept {
  switch (kind) {
    case channel_kind::meta:
      return std::chrono::hours{0};
    case channel_kind::topic:
    case channel_kind::generic:
      return std::chrono::hours{24};
    case channel_kind::platform_event:
    case channel_kind::custom_platform_channel:
    case channel_kind::cdc_all:
    case channel_kind::cdc_standard:
    case channel_kind::cdc_custom:
    case channel_kind::cdc_custom_channel:
      return std::chrono::hours{72};
  }
  return std::chrono::hours{24};
}

std::string_view to_string(channel_kind kind) noexcept {
  switch (kind) {
    case channel_kind::meta:
      return "meta";
    case channel_kind::topic:
      return "topic";
    case channel_kind::generic:
      return "generic";
    case channel_kind::platform_event:
      return "platform_event";
    case channel_kind::custom_platform_channel:
      return "custom_platform_channel";
    case channel_kind::cdc_all:
      return "cdc_all";
    case channel_kind::cdc_standard:
      return "cdc_standard";
    case channel_kind::cdc_custom:
      return "cdc_custom";
    case channel_kind::cdc_custom_channel:
      return "cdc_custom_channel";
  }
  return "unknown";
}

result<channel> parse_channel(std::string_view name) {
  if (name.empty()) return channel_error(name, "channel name is empty");
  if (name.size() > 1024) return channel_error(name, "channel name is longer than 1024 characters");
  if (name.front() != '/') return channel_error(name, "channel names start with '/'");
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) {
      return channel_error(name, "channel names may not contain spaces or control characters");
    }
  }
  const std::string_view path = replay_key_of(name);
  const bool has_filter = path.size() != name.size();
  const std::string_view filter = has_filter ? name.substr(path.size() + 1) : std::string_view{};
  if (path.find('*') != std::string_view::npos) {
    return channel_error(name, "wildcard channels are not supported by Salesforce streaming");
  }
  if (path.find("//") != std::string_view::npos || path.back() == '/') {
    return channel_error(name, "channel names may not contain empty segments");
  }

  auto make = [&](channel_kind kind) {
    return channel{std::string(name), kind, std::string(filter)};
  };
  auto rest_after = [&](std::string_view prefix) { return path.substr(prefix.size()); };
  auto starts = [&](std::string_view prefix) {
    return path.size() > prefix.size() && path.substr(0, prefix.size()) == prefix;
  };

  if (has_filter && !starts("/topic/")) {
    return channel_error(name, "only PushTopic channels (/topic/...) accept a ?filter query");
  }

  if (starts("/meta/")) {
    if (!all_of(rest_after("/meta/"), is_segment_char)) {
      return channel_error(name, "meta channel names are /meta/<name>");
    }
    return make(channel_kind::meta);
  }
  if (starts("/topic/")) {
    const auto topic = rest_after("/topic/");
    if (!all_of(topic, is_name_char)) {
      return channel_error(name,
                           "PushTopic channels are /topic/<Name> with letters, digits and '_'");
    }
    if (has_filter && filter.empty()) {
      return channel_error(name, "the PushTopic filter after '?' is empty");
    }
    return make(channel_kind::topic);
  }
  if (starts("/u/")) {
    const auto rest = rest_after("/u/");
    if (!std::all_of(rest.begin(), rest.end(),
                     [](char c) { return is_segment_char(c) || c == '/'; })) {
      return channel_error(name,
                           "generic channels are /u/<path> with letters, digits, '_', '-', '.'");
    }
    return make(channel_kind::generic);
  }
  if (starts("/event/")) {
    const auto event = rest_after("/event/");
    if (!all_of(event, is_name_char)) {
      return channel_error(name,
                           "platform event channels are /event/<Name> with letters, digits, '_'");
    }
    if (ends_with(event, "__chn") && event.size() > 5) {
      return make(channel_kind::custom_platform_channel);
    }
    if (ends_with(event, "__e") && event.size() > 3) return make(channel_kind::platform_event);
    return channel_error(name, "platform event channels end in __e or __chn");
  }
  if (starts("/data/")) {
    const auto data = rest_after("/data/");
    if (!all_of(data, is_name_char)) {
      return channel_error(
          name, "change data capture channels are /data/<Name> with letters, digits, '_'");
    }
    if (data == "ChangeEvents") return make(channel_kind::cdc_all);
    if (ends_with(data, "__chn") && data.size() > 5) return make(channel_kind::cdc_custom_channel);
    if (ends_with(data, "__ChangeEvent") && data.size() > 13) {
      return make(channel_kind::cdc_custom);
    }
    if (ends_with(data, "ChangeEvent") && data.size() > 11 && !ends_with(data, "_ChangeEvent")) {
      return make(channel_kind::cdc_standard);
    }
    return channel_error(name,
                         "change data capture channels are /data/ChangeEvents, "
                         "/data/<Object>ChangeEvent, /data/<Custom>__ChangeEvent or "
                         "/data/<Name>__chn");
  }
  return channel_error(name,
                       "unknown channel prefix: expected /topic/, /u/, /event/, /data/ or /meta/");
}

}  // namespace sfstream::bayeux
