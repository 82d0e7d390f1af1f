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
    w.Key("Max");
    w.Int(max);
    w.Key("Remaining");
    w.Int(max);
    w.EndObject();
  }
  w.EndObject();
  return json_response(200, buffer.GetString());
}

}  // namespace sfstream::emulator::data
