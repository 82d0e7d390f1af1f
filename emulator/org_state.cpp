#include "emulator/org_state.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "sfstream/error.hpp"

namespace sfstream::emulator {

namespace {

[[noreturn]] void fail(const std::string& what) {
  throw error(error_info{make_error_code(errc::invalid_config), {"", "", what}});
}

std::int64_t epoch_ms(clock::time_point at) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count();
}

}  // namespace

std::string org_state_path(const std::string& dir, const std::string& org_name) {
  return (std::filesystem::path(dir) / ("org-" + org_name + ".json")).string();
}

void save_org_state(const std::string& path, const clock& clk, const event_bus& bus,
                    const data::rest_api& rest) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("format");
  w.Int(1);
  w.Key("clockOffsetMs");
  w.Int64(clk.offset().count());
  w.Key("channels");
  w.StartArray();
  for (const auto& channel : bus.snapshot()) {
    w.StartObject();
    w.Key("name");
    w.String(channel.name);
    w.Key("retention");
    w.String(channel.keep == retention::hours_72 ? "72h" : "24h");
    w.Key("nextReplayId");
    w.Int64(channel.next_id);
    w.Key("events");
    w.StartArray();
    for (const auto& e : channel.events) {
      w.StartObject();
      w.Key("replayId");
      w.Int64(e.replay_id);
      w.Key("at");
      w.Int64(epoch_ms(e.at));
      w.Key("data");  // the data object's text, byte for byte
      w.String(e.data);
      if (!e.audience.empty()) {
        w.Key("audience");
        w.StartArray();
        for (const auto& user : e.audience) w.String(user);
        w.EndArray();
      }
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.Key("data");
  const std::string data = rest.save_state();
  w.RawValue(data.c_str(), data.size(), rapidjson::kObjectType);
  w.EndObject();

  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(buffer.GetString(), static_cast<std::streamsize>(buffer.GetSize()));
    if (!out.flush()) {
      const int e = errno;
      fail("cannot write the emulator state file " + temporary + ": " + std::strerror(e));
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int e = errno;
    fail("cannot write the emulator state file " + path + ": " + std::strerror(e));
  }
}

void load_org_state(const std::string& path, clock& clk, event_bus& bus, data::rest_api& rest) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int e = errno;
    fail("cannot read the emulator state file " + path + ": " + std::strerror(e));
  }
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string bad = "the emulator state file " + path + " is not valid: ";
  rapidjson::Document doc;
  doc.Parse(text.c_str(), text.size());
  if (doc.HasParseError())
    fail(bad + "not JSON (" + rapidjson::GetParseError_En(doc.GetParseError()) + " at offset " +
         std::to_string(doc.GetErrorOffset()) + ")");
  if (!doc.IsObject() || !doc.HasMember("format") || !doc["format"].IsInt() || doc["format"].GetInt() != 1)
    fail(bad + "it is not a format 1 state");
  if (!doc.HasMember("clockOffsetMs") || !doc["clockOffsetMs"].IsInt64() || !doc.HasMember("channels") ||
      !doc["channels"].IsArray() || !doc.HasMember("data") || !doc["data"].IsObject())
    fail(bad + "it needs \"clockOffsetMs\", \"channels\" and \"data\"");
  std::vector<channel_snapshot> channels;
  for (const auto& c : doc["channels"].GetArray()) {
    if (!c.IsObject() || !c.HasMember("name") || !c["name"].IsString() || !c.HasMember("retention") ||
        !c["retention"].IsString() || !c.HasMember("nextReplayId") || !c["nextReplayId"].IsInt64() ||
        !c.HasMember("events") || !c["events"].IsArray())
      fail(bad + "each channel needs \"name\", \"retention\", \"nextReplayId\" and \"events\"");
    channel_snapshot channel;
    channel.name = c["name"].GetString();
    const std::string keep = c["retention"].GetString();
    if (keep != "24h" && keep != "72h") fail(bad + "channel " + channel.name + ": retention is 24h or 72h");
    channel.keep = keep == "72h" ? retention::hours_72 : retention::hours_24;
    channel.next_id = c["nextReplayId"].GetInt64();
    std::int64_t previous = 0;
    for (const auto& e : c["events"].GetArray()) {
      if (!e.IsObject() || !e.HasMember("replayId") || !e["replayId"].IsInt64() || !e.HasMember("at") ||
          !e["at"].IsInt64() || !e.HasMember("data") || !e["data"].IsString())
        fail(bad + "channel " + channel.name + ": each event needs \"replayId\", \"at\" and \"data\"");
      stored_event event;
      event.replay_id = e["replayId"].GetInt64();
      if (event.replay_id <= previous || event.replay_id >= channel.next_id)
        fail(bad + "channel " + channel.name + ": replay ids must grow and stay below nextReplayId");
      previous = event.replay_id;
      event.at = clock::time_point(std::chrono::milliseconds(e["at"].GetInt64()));
      event.data.assign(e["data"].GetString(), e["data"].GetStringLength());
      if (e.HasMember("audience") && e["audience"].IsArray()) {
        for (const auto& user : e["audience"].GetArray()) {
          if (user.IsString()) event.audience.emplace_back(user.GetString());
        }
      }
      channel.events.push_back(std::move(event));
    }
    channels.push_back(std::move(channel));
  }
  rapidjson::StringBuffer data;
  rapidjson::Writer<rapidjson::StringBuffer> w(data);
  doc["data"].Accept(w);
  if (std::string why = rest.load_state(data.GetString()); !why.empty()) fail(bad + why);
  for (auto& channel : channels) bus.restore(std::move(channel));
  const auto offset = std::chrono::milliseconds(doc["clockOffsetMs"].GetInt64());
  if (offset > clk.offset()) clk.advance(offset - clk.offset());
}

}  // namespace sfstream::emulator
