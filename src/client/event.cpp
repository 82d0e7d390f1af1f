// Typed, read-only views of a received event. The raw message text is the source of truth:
// JSON sub-objects handed to the user (data, sobject, payload, header) are cut out of it byte
// for byte, never re-serialised, so numbers and field order stay exactly as Salesforce sent them.
#include "sfstream/event.hpp"

#include <array>
#include <initializer_list>
#include <string_view>
#include <utility>

#include <rapidjson/document.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

namespace sfstream {
namespace {

// Both the DOM and the span finder parse iteratively: a hostile, deeply nested message cannot
// exhaust the stack.
constexpr unsigned parse_flags = rapidjson::kParseIterativeFlag;

bool has_prefix_and_name(std::string_view channel, std::string_view prefix) noexcept {
  return channel.size() > prefix.size() && channel.substr(0, prefix.size()) == prefix;
}

// Finds the raw text of the value at a path of object keys (first occurrence of each key), in
// one SAX pass over the whole text so that malformed JSON anywhere is still refused. Relies on
// the iterative parser's order: a key is reported after its closing quote, a scalar after its
// last character, and an EndObject/EndArray before its closing bracket is consumed.
class raw_value_finder : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, raw_value_finder> {
 public:
  raw_value_finder(std::string_view text, const rapidjson::MemoryStream& stream,
                   std::initializer_list<std::string_view> path)
      : text_(text), stream_(stream), path_(path) {}

  bool Default() {
    if (target_next_) finish(stream_.Tell());
    clear_pending();
    return true;
  }
  bool StartObject() { return on_start(true); }
  bool StartArray() { return on_start(false); }
  bool EndObject(rapidjson::SizeType) { return on_end(); }
  bool EndArray(rapidjson::SizeType) { return on_end(); }
  bool Key(const char* name, rapidjson::SizeType length, bool) {
    clear_pending();
    if (found_ || in_target_ || frames_.empty()) return true;
    const frame& top = frames_.back();
    const std::size_t level = frames_.size();
    if (!top.is_object || !top.on_path || level > path_.size()) return true;
    if (std::string_view(name, length) != path_.begin()[level - 1]) return true;
    if (level == path_.size()) {
      target_next_ = true;
      begin_ = value_start(stream_.Tell());
    } else {
      on_path_next_ = true;
    }
    return true;
  }

  std::optional<std::string_view> result() const {
    if (!found_) return std::nullopt;
    return text_.substr(begin_, end_ - begin_);
  }

 private:
  struct frame {
    bool is_object;
    bool on_path;
  };

  bool on_start(bool is_object) {
    const bool root = frames_.empty();
    if (target_next_) {
      in_target_ = true;
      target_level_ = frames_.size();
    }
    frames_.push_back({is_object, is_object && (root || on_path_next_)});
    clear_pending();
    return true;
  }

  bool on_end() {
    if (frames_.empty()) return false;
    frames_.pop_back();
    if (in_target_ && frames_.size() == target_level_) {
      // The iterative parser reports the end before consuming the bracket.
      finish(stream_.Tell() + 1);
      in_target_ = false;
    }
    return true;
  }

  void finish(std::size_t end) {
    if (end > text_.size() || end < begin_) return;
    end_ = end;
    found_ = true;
  }

  void clear_pending() {
    target_next_ = false;
    on_path_next_ = false;
  }

  std::size_t value_start(std::size_t pos) const {
    auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    while (pos < text_.size() && is_space(text_[pos])) ++pos;
    if (pos < text_.size() && text_[pos] == ':') ++pos;
    while (pos < text_.size() && is_space(text_[pos])) ++pos;
    return pos;
  }

  std::string_view text_;
  const rapidjson::MemoryStream& stream_;
  std::initializer_list<std::string_view> path_;
  std::vector<frame> frames_;
  bool on_path_next_ = false;
  bool target_next_ = false;
  bool in_target_ = false;
  bool found_ = false;
  std::size_t target_level_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

std::optional<std::string_view> raw_value(std::string_view text,
                                          std::initializer_list<std::string_view> path) {
  if (text.find('\0') != std::string_view::npos) return std::nullopt;
  rapidjson::MemoryStream stream(text.data(), text.size());
  raw_value_finder finder(text, stream, path);
  rapidjson::Reader reader;
  if (reader.Parse<parse_flags>(stream, finder).IsError()) return std::nullopt;
  return finder.result();
}

using json_value = rapidjson::Value;

const json_value* member(const json_value* object, const char* name) {
  if (object == nullptr || !object->IsObject()) return nullptr;
  const auto found = object->FindMember(name);
  return found == object->MemberEnd() ? nullptr : &found->value;
}

const json_value* object_member(const json_value* object, const char* name) {
  const json_value* value = member(object, name);
  return value != nullptr && value->IsObject() ? value : nullptr;
}

std::optional<std::string> string_member(const json_value* object, const char* name) {
  const json_value* value = member(object, name);
  if (value == nullptr || !value->IsString()) return std::nullopt;
  return std::string(value->GetString(), value->GetStringLength());
}

// Parses the `data` member of an event and reports shape errors for one typed view.
class shape_reader {
 public:
  shape_reader(const event& e, const char* view, error_info* why)
      : event_(e), view_(view), why_(why) {}

