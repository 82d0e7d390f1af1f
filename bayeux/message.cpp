#include "bayeux/message.hpp"
#include "bayeux/json_scan.hpp"
#include "sfstream/detail/json_text.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <cstring>


#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace sfstream::bayeux {
namespace {

// The reply parser's input: a MemoryStream of a type of its own, so that the string fast path
// below serves this parser alone.
struct reply_stream : rapidjson::MemoryStream {
  using MemoryStream::MemoryStream;
};

}  // namespace
}  // namespace sfstream::bayeux

namespace rapidjson {

// The reader copies a string's characters one at a time, which is most of the cost of a reply
// (event payloads are long strings). Its optional fast path, which it calls before each
// character it would copy, is filled in for the reply stream: the plain run is copied at once.
// Escapes, the closing quote and errors are then handled by the reader itself as before, so
// what is accepted, refused and decoded does not change.
template <>
template <>
inline void GenericReader<UTF8<>, UTF8<>, CrtAllocator>::ScanCopyUnescapedString<
    sfstream::bayeux::reply_stream, GenericReader<UTF8<>, UTF8<>, CrtAllocator>::StackStream<char>>(
    sfstream::bayeux::reply_stream& is, StackStream<char>& os) {
  const char* const run_end = sfstream::bayeux::plain_run_end(is.src_, is.end_);
  // A run longer than the reader's size type is copied in pieces (the reader calls again).
  const auto length =
      static_cast<SizeType>(std::min<std::ptrdiff_t>(run_end - is.src_, std::ptrdiff_t{1} << 30));
  if (length == 0) return;
  std::memcpy(os.Push(length), is.src_, length);
  is.src_ += length;
}

}  // namespace rapidjson

namespace sfstream::bayeux {
namespace {

// Iterative, so that hostile nesting cannot exhaust the stack; numbers as their raw text, so
// that ids and replay ids are read exactly (64-bit) and an out-of-range value is noticed.
constexpr unsigned reply_flags =
    rapidjson::kParseIterativeFlag | rapidjson::kParseNumbersAsStringsFlag;

error_info protocol_error(std::string text) {
  error_info e{make_error_code(errc::protocol_error), {}};
  e.diag.server_text = std::move(text);
  e.diag.context = "parsing a Bayeux reply";
  return e;
}

bool is_ws(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// `raw` (a valid JSON value) written compactly, numbers as RapidJSON writes them. Used only for
// the rare values the session reads as text although they are not strings.
std::string compact(std::string_view raw) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(raw.data(), raw.size());
  if (doc.HasParseError()) return std::string(raw);
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  doc.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::optional<std::int64_t> int64_of(std::string_view text) {
  std::int64_t out = 0;
  const char* last = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), last, out);
  if (ec == std::errc{} && ptr == last && !text.empty()) return out;
  return std::nullopt;
}

// The decimal text of a numeric id: integers as sent, anything else ("-0", fractions,
// exponents, integers beyond 64 bits) as a JSON writer prints the number.
std::string number_text(std::string_view raw) {
  if (raw == "-0") return "0";
  if (raw.find_first_of(".eE") == std::string_view::npos) {
    if (int64_of(raw)) return std::string(raw);
    std::uint64_t unsigned_value = 0;
    const char* last = raw.data() + raw.size();
    auto [ptr, ec] = std::from_chars(raw.data(), last, unsigned_value);
    if (ec == std::errc{} && ptr == last) return std::string(raw);
  }
  return compact(raw);
}

// One SAX pass over a reply. Records per message the typed fields the session reads and the
// spans of the message object and of its first `data` value. Relies on the iterative parser's
// order of events over a memory stream: at StartObject/StartArray Tell() is the offset of the
// bracket, at EndObject/EndArray the offset of the closing bracket (not yet consumed), at a
// key or scalar the offset just after its last character.
//
// Field rules, as a DOM reader walking members in order would apply them: later duplicates
// of a message member override earlier ones; inside data, ext and their children only the
// first member of a looked-up name counts; keys compare after unescaping.
//
// `Position` is where the reader is: RapidJSON's stream, or the scanner of json_scan.hpp, which
// reports the same offsets.
template <class Position>
class reply_reader {
 public:
  reply_reader(std::string_view body, const Position& stream, std::vector<message>& out)
      : body_(body), stream_(stream), out_(out) {}

