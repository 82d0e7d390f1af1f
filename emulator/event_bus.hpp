// The emulator's event bus: every streaming channel (PushTopic, generic, platform event, CDC),
// its replay ids and its retained events. The data side (E2) publishes through it; the CometD
// server (E1) replays from it and is told of each new event through the publish listener.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "emulator/clock.hpp"

namespace sfstream::emulator {

/// How long a channel keeps its events for replay: PushTopic and
/// generic streaming keep 24 hours, platform events and change events 72 hours.
enum class retention { hours_24, hours_72 };

/// One retained event.
struct stored_event {
  std::string channel;
  std::int64_t replay_id = 0;
  clock::time_point at;  ///< Emulator time of publication.
  std::string data;      ///< JSON text of the Bayeux message's `data` object.
  /// The user ids the event is for (a generic push with userIds); empty: every subscriber.
  std::vector<std::string> audience;
  /// The whole Bayeux event message, `{"data":<data>,"channel":"<channel>"}`, serialized once
  /// when the event is published and shared by every reply that carries it (replies to
  /// subscriptions on exactly `channel` write these bytes without copying them).
  std::shared_ptr<const std::string> message;
};

/// The Bayeux event message for `data` on `channel`: `{"data":<data>,"channel":"<channel>"}`.
std::string render_event_message(const std::string& channel, const std::string& data);

/// True when a subscriber logged in as `user_id` may receive `event`.
bool is_for_user(const stored_event& event, const std::string& user_id);

/// The result of asking for the events to replay after a given id on a channel.
enum class replay_check {
  ok,         ///< Events (possibly none) are available.
  not_found,  ///< The id is neither -1, -2, nor a retained id/the id just before one (§3.3).
};

/// One channel with its replay-id counter and retained events (saving and restoring an org).
struct channel_snapshot {
  std::string name;
  retention keep = retention::hours_24;
  std::int64_t next_id = 1;  ///< The replay id the next event gets.
  std::vector<stored_event> events;
};

/// Channels, replay ids and retained events. Single-threaded (used on the emulator executor).
class event_bus {
 public:
  /// Called for each published event, after it is stored.
  using publish_listener = std::function<void(const stored_event&)>;
  /// How many subscribers of `channel` are logged in as `user_id` (the CometD server knows).
  using subscriber_counter =
      std::function<std::size_t(const std::string& channel, const std::string& user_id)>;
  /// The ids of the users with a client subscribed to `channel`, sorted, each once (the CometD
  /// server knows).
  using online_lister = std::function<std::vector<std::string>(const std::string& channel)>;

  /// `now` gives the time used for publication and retention; it must outlive the bus.
  explicit event_bus(const clock& now);

  /// Creates the channel if it does not exist (re-declaring keeps its events and replay ids).
  void declare_channel(const std::string& channel, retention keep);
  /// True when declare_channel was called for exactly this channel name.
  bool channel_exists(const std::string& channel) const;
  /// The retention of a declared channel.
  std::optional<retention> channel_retention(const std::string& channel) const;
  /// Removes the channel and its events (e.g. a deleted PushTopic). Subscribers are not told.
  void remove_channel(const std::string& channel);

  /// Publishes one event on a declared channel: assigns the channel's next replay id (strictly
  /// increasing per channel, not necessarily contiguous), calls `render_data` to get the JSON
  /// text of the `data` object (which must carry "event":{"replayId":N,...} for that kind),
  /// stores it and tells the listener. Returns the replay id, or -1 when the channel is not
  /// declared (render_data is then not called).
  std::int64_t publish(
      const std::string& channel,
      const std::function<std::string(std::int64_t replay_id, clock::time_point at)>& render_data,
      std::vector<std::string> audience = {});

  /// Retained events of `channel` with replay id greater than `after` and not older than the
  /// channel's retention, oldest first. `after` = -2 means all retained events; -1 means none.
  std::vector<stored_event> events_after(const std::string& channel, std::int64_t after) const;
  /// Calls `visit` with each event events_after() would return, oldest first, without copying
  /// them. `visit` must not publish on the bus.
  void visit_after(const std::string& channel, std::int64_t after,
                   const std::function<void(const stored_event&)>& visit) const;
  /// Whether `after` is an acceptable replay position for `channel` (-1, -2, or an id within the
  /// retained window: a retained id, or an id between the oldest retained and the newest).
  replay_check check_replay(const std::string& channel, std::int64_t after) const;
  /// The last replay id assigned on the channel (0 when none yet).
  std::int64_t last_replay_id(const std::string& channel) const;
  /// Sets the hook told of each event (the CometD server). Replaces any previous listener.
  void set_publish_listener(publish_listener listener);
  /// Sets the hook that counts subscribers per user (the CometD server).
  void set_subscriber_counter(subscriber_counter counter);
  /// Subscribers of `channel` logged in as `user_id`; 0 without a counter.
  std::size_t subscribers(const std::string& channel, const std::string& user_id) const;
  /// Sets the hook that lists the users online on a channel (the CometD server).
  void set_online_lister(online_lister lister);
  /// The users online on `channel` (a StreamingChannel's OnlineUserIds); none without a lister.
  std::vector<std::string> online_users(const std::string& channel) const;
  /// Drops events older than their channel's retention (also done lazily by the queries).
  void purge_expired();
  /// Every channel with its counter and retained events, by name.
  std::vector<channel_snapshot> snapshot() const;
  /// Puts a channel back as snapshot() gave it (replacing one of the same name); the events'
  /// message bytes are rendered again. The listener is not told.
  void restore(channel_snapshot channel);
  /// Changes whenever a channel is declared, removed or published on.
  std::uint64_t version() const noexcept { return version_; }

 private:
  struct channel_state {
    retention keep = retention::hours_24;
    std::int64_t next_id = 1;
    std::vector<stored_event> events;
  };
  std::chrono::hours retention_of(const channel_state& state) const;

  const clock& clock_;
  std::map<std::string, channel_state> channels_;
  publish_listener listener_;
  subscriber_counter counter_;
  online_lister online_;
  std::uint64_t version_ = 0;
};

}  // namespace sfstream::emulator
