// libFuzzer target: arbitrary bytes as Set-Cookie values (several per input, split at '\n'),
// then header_for on a few URLs. The jar must never crash, hang or grow without bound.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "src/transport/cookie_jar.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using sfstream::transport::cookie_jar;
  using sfstream::transport::url;
  static const url from = *url::parse("https://na1.my.salesforce.com/cometd/59.0");
  static const url targets[] = {*url::parse("https://na1.my.salesforce.com/cometd/59.0/connect"),
                                *url::parse("https://my.salesforce.com/"),
                                *url::parse("http://na1.my.salesforce.com/x"),
                                *url::parse("https://127.0.0.1:8443/cometd")};
  const auto now = cookie_jar::clock::time_point(std::chrono::seconds(1'700'000'000));
  cookie_jar jar;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::size_t lines = 0;
  while (!input.empty() && lines++ < 1000) {
    const auto newline = input.find('\n');
    jar.store_one(from, input.substr(0, newline), now);
    jar.store_one(targets[3], input.substr(0, newline), now);
    input = newline == std::string_view::npos ? std::string_view{} : input.substr(newline + 1);
  }
  for (const auto& target : targets) {
    const std::string header = jar.header_for(target, now);
    if (header.size() > 8 * 1024 * 1024) __builtin_trap();
  }
  if (jar.size() > 300) __builtin_trap();
  return 0;
}
