// Proves find_package(sfstream CONFIG) gives a usable library: compiles against the public
// headers, links, and checks an error category and a replay policy name through the public API.
#include <cstdio>
#include <string>

#include <sfstream/error.hpp>
#include <sfstream/replay.hpp>
#include <sfstream/version.hpp>

int main() {
  const std::error_code ec = sfstream::errc::invalid_channel;
  if (ec.category().name() != std::string("sfstream")) return 1;
  // The vocabulary library comes along with sfstream::sfstream.
  if (sfstream::to_string(sfstream::replay_policy::tip) != "tip") return 1;
  std::printf("consumer: linked sfstream %s\n", sfstream::version_string());
  return 0;
}
