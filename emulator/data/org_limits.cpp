// The /limits resource.
#include "emulator/data/rest_api_impl.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include <rapidjson/error/en.h>

namespace sfstream::emulator::data {

transport::http_response rest_api_impl::limits() const {
  static const std::pair<const char*, int> values[] = {{"DailyApiRequests", 15000},
                                                       {"DailyDurableGenericStreamingApiEvents", 10000},
                                                       {"DailyDurableStreamingApiEvents", 10000},
                                                       {"DailyGenericStreamingApiEvents", 10000},
                                                       {"DailyStreamingApiEvents", 10000},
                                                       {"DurableStreamingApiConcurrentClients", 20},
                                                       {"StreamingApiConcurrentClients", 20}};
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartObject();
  for (const auto& [name, max] : values) {
    w.Key(name);
    w.StartObject();
    const bool api = std::string_view(name) == "DailyApiRequests";
    w.Key("Max");
    w.Uint64(api ? api_requests_.max() : static_cast<std::uint64_t>(max));
    w.Key("Remaining");
    w.Uint64(api ? api_requests_.remaining(clock_.now()) : static_cast<std::uint64_t>(max));
    w.EndObject();
  }
  w.EndObject();
  return json_response(200, buffer.GetString());
}

}  // namespace sfstream::emulator::data
