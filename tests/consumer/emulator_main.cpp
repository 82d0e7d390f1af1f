// Proves the installed emulator library runs an org in another project's process: an
// org_emulator on its own io_context thread, a platform event published before any subscriber,
// and an sfstream connector that replays it from the org. Exits 0 once the event arrived
// (bounded: 30 s), 1 otherwise.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <sfstream/connector.hpp>
#include <sfstream/credentials.hpp>

#include "emulator/emulator.hpp"

int main() {
  namespace emu = sfstream::emulator;
  boost::asio::io_context org_io;
  auto work = boost::asio::make_work_guard(org_io);
  emu::emulator_options options;
  options.tls = false;
  options.data.platform_events = {{"Consumer_Check__e", {{"Body__c", "string", "", false}}}};
  auto org = std::make_unique<emu::org_emulator>(org_io.get_executor(), options);
  // Before the io_context runs, the emulator may be called from this thread.
  const auto published = org->rest().publish_platform_event("Consumer_Check__e", R"({"Body__c":"hello"})");
  if (!published) {
    std::printf("consumer: publish failed: %s\n", published.error->message.c_str());
    return 1;
  }
  sfstream::access_token access;
  access.token = org->issue_session(options.users.front().username);
  access.instance_url = org->base_url();
  std::thread org_thread([&] { org_io.run(); });

  std::atomic<bool> received{false};
  std::string body;
  {
    sfstream::connector connector([&](boost::asio::any_io_executor io) {
      sfstream::client_config config;
      config.credentials = sfstream::make_static_token_provider(io, access);
      return config;
    });
    sfstream::subscription_callbacks callbacks;
    callbacks.on_event = [&](const sfstream::event& e) {
      if (!received.exchange(true)) body = e.json();
    };
    if (auto error = connector.subscribe("/event/Consumer_Check__e", sfstream::replay_all, callbacks)) {
      std::printf("consumer: subscribe refused: %s\n", error.to_string().c_str());
      return 1;
    }
    connector.start();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!received && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    connector.stop();
  }
  boost::asio::post(org_io, [&] { org->stop(); });
  work.reset();
  org_thread.join();
  org.reset();
  if (!received || body.find("hello") == std::string::npos) {
    std::printf("consumer: no event from the in-process emulator\n");
    return 1;
  }
  std::printf("consumer: the in-process emulator delivered %s\n", body.c_str());
  return 0;
}
