// An event received on a streaming channel: its channel, replay id, the raw JSON of the
// message exactly as Salesforce sent it, and typed read access for the four channel kinds.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sfstream/error.hpp"

namespace sfstream {

/// The kind of a streaming channel.
enum class channel_kind {
  topic,               ///< /topic/Name — PushTopic.
  generic,             ///< /u/path — generic streaming (StreamingChannel).
  platform_event,      ///< /event/Name__e or /event/Name__chn.
  change_data_capture, ///< /data/...ChangeEvent(s) or /data/Name__chn.
  other,
};

/// Kind of a channel name ("/topic/X?f=v" → topic). Does not validate.
channel_kind kind_of_channel(const std::string& channel) noexcept;

/// PushTopic notification: data.event.type and data.sobject.
struct pushtopic_data {
  std::string type;          ///< "created", "updated", "deleted" or "undeleted".
  std::string created_date;  ///< data.event.createdDate.
  std::string sobject_json;  ///< The sobject object as JSON text (the PushTopic's SELECT fields).
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

/// Change Data Capture event, read shallowly; see change_event.hpp for the full typed model.
struct change_data {
  std::string entity_name;
  std::string change_type;              ///< CREATE, UPDATE, DELETE, UNDELETE, GAP_*.
  std::vector<std::string> record_ids;
  std::string header_json;              ///< ChangeEventHeader as JSON text.
  std::string payload_json;             ///< data.payload (header included) as JSON text.
};

/// One event. Cheap to move; the raw JSON is held once and never re-serialised.
class event {
 public:
  event() = default;
  event(std::string channel, std::optional<std::int64_t> replay_id, std::string json);

  /// The channel the event arrived on, e.g. "/topic/InvoiceStatementUpdates".
  const std::string& channel() const noexcept { return channel_; }
  /// data.event.replayId; absent only when the server sent none.
  std::optional<std::int64_t> replay_id() const noexcept { return replay_id_; }
  /// The whole message object as received: {"channel":…,"data":{…}}.
  const std::string& json() const noexcept { return json_; }
  channel_kind kind() const noexcept { return kind_of_channel(channel_); }

  /// The `data` member as JSON text, byte for byte as received; empty when the message is not
  /// valid JSON or has no `data` member.
  std::string data_json() const;

  /// Typed views following the dialect reference §6 shapes; each fails with errc::protocol_error
  /// when the event is not of that shape, returning empty data and, when `why` is given, saying
  /// in its diagnostics what is missing or wrong (on success `*why` is cleared). They never
  /// throw on malformed input. JSON text members are cut from json() unchanged.
  pushtopic_data as_pushtopic(error_info* why = nullptr) const;
  generic_data as_generic(error_info* why = nullptr) const;
  platform_event_data as_platform_event(error_info* why = nullptr) const;
  change_data as_change(error_info* why = nullptr) const;

 private:
  std::string channel_;
  std::optional<std::int64_t> replay_id_;
  std::string json_;
};

}  // namespace sfstream