  // The `data` object, or nullptr after reporting why. Only the data member's text is parsed;
  // the whole message only when there is no data member to say why.
  const json_value* data() {
    const std::string_view text = event_.data_json();
    if (text.empty()) {
      explain_missing_data();
      return nullptr;
    }
    document_.Parse<parse_flags>(text.data(), text.size());
    if (document_.HasParseError() || !document_.IsObject()) {
      fail("data is missing or is not an object");
      return nullptr;
    }
    return &document_;
  }

  // Why a message has no usable data member.
  void explain_missing_data() {
    if (event_.json().find('\0') != std::string_view::npos) {
      fail("the message contains a NUL byte");
      return;
    }
    document_.Parse<parse_flags>(event_.json().data(), event_.json().size());
    if (document_.HasParseError()) {
      fail("the message is not valid JSON (error at byte " +
           std::to_string(document_.GetErrorOffset()) + ")");
      return;
    }
    if (!document_.IsObject()) {
      fail("the message is not a JSON object");
      return;
    }
    fail("data is missing or is not an object");
  }

  // Reports "<what> is missing or is not <kind>".
  void missing(const std::string& what, const char* kind) {
    fail(what + " is missing or is not " + kind);
  }

  void fail(std::string what) {
    if (why_ != nullptr) {
      why_->code = errc::protocol_error;
      why_->diag = {};
      why_->diag.context = "reading the event on " + event_.channel() + " as " + view_;
      why_->diag.server_text = std::move(what);
    }
  }

  void succeed() {
    if (why_ != nullptr) *why_ = {};
  }

  // The text of the value at `path` inside data, cut from the message unchanged.
  std::optional<std::string> raw(std::initializer_list<std::string_view> path) {
    auto text = raw_value(event_.data_json(), path);
    if (!text) {
      fail("could not cut the value out of the message text");
      return std::nullopt;
    }
    return std::string(*text);
  }