  bool Null() { return scalar(value_kind::null, {}); }
  bool Bool(bool b) { return scalar(b ? value_kind::true_value : value_kind::false_value, {}); }
  // Numbers arrive as RawNumber (numbers as strings); these complete RapidJSON's handler
  // interface and are never called.
  bool Int(int) { return true; }
  bool Uint(unsigned) { return true; }
  bool Int64(std::int64_t) { return true; }
  bool Uint64(std::uint64_t) { return true; }
  bool Double(double) { return true; }
  bool RawNumber(const char* text, rapidjson::SizeType length, bool) {
    return scalar(value_kind::number, std::string_view(text, length));
  }
  bool String(const char* text, rapidjson::SizeType length, bool) {
    return scalar(value_kind::string, std::string_view(text, length));
  }
  bool StartObject() { return start(true); }
  bool StartArray() { return start(false); }
  bool EndObject(rapidjson::SizeType) { return end(); }
  bool EndArray(rapidjson::SizeType) { return end(); }
  bool Key(const char* text, rapidjson::SizeType length, bool) {
    key(std::string_view(text, length));
    return true;
  }

  /// True for a container none of whose contents the reader looks at (a payload, say): the
  /// scanner then only checks them. Its bracket offsets still come (a capture needs them).
  bool skip_children() const noexcept { return depth_ >= 2 && top() == role::other; }

  /// The first shape or field problem, after the JSON itself was found valid; "" when none.
  std::string problem() const {
    if (root_scalar_) return "the reply is neither a JSON array nor an object";
    if (not_object_) return "reply element " + std::to_string(*not_object_) + " is not an object";
    return field_error_;
  }

 private:
  enum class value_kind { null, true_value, false_value, number, string };
  enum class role : unsigned char {
    other,
    root_array,
    message,
    advice,
    ext,
    ext_sfdc,
    data,
    data_event
  };
  enum class slot : unsigned char {
    none,
    channel,
    id,
    client_id,
    successful,
    error,
    subscription,
    advice,
    ext,
    data,
    reconnect,
    interval,
    timeout,
    multiple_clients,
    sfdc,
    failure_reason,
    event,
    replay_id
  };
  struct frame {
    role what = role::other;
    bool seen = false;  ///< The one member this frame looks up was met (first one counts).
  };
  // Every role lies within the first five levels; deeper frames are counted, not recorded.
  static constexpr std::size_t tracked = 8;

  role top() const noexcept {
    if (depth_ == 0 || depth_ > tracked) return role::other;
    return frames_[depth_ - 1].what;
  }

  void push(role what) {
    if (depth_ < tracked) frames_[depth_] = frame{what, false};
    ++depth_;
  }

  message& current() { return out_.back(); }

  void fail(std::string what) {
    if (!field_error_.empty()) return;
    field_error_ = "reply element " + std::to_string(out_.size() - 1) + ": " + what;
  }

  // The text of the scalar just read, from the key before it.
  std::string_view scalar_text() const {
    std::size_t pos = key_end_;
    while (pos < body_.size() && is_ws(body_[pos])) ++pos;
    if (pos < body_.size() && body_[pos] == ':') ++pos;
    while (pos < body_.size() && is_ws(body_[pos])) ++pos;
    const std::size_t end = stream_.Tell();
    return body_.substr(pos, end > pos ? end - pos : 0);
  }

  void key(std::string_view name) {
    pending_ = slot::none;
    key_end_ = stream_.Tell();
    if (depth_ > tracked) return;
    frame& f = frames_[depth_ - 1];
    switch (f.what) {
      case role::message:
        if (name == "channel")
          pending_ = slot::channel;
        else if (name == "id")
          pending_ = slot::id;
        else if (name == "clientId")
          pending_ = slot::client_id;
        else if (name == "successful")
          pending_ = slot::successful;
        else if (name == "error")
          pending_ = slot::error;
        else if (name == "subscription")
          pending_ = slot::subscription;
        else if (name == "advice")
          pending_ = slot::advice;
        else if (name == "ext")
          pending_ = slot::ext;
        else if (name == "data")
          pending_ = slot::data;
        break;
      case role::advice:
        if (name == "reconnect")
          pending_ = slot::reconnect;
        else if (name == "interval")
          pending_ = slot::interval;
        else if (name == "timeout")
          pending_ = slot::timeout;
        else if (name == "multiple-clients")
          pending_ = slot::multiple_clients;
        break;
      case role::ext:
        first_member(f, name, "sfdc", slot::sfdc);
        break;
      case role::ext_sfdc:
        first_member(f, name, "failureReason", slot::failure_reason);
        break;
      case role::data:
        first_member(f, name, "event", slot::event);
        break;
      case role::data_event:
        first_member(f, name, "replayId", slot::replay_id);
        break;
      case role::other:
      case role::root_array:
        break;
    }
  }

