#include "emulator/event_bus.hpp"

#include <algorithm>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace sfstream::emulator {

event_bus::event_bus(const clock& now) : clock_(now) {}

void event_bus::declare_channel(const std::string& channel, retention keep) {
  auto [it, inserted] = channels_.try_emplace(channel);
  if (inserted) {
    it->second.keep = keep;
    ++version_;
  }
}

bool event_bus::channel_exists(const std::string& channel) const {
  return channels_.count(channel) != 0;
}

std::optional<retention> event_bus::channel_retention(const std::string& channel) const {
  auto it = channels_.find(channel);
  if (it == channels_.end()) {
    return std::nullopt;
  }
  return it->second.keep;
}

void event_bus::remove_channel(const std::string& channel) {
  if (channels_.erase(channel) != 0) ++version_;
}

std::chrono::hours event_bus::retention_of(const channel_state& state) const {
  return state.keep == retention::hours_72 ? std::chrono::hours{72} : std::chrono::hours{24};
}

std::int64_t event_bus::publish(
    const std::string& channel,
    const std::function<std::string(std::int64_t replay_id, clock::time_point at)>& render_data,
    std::vector<std::string> audience) {
  auto it = channels_.find(channel);
  if (it == channels_.end()) {
    return -1;
  }
  channel_state& state = it->second;
  const std::int64_t id = state.next_id++;
  stored_event event{channel, id, clock_.now(), {}, std::move(audience), {}};
  event.data = render_data(id, event.at);
  event.message = std::make_shared<const std::string>(render_event_message(channel, event.data));
  state.events.push_back(std::move(event));
  ++version_;
  if (listener_) {
    // Copy: the listener may publish again (e.g. a CDC event on two channels), which could
    // reallocate the vector.
    const stored_event published = state.events.back();
    listener_(published);
  }
  return id;
}

namespace {

auto first_retained(const std::vector<stored_event>& events, clock::time_point oldest) {
  return std::find_if(events.begin(), events.end(),
                      [&](const stored_event& e) { return e.at >= oldest; });
}

}  // namespace

std::vector<stored_event> event_bus::events_after(const std::string& channel,
                                                  std::int64_t after) const {
  std::vector<stored_event> out;
  visit_after(channel, after, [&out](const stored_event& e) { out.push_back(e); });
  return out;
}

void event_bus::visit_after(const std::string& channel, std::int64_t after,
                            const std::function<void(const stored_event&)>& visit) const {
  auto it = channels_.find(channel);
  if (it == channels_.end() || after == -1) {
    return;
  }
  const auto& events = it->second.events;
  auto e = first_retained(events, clock_.now() - retention_of(it->second));
  if (after != -2) {
    // Replay ids increase along the vector: skip to the first one after `after`.
    e = std::upper_bound(e, events.end(), after,
                         [](std::int64_t id, const stored_event& ev) { return id < ev.replay_id; });
  }
  for (; e != events.end(); ++e) visit(*e);
}

std::string render_event_message(const std::string& channel, const std::string& data) {
  rapidjson::StringBuffer sb;
  sb.Reserve(data.size() + channel.size() + 24);
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("data", 4);
  w.RawValue(data.data(), data.size(), rapidjson::kObjectType);
  w.Key("channel", 7);
  w.String(channel.data(), static_cast<rapidjson::SizeType>(channel.size()));
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

replay_check event_bus::check_replay(const std::string& channel, std::int64_t after) const {
  if (after == -1 || after == -2) {
    return replay_check::ok;
  }
  auto it = channels_.find(channel);
  if (it == channels_.end()) {
    return replay_check::not_found;
  }
  const auto& events = it->second.events;
  auto first = first_retained(events, clock_.now() - retention_of(it->second));
  if (first == events.end()) {
    return replay_check::not_found;
  }
  // Inside the retained window: from the oldest retained event to the newest one.
  if (after >= first->replay_id && after <= events.back().replay_id) {
    return replay_check::ok;
  }
  return replay_check::not_found;
}

std::int64_t event_bus::last_replay_id(const std::string& channel) const {
  auto it = channels_.find(channel);
  if (it == channels_.end()) {
    return 0;
  }
  return it->second.next_id - 1;
}

void event_bus::set_publish_listener(publish_listener listener) {
  listener_ = std::move(listener);
}

void event_bus::set_subscriber_counter(subscriber_counter counter) {
  counter_ = std::move(counter);
}

void event_bus::set_online_lister(online_lister lister) {
  online_ = std::move(lister);
}

std::vector<std::string> event_bus::online_users(const std::string& channel) const {
  return online_ ? online_(channel) : std::vector<std::string>{};
}

std::size_t event_bus::subscribers(const std::string& channel, const std::string& user_id) const {
  return counter_ ? counter_(channel, user_id) : 0;
}

bool is_for_user(const stored_event& event, const std::string& user_id) {
  return event.audience.empty() ||
         std::find(event.audience.begin(), event.audience.end(), user_id) != event.audience.end();
}

void event_bus::purge_expired() {
  const auto now = clock_.now();
  for (auto& [name, state] : channels_) {
    auto first = first_retained(state.events, now - retention_of(state));
    state.events.erase(state.events.begin(), first);
  }
}

std::vector<channel_snapshot> event_bus::snapshot() const {
  std::vector<channel_snapshot> out;
  out.reserve(channels_.size());
  for (const auto& [name, state] : channels_) {
    out.push_back({name, state.keep, state.next_id, state.events});
  }
  return out;
}

void event_bus::restore(channel_snapshot channel) {
  channel_state& state = channels_[channel.name];
  state.keep = channel.keep;
  state.next_id = channel.next_id;
  state.events = std::move(channel.events);
  for (auto& e : state.events) {
    e.channel = channel.name;
    e.message = std::make_shared<const std::string>(render_event_message(e.channel, e.data));
  }
  ++version_;
}

}  // namespace sfstream::emulator
