// Embedding sfstream without Asio: the connector runs its own threads; the handler runs on
// its worker thread and positions are kept in a file so a restart loses nothing.
//
//   SF_ACCESS_TOKEN=… SF_INSTANCE_URL=https://… ./sample_threaded_connector /data/AccountChangeEvent
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <thread>

#include <boost/asio/io_context.hpp>

#include <sfstream/connector.hpp>
#include <sfstream/credentials.hpp>

namespace {
volatile std::sig_atomic_t stop_requested = 0;
}

int main(int argc, char** argv) {
  const char* token = std::getenv("SF_ACCESS_TOKEN");
  const char* instance = std::getenv("SF_INSTANCE_URL");
  if (!token || !instance || argc < 2) {
    std::cerr << "usage: SF_ACCESS_TOKEN=… SF_INSTANCE_URL=… " << argv[0] << " CHANNEL\n";
    return 2;
  }
  boost::asio::io_context unused;  // a static token needs no network: any executor will do
  sfstream::client_config config;
  sfstream::access_token access;
  access.token = token;
  access.instance_url = instance;
  config.credentials = sfstream::make_static_token_provider(unused.get_executor(), access);
  config.store = sfstream::open_file_replay_store("replay-positions.json");

  sfstream::connector connector{config};
  sfstream::subscription_callbacks callbacks;
  callbacks.on_event = [](const sfstream::event& e) {
    auto change = e.as_change();
    std::cout << change.change_type << ' ' << change.entity_name << ' ' << e.json() << std::endl;
  };
  callbacks.on_gap = [](const sfstream::gap_record& gap) { std::cerr << "GAP: " << gap.to_string() << '\n'; };
  if (auto error = connector.subscribe(argv[1], sfstream::replay_all, callbacks)) {
    std::cerr << error.to_string() << '\n';
    return 2;
  }
  std::signal(SIGINT, [](int) { stop_requested = 1; });
  connector.start();
  while (!stop_requested && connector.running()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto result = connector.stop();
  if (result) std::cerr << "stopped: " << result.to_string() << '\n';
  return result ? 1 : 0;
}