  void first_member(frame& f, std::string_view name, std::string_view wanted, slot s) {
    if (f.seen || name != wanted) return;
    f.seen = true;
    pending_ = s;
  }

  bool scalar(value_kind kind, std::string_view text) {
    const slot s = std::exchange(pending_, slot::none);
    if (depth_ == 0) {
      root_scalar_ = true;
      return true;
    }
    const role r = top();
    if (r == role::root_array) {
      element_is_not_object();
      return true;
    }
    if (s == slot::none) return true;
    message& m = current();
    const bool is_string = kind == value_kind::string;
    const bool is_null = kind == value_kind::null;
    const bool is_bool = kind == value_kind::true_value || kind == value_kind::false_value;
    switch (s) {
      case slot::channel:
        if (is_string) {
          m.channel.assign(text);
        } else {
          fail("\"channel\" is not a string");
        }
        break;
      case slot::id:
        if (is_string) {
          m.id.emplace(text);
        } else if (kind == value_kind::number) {
          m.id = number_text(text);
        } else if (!is_null) {
          fail("\"id\" is neither a string nor a number");
        }
        break;
      case slot::client_id:
        if (is_string) {
          m.client_id.assign(text);
        } else if (!is_null) {
          fail("\"clientId\" is not a string");
        }
        break;
      case slot::successful:
        if (is_bool) {
          m.successful = kind == value_kind::true_value;
        } else {
          fail("\"successful\" is not a boolean");
        }
        break;
      case slot::error:
        if (is_string) {
          m.error.assign(text);
        } else if (!is_null) {
          m.error = compact(scalar_text());
        }
        break;
      case slot::subscription:
        if (is_string) m.subscription.assign(text);
        break;
      case slot::advice:
        if (!is_null) fail("\"advice\" is not an object");
        break;
      case slot::ext:
        if (!is_null) m.ext.assign(scalar_text());
        break;
      case slot::data:
        if (!m.has_data) {
          const auto t = scalar_text();
          m.data.begin = static_cast<std::size_t>(t.data() - body_.data());
          m.data.end = m.data.begin + t.size();
        }
        m.has_data = true;
        break;
      case slot::reconnect:
        if (is_string) {
          if (text == "retry") advice_.reconnect = reconnect_advice::retry;
          if (text == "handshake") advice_.reconnect = reconnect_advice::handshake;
          if (text == "none") advice_.reconnect = reconnect_advice::none;
        }
        break;
      case slot::interval:
        advice_.interval = is_string || kind == value_kind::number ? int64_of(text) : std::nullopt;
        break;
      case slot::timeout:
        advice_.timeout = is_string || kind == value_kind::number ? int64_of(text) : std::nullopt;
        break;
      case slot::multiple_clients:
        if (is_bool) advice_.multiple_clients = kind == value_kind::true_value;
        break;
      case slot::failure_reason:
        if (is_string) m.failure_reason.assign(text);
        break;
      case slot::replay_id:
        // Salesforce sends a JSON integer; anything else (a string included) is no position.
        m.has_replay_id = true;
        m.replay_id = kind == value_kind::number ? int64_of(text) : std::nullopt;
        break;
      case slot::sfdc:
      case slot::event:
      case slot::none:
        break;
    }
    return true;
  }

