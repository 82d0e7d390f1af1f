// Embedding sfstream without Asio: the connector runs its own threads; the handler runs on
// its worker thread and positions are kept in a file so a restart loses nothing. Stops on
// Ctrl-C (or SIGTERM), committing what was handled.
//
//   SF_ACCESS_TOKEN=… SF_INSTANCE_URL=https://… ./sample_threaded_connector CHANNEL [ca-file]
//   e.g. CHANNEL = /data/AccountChangeEvent; positions go to ./replay-positions.json
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <sfstream/connector.hpp>
#include <sfstream/credentials.hpp>

namespace {

volatile std::sig_atomic_t stop_requested = 0;

/// An io_context running on a thread of its own until destroyed. Credential providers hand
/// their tokens out on an executor that must run (a login provider also does its HTTPS
/// there), and the connector's own threads do not exist before the connector does.
struct credentials_thread {
  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work =
      boost::asio::make_work_guard(io);
  std::thread thread{[this] { io.run(); }};
  ~credentials_thread() {
    work.reset();
    thread.join();
  }
};

}  // namespace

int main(int argc, char** argv) {
  const char* token = std::getenv("SF_ACCESS_TOKEN");
  const char* instance = std::getenv("SF_INSTANCE_URL");
  if (!token || !instance || argc < 2) {
    std::cerr << "usage: SF_ACCESS_TOKEN=… SF_INSTANCE_URL=… " << argv[0] << " CHANNEL [ca-file]\n";
    return 2;
  }
  credentials_thread credentials;
  sfstream::client_config config;
  if (argc > 2) config.network.ca_file = argv[2];
  sfstream::access_token access;
  access.token = token;
  access.instance_url = instance;
  config.credentials = sfstream::make_static_token_provider(credentials.io.get_executor(), access);
  try {
    config.store = sfstream::open_file_replay_store("replay-positions.json");
  } catch (const std::exception& e) {
    std::cerr << e.what() << '\n';  // e.g. another process holds the store
    return 1;
  }

  sfstream::connector connector{config};
  sfstream::subscription_callbacks callbacks;
  callbacks.on_event = [](const sfstream::event& e) {
    auto change = e.as_change();
    std::cout << change.change_type << ' ' << change.entity_name << ' ' << e.json() << std::endl;
  };
  callbacks.on_gap = [](const sfstream::gap_record& gap) {
    std::cerr << "GAP: " << gap.to_string() << '\n';
  };
  callbacks.on_subscribed = [channel = std::string(argv[1])](std::int64_t from) {
    std::cerr << "subscribed to " << channel << " from replay id " << from << '\n';
  };
  if (auto error = connector.subscribe(argv[1], sfstream::replay_all, callbacks)) {
    std::cerr << error.to_string() << '\n';
    return 2;
  }
  std::signal(SIGINT, [](int) { stop_requested = 1; });
  std::signal(SIGTERM, [](int) { stop_requested = 1; });
  connector.start();
  while (!stop_requested && connector.running())
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto result = connector.stop();
  if (result) std::cerr << "stopped: " << result.to_string() << '\n';
  return result ? 1 : 0;
}
