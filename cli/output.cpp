#include "cli/output.hpp"
#include "cli/commands.hpp"

#include "sfstream/detail/json_text.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <optional>

#include <rapidjson/document.h>

#include "sfstream/detail/redact.hpp"

namespace sfstream::cli {

namespace {

std::mutex& output_mutex() {
  static std::mutex m;
  return m;
}

std::vector<std::string>& secrets() {
  static std::vector<std::string> s;
  return s;
}

std::string masked(std::string_view text) {
  std::lock_guard lock{output_mutex()};
  return detail::redact(text, secrets());
}

std::string replay_text(const event& e) {
  return e.replay_id() ? std::to_string(*e.replay_id()) : std::string("none");
}

/// A short rendering of a JSON object's members, e.g. "Name=Acme, Industry=Energy".
std::string members_text(const std::string& json, std::size_t limit = 4) {
  rapidjson::Document d;
  d.Parse(json.c_str(), json.size());
  if (d.HasParseError() || !d.IsObject()) return {};
  std::string out;
  std::size_t n = 0;
  for (auto it = d.MemberBegin(); it != d.MemberEnd() && n < limit; ++it) {
    const std::string_view name(it->name.GetString(), it->name.GetStringLength());
    if (name == "attributes" || name == "ChangeEventHeader" || name == "CreatedById" ||
        name == "CreatedDate") {
      continue;
    }
    std::string value;
    if (it->value.IsString()) {
      value.assign(it->value.GetString(), it->value.GetStringLength());
    } else if (it->value.IsNull()) {
      value = "null";
    } else if (it->value.IsBool()) {
      value = it->value.GetBool() ? "true" : "false";
    } else if (it->value.IsNumber()) {
      value = it->value.IsInt64() ? std::to_string(it->value.GetInt64())
                                  : std::to_string(it->value.GetDouble());
    } else {
      value = "{…}";
    }
    if (!out.empty()) out += ", ";
    out += std::string(name) + "=" + value;
    ++n;
  }
  return out;
}

}  // namespace

std::string json_string(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  detail::append_json_string(out, text);
  return out;
}

std::string channel_json_of(std::string_view channel) {
  std::string out;
  if (classify_bytes(channel).non_ascii) {
    detail::append_json_string(out, valid_utf8(channel));
  } else {
    detail::append_json_string(out, channel);
  }
  return out;
}

void append_event_line(std::string& out, const event& e, json_line_fix* fix,
                       std::string_view channel_json) {
  append_event_json(out, e, fix, channel_json);
}

std::string event_line(const event& e, json_line_fix* fix) {
  std::string out;
  out.reserve(e.data_json().size() + e.channel().size() + 48);
  append_event_line(out, e, fix);
  return out;
}

namespace {

std::string time_json(const std::optional<std::chrono::system_clock::time_point>& t) {
  if (!t) return "null";
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t->time_since_epoch()).count();
  const auto seconds = static_cast<std::time_t>(ms / 1000 - (ms % 1000 < 0 ? 1 : 0));
  const auto millis = static_cast<int>((ms % 1000 + 1000) % 1000);
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  char text[96];
  std::snprintf(text, sizeof text, "\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return text;
}

}  // namespace

std::string gap_json(const gap_record& gap) {
  std::string out = "{\"gap\":{\"channel\":" + json_string(valid_utf8(gap.channel));
  out += ",\"reason\":" + json_string(to_string(gap.cause));
  out += ",\"lastReplayId\":" +
         (gap.last_replay_id ? std::to_string(*gap.last_replay_id) : std::string("null"));
  out += ",\"lastEventTime\":" + time_json(gap.last_event_time);
  out += ",\"since\":" + time_json(gap.since);
  out += ",\"until\":" + time_json(gap.until);
  out += ",\"policy\":" + json_string(to_string(gap.policy_taken));
  out += ",\"resumedFrom\":" + (gap.policy_taken == replay_policy::fail
                                    ? std::string("null")
                                    : std::to_string(gap.resumed_from));
  out += "}}";
  return out;
}

std::string rejected_json(std::string_view channel, const error_info& why) {
  return "{\"rejected\":{\"channel\":" + json_string(valid_utf8(channel)) +
         ",\"error\":" + json_string(valid_utf8(describe(why))) + "}}";
}

void line_writer::append(std::string_view line) {
  if (error_ != 0) return;
  buffer_.append(line);
  buffer_.push_back('\n');
}

void line_writer::append_event(const event& e, json_line_fix* fix, std::string_view channel_json) {
  if (error_ != 0) return;
  append_event_line(buffer_, e, fix, channel_json);
  buffer_.push_back('\n');
}

void line_writer::mark(printed_mark mark) {
  if (error_ != 0) return;
  marks_.emplace_back(buffer_.size(), std::move(mark));
}

std::vector<printed_mark> line_writer::flush() {
  std::size_t written = 0;
  while (error_ == 0 && written < buffer_.size()) {
    const ::ssize_t n = ::write(fd_, buffer_.data() + written, buffer_.size() - written);
    if (n > 0) {
      written += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // A non-blocking descriptor whose reader is slow: wait for room, as a blocking write would.
      ::pollfd p{fd_, POLLOUT, 0};
      ::poll(&p, 1, -1);
    } else {
      error_ = n < 0 ? errno : EIO;
    }
  }
  std::vector<printed_mark> done;
  for (auto& [end, m] : marks_) {
    if (end <= written) done.push_back(std::move(m));
  }
  marks_.clear();  // after a failure the rest can never be written
  buffer_.clear();
  return done;
}

std::string summarize(const event& e) {
  error_info why;
  switch (e.kind()) {
    case channel_kind::topic: {
      auto p = e.as_pushtopic(&why);
      if (why) break;
      return "PushTopic " + e.channel() + ": " + p.type + " " + members_text(p.sobject_json) +
             " (replay " + replay_text(e) + ")";
    }
    case channel_kind::generic: {
      auto g = e.as_generic(&why);
      if (why) break;
      return "generic " + e.channel() + ": payload " + json_string(g.payload) + " (replay " +
             replay_text(e) + ")";
    }
    case channel_kind::platform_event: {
      auto p = e.as_platform_event(&why);
      if (why) break;
      return "platform event " + e.channel() + ": " + members_text(p.payload_json) + " (replay " +
             replay_text(e) + ")";
    }
    case channel_kind::change_data_capture: {
      auto c = e.as_change(&why);
      if (why) break;
      std::string ids;
      for (const auto& id : c.record_ids) ids += (ids.empty() ? "" : ",") + id;
      const std::string fields = members_text(c.payload_json);
      return "change event " + e.channel() + ": " + c.change_type + " " + c.entity_name + " " +
             ids + (fields.empty() ? std::string() : " " + fields) + " (replay " + replay_text(e) +
             ")";
    }
    case channel_kind::other:
      break;
  }
  return "event on " + e.channel() + " (replay " + replay_text(e) + ")";
}

void print_line(std::string_view line) {
  std::lock_guard lock{output_mutex()};
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

void print_error(std::string_view line) {
  const std::string text = "sfstream: " + masked(line) + "\n";
  std::lock_guard lock{output_mutex()};
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

void print_note(std::string_view line) {
  const std::string text = masked(line) + "\n";
  std::lock_guard lock{output_mutex()};
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

void add_secret(std::string secret) {
  // Masking a 1-3 character "secret" would mangle ordinary words in every line; no real
  // password, token or key is that short.
  if (secret.size() < 4) return;
  std::lock_guard lock{output_mutex()};
  secrets().push_back(std::move(secret));
}

logger stderr_logger(bool verbose) {
  logger log;
  log.min_level = verbose ? log_level::debug : log_level::warning;
  log.sink = [](log_level level, std::string_view text) {
    print_error(std::string(to_string(level)) + ": " + std::string(text));
  };
  return log;
}

int exit_code_for(const error_info& error) {
  if (!error) return 0;
  if (error.code.category() != category()) return 1;
  const int v = error.code.value();
  if (v >= 200 && v < 300) return 3;
  if (v >= 100 && v < 200) return 2;
  // A network failure that a retry could have fixed ended the run only because retries were
  // given up; one that no retry can fix (a certificate that fails verification) is a plain
  // failure with its own advice.
  if (v >= 400 && v < 500) return is_retryable(error) || error.code == errc::retries_exhausted ? 6 : 1;
  switch (static_cast<errc>(v)) {
    case errc::subscription_rejected:
      return 4;
    case errc::replay_gap:
      return 5;
    case errc::retries_exhausted:
      return 6;
    case errc::output_failed:
      return 8;
    case errc::replay_store_io:
      return 10;
    case errc::cancelled:
      return 130;
    default:
      return 1;
  }
}

std::string describe(const error_info& error) {
  std::string out;
  const auto& code = error.diag.server_code;
  const auto& text = error.diag.server_text;
  // Salesforce fault strings often start with their code ("INVALID_LOGIN: Invalid ...").
  const bool text_has_code = !code.empty() && text.compare(0, code.size(), code) == 0;
  if (!code.empty() && !text_has_code) out = code + ": ";
  if (!text.empty()) out += text + " ";
  out += "(" + (error.code ? error.code.message() : std::string("no error"));
  if (!error.diag.context.empty()) out += "; " + error.diag.context;
  out += ")";
  return out;
}

std::string advice_for(const error_info& error) {
  if (is_certificate_error(error)) {
    return "The server's TLS certificate could not be verified: if it is signed by a CA the "
           "system does not trust (a proxy's, a private CA, the emulator's), give that CA's "
           "certificate with --ca-file PEM";
  }
  if (error.code == errc::unsupported_api_version ||
      error.code == errc::auth_unsupported_api_version) {
    return "Choose a supported --api-version (37.0 or later, e.g. 59.0)";
  }
  return {};
}

int report_failure(const std::string& what, const error_info& error) {
  const std::string advice = advice_for(error);
  print_error(what + ": " + describe(error) + (advice.empty() ? "" : ". " + advice));
  const int code = exit_code_for(error);
  return code == exit_ok ? exit_failure : code;
}

}  // namespace sfstream::cli