  bool start(bool is_object) {
    const slot s = std::exchange(pending_, slot::none);
    const std::size_t at = stream_.Tell();
    if (depth_ == 0) {
      if (is_object) {
        open_message(at);
      } else {
        push(role::root_array);
      }
      return true;
    }
    const role r = top();
    if (r == role::root_array) {
      if (is_object) {
        open_message(at);
      } else {
        element_is_not_object();
        push(role::other);
      }
      return true;
    }
    role next = role::other;
    switch (s) {
      case slot::channel:
        fail("\"channel\" is not a string");
        break;
      case slot::id:
        fail("\"id\" is neither a string nor a number");
        break;
      case slot::client_id:
        fail("\"clientId\" is not a string");
        break;
      case slot::successful:
        fail("\"successful\" is not a boolean");
        break;
      case slot::error:
      case slot::ext:
        capture(s, at);
        if (s == slot::ext && is_object) next = role::ext;
        break;
      case slot::advice:
        if (is_object) {
          advice_ = {};
          next = role::advice;
        } else {
          fail("\"advice\" is not an object");
        }
        break;
      case slot::data:
        if (!current().has_data) capture(s, at);
        current().has_data = true;
        if (is_object) next = role::data;
        break;
      case slot::interval:
        advice_.interval.reset();
        break;
      case slot::timeout:
        advice_.timeout.reset();
        break;
      case slot::sfdc:
        if (is_object) next = role::ext_sfdc;
        break;
      case slot::event:
        if (is_object) next = role::data_event;
        break;
      case slot::replay_id:
        current().has_replay_id = true;
        current().replay_id.reset();
        break;
      case slot::subscription:
      case slot::reconnect:
      case slot::multiple_clients:
      case slot::failure_reason:
      case slot::none:
        break;
    }
    push(next);
    return true;
  }

  bool end() {
    const std::size_t after = stream_.Tell() + 1;  // The bracket is not consumed yet.
    if (capture_ != slot::none && depth_ == capture_depth_) {
      message& m = current();
      const std::string_view text = body_.substr(capture_begin_, after - capture_begin_);
      if (capture_ == slot::data) {
        m.data = text_span{capture_begin_, after};
      } else if (capture_ == slot::ext) {
        m.ext.assign(text);
      } else {
        m.error = compact(text);
      }
      capture_ = slot::none;
    }
    const role r = top();
    if (r == role::advice) current().advice = advice_;
    if (r == role::message) current().object.end = after;
    if (depth_ > 0) --depth_;
    return true;
  }

  void open_message(std::size_t at) {
    out_.emplace_back();
    out_.back().object.begin = at;
    push(role::message);
  }

  void capture(slot s, std::size_t at) {
    capture_ = s;
    capture_begin_ = at;
    capture_depth_ = depth_ + 1;
  }

  void element_is_not_object() {
    if (!not_object_) not_object_ = elements_before_ + out_.size();
    ++elements_before_;
  }

  std::string_view body_;
  const Position& stream_;
  std::vector<message>& out_;
  std::array<frame, tracked> frames_{};
  std::size_t depth_ = 0;
  slot pending_ = slot::none;
  std::size_t key_end_ = 0;
  slot capture_ = slot::none;
  std::size_t capture_begin_ = 0;
  std::size_t capture_depth_ = 0;
  bayeux::advice advice_;
  bool root_scalar_ = false;
  std::size_t elements_before_ = 0;  ///< Non-object elements met so far.
  std::optional<std::size_t> not_object_;
  std::string field_error_;
};

error_info parse_into(std::string_view body, bool copy_text, std::vector<message>& out,
                      bool fast = true) {
  out.clear();
  if (body.empty()) return protocol_error("the reply body is empty");
  if (fast) {
    // The fast path; what it is unsure of (an error above all) RapidJSON reads again, so that
    // its diagnostics name the problem.
    json_scanner scanner(body);
    reply_reader<json_scanner> handler(body, scanner, out);
    if (scanner.scan(handler) == scan_result::ok) {
      if (auto what = handler.problem(); !what.empty()) return protocol_error(std::move(what));
      if (copy_text) {
        for (auto& m : out) m.json.assign(m.object.of(body));
      }
      return {};
    }
    out.clear();
  }
  reply_stream stream(body.data(), body.size());
  reply_reader<reply_stream> handler(body, stream, out);
  // One reader per thread: its stack is kept between replies, so a reply costs no allocation
  // of parser state once the first ones have sized it. A huge body (whose strings could grow
  // that stack for good) gets a reader of its own.
  constexpr std::size_t large_body = std::size_t{1} << 20;
  thread_local rapidjson::Reader shared_reader;
  rapidjson::Reader own_reader;
  rapidjson::Reader& reader = body.size() > large_body ? own_reader : shared_reader;
  const rapidjson::ParseResult ok = reader.Parse<reply_flags>(stream, handler);
  if (ok.IsError()) {
    return protocol_error(std::string("the reply is not valid JSON: ") +
                          rapidjson::GetParseError_En(ok.Code()) + " at offset " +
                          std::to_string(ok.Offset()));
  }
  if (auto what = handler.problem(); !what.empty()) return protocol_error(std::move(what));
  if (copy_text) {
    for (auto& m : out) m.json.assign(m.object.of(body));
  }
  return {};
}

result<std::vector<message>> parse(std::string_view body, bool copy_text) {
  std::vector<message> out;
  if (auto bad = parse_into(body, copy_text, out)) return bad;
  return out;
}

}  // namespace

