// An event received on a streaming channel: its channel, replay id, the raw
// JSON of the message exactly as Salesforce sent it, and typed read access for
// the four channel kinds.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sfstream/error.hpp"

namespace sfstream {

/// The kind of a streaming channel.
enum class channel_kind {
  topic,                ///< /topic/Name — PushTopic.
  generic,              ///< /u/path — generic streaming (StreamingChannel).
  platform_event,       ///< /event/Name__e or /event/Name__chn.
  change_data_capture,  ///< /data/...ChangeEvent(s) or /data/Name__chn.
  other,
};

/// Kind of a channel name ("/topic/X?f=v" → topic). Does not validate.
channel_kind kind_of_channel(const std::string& channel) noexcept;

/// PushTopic notification: data.event.type and data.sobject.
struct pushtopic_data {
  std::string type;          ///< "created", "updated", "deleted" or "undeleted".
  std::string created_date;  ///< data.event.createdDate.
  std::string sobject_json;  ///< The sobject object as JSON text (the
                             ///< PushTopic's SELECT fields).
};

/// Generic streaming event: the pushed payload string.
struct generic_data {
  std::string payload;
  std::string created_date;
};

/// Platform event.
struct platform_event_data {
  std::string schema;                     ///< data.schema, the schema id.
  std::string payload_json;               ///< data.payload as JSON text.
  std::optional<std::string> event_uuid;  ///< data.event.EventUuid (API >= 52.0).
};

/// Change Data Capture event, read shallowly; see change_event.hpp for the full
/// typed model.
struct change_data {
  std::string entity_name;
  std::string change_type;  ///< CREATE, UPDATE, DELETE, UNDELETE, GAP_*.
  std::vector<std::string> record_ids;
  std::string header_json;   ///< ChangeEventHeader as JSON text.
  std::string payload_json;  ///< data.payload (header included) as JSON text.
};

/// One event. Cheap to copy and to move: its text is not owned but shared. The
/// events of one reply refer to that reply's body, held once and freed when the
/// last of them is gone, so the message bytes are never copied on their way to
/// the handler and never re-serialised.
class event {
 public:
  event() = default;
  /// An event holding `json` as its message text; the `data` member is located
  /// once, here.
  event(std::string channel, std::optional<std::int64_t> replay_id, std::string json);
  /// An event whose message text lies in a shared buffer (a reply body): `json`
  /// and `data` are views into `*buffer`, `data` empty when the message has
  /// none. The reply parser located both, so nothing is parsed again here.
  event(std::string channel, std::optional<std::int64_t> replay_id,
        std::shared_ptr<const std::string> buffer, std::string_view json,
        std::string_view data) noexcept;
  event(const event&) = default;
  event& operator=(const event&) = default;
  /// A moved-from event is empty (no text), never a view into a buffer it no
  /// longer holds.
  event(event&& other) noexcept;
  event& operator=(event&& other) noexcept;
  ~event() = default;

  /// The channel the event arrived on, e.g. "/topic/InvoiceStatementUpdates".
  const std::string& channel() const noexcept { return channel_; }
  /// data.event.replayId; absent only when the server sent none.
  std::optional<std::int64_t> replay_id() const noexcept { return replay_id_; }
  /// The whole message object as received: {"channel":…,"data":{…}}. Valid as
  /// long as this event (or a copy of it) lives.
  std::string_view json() const noexcept { return json_; }
  channel_kind kind() const noexcept { return kind_of_channel(channel_); }

  /// The `data` member as JSON text, byte for byte as received (the first one
  /// when the message repeats it); empty when the message is not valid JSON or
  /// has no `data` member. Valid as long as this event (or a copy of it) lives.
  std::string_view data_json() const noexcept { return data_; }

  /// The buffer json() lies in, shared by the events of one reply; null for an
  /// empty event.
  const std::shared_ptr<const std::string>& buffer() const noexcept { return buffer_; }

  /// Typed views following Salesforce's event shapes; each fails with
  /// errc::protocol_error when the event is not of that shape, returning empty
  /// data and, when `why` is given, saying in its diagnostics what is missing
  /// or wrong (on success `*why` is cleared). They never throw on malformed
  /// input. Each parses only the `data` member, on demand; JSON text members
  /// are cut from json() unchanged.
  pushtopic_data as_pushtopic(error_info* why = nullptr) const;
  generic_data as_generic(error_info* why = nullptr) const;
  platform_event_data as_platform_event(error_info* why = nullptr) const;
  change_data as_change(error_info* why = nullptr) const;

 private:
  std::string channel_;
  std::optional<std::int64_t> replay_id_;
  std::shared_ptr<const std::string> buffer_;
  std::string_view json_;
  std::string_view data_;
};

}  // namespace sfstream
