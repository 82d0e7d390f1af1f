// Salesforce streaming channel names: parsing, validation, replay-map key and retention.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "bayeux/result.hpp"

namespace sfstream::bayeux {

/// Every kind of channel the Streaming API knows.
enum class channel_kind {
  meta,                     ///< /meta/handshake, /meta/connect, ... (Bayeux protocol channels)
  topic,                    ///< /topic/Name, optionally /topic/Name?Field=value (PushTopic)
  generic,                  ///< /u/path (generic streaming, StreamingChannel)
  platform_event,           ///< /event/Name__e
  custom_platform_channel,  ///< /event/Name__chn
  cdc_all,                  ///< /data/ChangeEvents
  cdc_standard,             ///< /data/<Object>ChangeEvent
  cdc_custom,               ///< /data/<Custom>__ChangeEvent
  cdc_custom_channel,       ///< /data/<Name>__chn
};

/// A validated channel name.
struct channel {
  std::string name;  ///< The full name as given, filter included.
  channel_kind kind = channel_kind::meta;
  std::string filter;  ///< The PushTopic filter query after '?', empty when none.

  /// The key of this channel in the subscribe `ext.replay` map: the name without its filter
  /// (Salesforce rejects a replay key that carries the filter).
  std::string_view replay_key() const noexcept;
  /// How long Salesforce retains events of this kind: 24 h for PushTopic and generic
  /// channels, 72 h for platform events and Change Data Capture;
  /// zero for meta channels.
  std::chrono::hours retention() const noexcept;
  /// True for the channels a client may subscribe to (every kind but meta).
  bool subscribable() const noexcept { return kind != channel_kind::meta; }
};

/// Parses and validates a channel name. Errors are errc::invalid_channel with a diagnostics
/// text that says what is wrong, e.g. "platform event channels end in __e or __chn".
/// Names are case-sensitive, as Salesforce's are.
result<channel> parse_channel(std::string_view name);

/// The channel name without a '?filter' query; does not validate.
std::string_view replay_key_of(std::string_view name) noexcept;

/// "meta", "topic", "generic", ...
std::string_view to_string(channel_kind kind) noexcept;

}  // namespace sfstream::bayeux