bool message::is_meta() const noexcept {
  return channel.size() >= 6 && std::string_view(channel).substr(0, 6) == "/meta/";
}

result<std::vector<message>> parse_reply(std::string_view body) {
  return parse(body, true);
}

result<std::vector<message>> parse_reply_spans(std::string_view body) {
  return parse(body, false);
}

error_info parse_reply_spans(std::string_view body, std::vector<message>& out) {
  return parse_into(body, false, out);
}

result<std::vector<message>> parse_reply_with_rapidjson(std::string_view body) {
  std::vector<message> out;
  if (auto bad = parse_into(body, true, out, false)) return bad;
  return out;
}

namespace {

void append_field(std::string& out, std::string_view key, std::string_view value) {
  if (out.size() > 1) out.push_back(',');
  detail::append_json_string(out, key);
  out.push_back(':');
  detail::append_json_string(out, value);
}

}  // namespace

std::string encode_handshake(std::string_view id) {
  std::string out = "{";
  append_field(out, "channel", "/meta/handshake");
  append_field(out, "version", "1.0");
  append_field(out, "minimumVersion", "1.0");
  out += R"(,"supportedConnectionTypes":["long-polling"],"ext":{"replay":true})";
  append_field(out, "id", id);
  out.push_back('}');
  return out;
}

std::string encode_connect(std::string_view client_id, std::string_view id, bool timeout_zero) {
  std::string out = "{";
  append_field(out, "channel", "/meta/connect");
  append_field(out, "clientId", client_id);
  append_field(out, "connectionType", "long-polling");
  if (timeout_zero) out += R"(,"advice":{"timeout":0})";
  append_field(out, "id", id);
  out.push_back('}');
  return out;
}

std::string encode_subscribe(std::string_view client_id, std::string_view channel,
                             std::string_view replay_key, std::int64_t replay_from,
                             std::string_view id) {
  std::string out = "{";
  append_field(out, "channel", "/meta/subscribe");
  append_field(out, "clientId", client_id);
  append_field(out, "subscription", channel);
  out += R"(,"ext":{"replay":{)";
  detail::append_json_string(out, replay_key);
  out.push_back(':');
  out += std::to_string(replay_from);
  out += "}}";
  append_field(out, "id", id);
  out.push_back('}');
  return out;
}

std::string encode_unsubscribe(std::string_view client_id, std::string_view channel,
                               std::string_view id) {
  std::string out = "{";
  append_field(out, "channel", "/meta/unsubscribe");
  append_field(out, "clientId", client_id);
  append_field(out, "subscription", channel);
  append_field(out, "id", id);
  out.push_back('}');
  return out;
}

std::string encode_disconnect(std::string_view client_id, std::string_view id) {
  std::string out = "{";
  append_field(out, "channel", "/meta/disconnect");
  append_field(out, "clientId", client_id);
  append_field(out, "id", id);
  out.push_back('}');
  return out;
}

std::string encode_batch(std::span<const std::string> messages) {
  std::size_t size = 2;
  for (const auto& m : messages) size += m.size() + 1;
  std::string out;
  out.reserve(size);
  out.push_back('[');
  for (std::size_t i = 0; i < messages.size(); ++i) {
    if (i != 0) out.push_back(',');
    out += messages[i];
  }
  out.push_back(']');
  return out;
}

}  // namespace sfstream::bayeux