 private:
  const event& event_;
  const char* view_;
  error_info* why_;
  rapidjson::Document document_;
};

// A server value quoted for a diagnostic, cut short so a hostile message cannot bloat logs.
std::string quoted(const std::string& value) {
  constexpr std::size_t limit = 64;
  if (value.size() <= limit) return "\"" + value + "\"";
  return "\"" + value.substr(0, limit) + "...\"";
}

template <std::size_t N>
bool one_of(std::string_view value, const std::array<std::string_view, N>& allowed) {
  for (const auto candidate : allowed) {
    if (candidate == value) return true;
  }
  return false;
}

template <std::size_t N>
std::string list(const std::array<std::string_view, N>& allowed) {
  std::string out;
  for (const auto candidate : allowed) {
    if (!out.empty()) out += ", ";
    out += candidate;
  }
  return out;
}

// PushTopic notifications: data.event {type, createdDate, replayId} and data.sobject.
constexpr std::array<std::string_view, 4> pushtopic_types{"created", "updated", "deleted",
                                                          "undeleted"};
// Change events: data.payload with its ChangeEventHeader, data.schema and data.event.replayId.
constexpr std::array<std::string_view, 9> change_types{
    "CREATE",     "UPDATE",     "DELETE",       "UNDELETE",    "GAP_CREATE",
    "GAP_UPDATE", "GAP_DELETE", "GAP_UNDELETE", "GAP_OVERFLOW"};

}  // namespace

channel_kind kind_of_channel(const std::string& channel) noexcept {
  std::string_view name = channel;
  name = name.substr(0, name.find('?'));
  if (has_prefix_and_name(name, "/topic/")) return channel_kind::topic;
  if (has_prefix_and_name(name, "/u/")) return channel_kind::generic;
  if (has_prefix_and_name(name, "/event/")) return channel_kind::platform_event;
  if (has_prefix_and_name(name, "/data/")) return channel_kind::change_data_capture;
  return channel_kind::other;
}

event::event(std::string channel, std::optional<std::int64_t> replay_id, std::string json)
    : channel_(std::move(channel)),
      replay_id_(replay_id),
      buffer_(std::make_shared<const std::string>(std::move(json))),
      json_(*buffer_),
      data_(raw_value(json_, {"data"}).value_or(std::string_view())) {}

event::event(std::string channel, std::optional<std::int64_t> replay_id,
             std::shared_ptr<const std::string> buffer, std::string_view json,
             std::string_view data) noexcept
    : channel_(std::move(channel)),
      replay_id_(replay_id),
      buffer_(std::move(buffer)),
      json_(json),
      data_(data) {}

event::event(event&& other) noexcept
    : channel_(std::move(other.channel_)),
      replay_id_(std::exchange(other.replay_id_, std::nullopt)),
      buffer_(std::move(other.buffer_)),
      json_(std::exchange(other.json_, {})),
      data_(std::exchange(other.data_, {})) {}

event& event::operator=(event&& other) noexcept {
  if (this != &other) {
    channel_ = std::move(other.channel_);
    replay_id_ = std::exchange(other.replay_id_, std::nullopt);
    buffer_ = std::move(other.buffer_);
    json_ = std::exchange(other.json_, {});
    data_ = std::exchange(other.data_, {});
  }
  return *this;
}

pushtopic_data event::as_pushtopic(error_info* why) const {
  shape_reader reader(*this, "a PushTopic event", why);
  const json_value* data = reader.data();
  if (data == nullptr) return {};
  const json_value* header = object_member(data, "event");
  if (header == nullptr) {
    reader.missing("data.event", "an object");
    return {};
  }
  auto type = string_member(header, "type");
  if (!type) {
    reader.missing("data.event.type", "a string");
    return {};
  }
  if (!one_of(*type, pushtopic_types)) {
    reader.fail("data.event.type " + quoted(*type) + " is not one of " + list(pushtopic_types));
    return {};
  }
  auto created = string_member(header, "createdDate");
  if (!created) {
    reader.missing("data.event.createdDate", "a string");
    return {};
  }
  if (object_member(data, "sobject") == nullptr) {
    reader.missing("data.sobject", "an object");
    return {};
  }
  auto sobject = reader.raw({"sobject"});
  if (!sobject) return {};
  reader.succeed();
  return {std::move(*type), std::move(*created), std::move(*sobject)};
}

generic_data event::as_generic(error_info* why) const {
  shape_reader reader(*this, "a generic streaming event", why);
  const json_value* data = reader.data();
  if (data == nullptr) return {};
  auto payload = string_member(data, "payload");
  if (!payload) {
    reader.missing("data.payload", "a string");
    return {};
  }
  const json_value* header = object_member(data, "event");
  if (header == nullptr) {
    reader.missing("data.event", "an object");
    return {};
  }
  auto created = string_member(header, "createdDate");
  if (!created) {
    reader.missing("data.event.createdDate", "a string");
    return {};
  }
  reader.succeed();
  return {std::move(*payload), std::move(*created)};
}

platform_event_data event::as_platform_event(error_info* why) const {
  shape_reader reader(*this, "a platform event", why);
  const json_value* data = reader.data();
  if (data == nullptr) return {};
  auto schema = string_member(data, "schema");
  if (!schema) {
    reader.missing("data.schema", "a string");
    return {};
  }
  if (object_member(data, "payload") == nullptr) {
    reader.missing("data.payload", "an object");
    return {};
  }
  const json_value* header = object_member(data, "event");
  if (header == nullptr) {
    reader.missing("data.event", "an object");
    return {};
  }
  std::optional<std::string> uuid;
  if (member(header, "EventUuid") != nullptr) {
    uuid = string_member(header, "EventUuid");
    if (!uuid) {
      reader.fail("data.event.EventUuid is present but is not a string");
      return {};
    }
  }
  auto payload = reader.raw({"payload"});
  if (!payload) return {};
  reader.succeed();
  return {std::move(*schema), std::move(*payload), std::move(uuid)};
}

change_data event::as_change(error_info* why) const {
  shape_reader reader(*this, "a change data capture event", why);
  const json_value* data = reader.data();
  if (data == nullptr) return {};
  const json_value* payload = object_member(data, "payload");
  if (payload == nullptr) {
    reader.missing("data.payload", "an object");
    return {};
  }
  const json_value* header = object_member(payload, "ChangeEventHeader");
  if (header == nullptr) {
    reader.missing("data.payload.ChangeEventHeader", "an object");
    return {};
  }
  auto entity = string_member(header, "entityName");
  if (!entity) {
    reader.missing("data.payload.ChangeEventHeader.entityName", "a string");
    return {};
  }
  auto type = string_member(header, "changeType");
  if (!type) {
    reader.missing("data.payload.ChangeEventHeader.changeType", "a string");
    return {};
  }
  if (!one_of(*type, change_types)) {
    reader.fail("data.payload.ChangeEventHeader.changeType " + quoted(*type) + " is not one of " +
                list(change_types));
    return {};
  }
  const json_value* ids = member(header, "recordIds");
  if (ids == nullptr || !ids->IsArray()) {
    reader.missing("data.payload.ChangeEventHeader.recordIds", "an array");
    return {};
  }
  std::vector<std::string> record_ids;
  record_ids.reserve(ids->Size());
  for (const auto& id : ids->GetArray()) {
    if (!id.IsString()) {
      reader.fail("data.payload.ChangeEventHeader.recordIds holds a value that is not a string");
      return {};
    }
    record_ids.emplace_back(id.GetString(), id.GetStringLength());
  }
  auto header_text = reader.raw({"payload", "ChangeEventHeader"});
  if (!header_text) return {};
  auto payload_text = reader.raw({"payload"});
  if (!payload_text) return {};
  reader.succeed();
  return {std::move(*entity), std::move(*type), std::move(record_ids), std::move(*header_text),
          std::move(*payload_text)};
}

}  // namespace sfstream
