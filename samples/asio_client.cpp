// Embedding sfstream with Asio: log in with SOAP, subscribe to a PushTopic and a platform
// event, print each event, stop on Ctrl-C.
//
//   SF_USERNAME=… SF_PASSWORD=… SF_SECURITY_TOKEN=… ./sample_asio_client [login-url] [ca-file]
#include <cstdlib>
#include <iostream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <sfstream/client.hpp>
#include <sfstream/credentials.hpp>

int main(int argc, char** argv) {
  auto env = [](const char* name) { const char* v = std::getenv(name); return std::string(v ? v : ""); };
  boost::asio::io_context io;

  sfstream::soap_login_options login;
  login.login_url = argc > 1 ? argv[1] : "https://login.salesforce.com";
  login.username = env("SF_USERNAME");
  login.password = env("SF_PASSWORD");
  login.security_token = env("SF_SECURITY_TOKEN");

  sfstream::client_config config;
  if (argc > 2) config.network.ca_file = argv[2];
  config.credentials = sfstream::make_soap_login_provider(io.get_executor(), login, config.network);
  config.log.sink = [](sfstream::log_level level, std::string_view text) {
    std::cerr << sfstream::to_string(level) << ": " << text << '\n';
  };

  sfstream::client client{io.get_executor(), config};
  auto print = [](const sfstream::event& e) { std::cout << e.json() << std::endl; };
  client.subscribe("/topic/AccountUpdates", sfstream::replay_new, print);
  client.subscribe("/event/Demo_Event__e", sfstream::replay_all, print);

  boost::asio::signal_set signals{io, SIGINT, SIGTERM};
  signals.async_wait([&](auto, int) { client.cancel(); });

  int status = 0;
  client.async_run([&](std::error_code ec) {
    if (ec) {
      std::cerr << "stopped: " << client.last_error().to_string() << '\n';
      status = 1;
    }
    signals.cancel();
  });
  io.run();
  return status;
}
