// `sfstream emulator`: the local org on 127.0.0.1 until SIGINT/SIGTERM.
#include <array>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "cli/output.hpp"
#include "emulator/emulator.hpp"

namespace sfstream::cli {

namespace {

namespace asio = boost::asio;

const char* const emulator_help =
    "usage: sfstream emulator [--port N] [--http] [--long-poll-timeout S] [--client-expiry S]\n"
    "                         [--config FILE] [--state-dir DIR] [--daily-event-limit N]\n"
    "                         [--orgs NAME[,NAME...]]\n"
    "\n"
    "Runs the local org emulator on 127.0.0.1 until SIGINT or SIGTERM (then exits 0). The first\n"
    "line on stdout is one JSON object with its URLs and test credentials:\n"
    "  {\"base_url\":...,\"login_url\":...,\"cometd_path\":...,\"ca_file\":...,\"username\":...,\n"
    "   \"password\":...,\"security_token\":...,\"client_id\":...,\"client_secret\":...,\n"
    "   \"orgs\":[{\"name\":...,\"org_id\":...,\"base_url\":...,\"login_url\":...,\"username\":...,\n"
    "            \"password\":...,\"security_token\":...},...]}\n"
    "Point the other commands at it, e.g.\n"
    "  sfstream subscribe --login-url BASE_URL --ca-file CA_FILE --username U --password P \\\n"
    "      --security-token T /topic/AccountUpdates\n"
    "\n"
    "  --port N                 listen on port N (default: a free port)\n"
    "  --http                   plain HTTP instead of HTTPS (loopback only)\n"
    "  --long-poll-timeout S    how long a /meta/connect is held (default 110)\n"
    "  --client-expiry S        forget a client this long after its last reply (default 40)\n"
    "  --config FILE            JSON: {\"customObjects\":[...],\"platformEvents\":[...],\n"
    "                           "
    "\"cdcEntities\":[...],\"overflowThreshold\":N,\"queryBatchSize\":N}\n"
    "  --state-dir DIR          where the CA file is written (default: a fresh temporary dir);\n"
    "                           the org (records, retained events and their replay ids,\n"
    "                           PushTopics, channels) is kept there too: a restart with the same\n"
    "                           DIR is the same org\n"
    "  --daily-event-limit N    deliveries per rolling 24 h (default 10000; 0 = unlimited)\n"
    "  --orgs NAME,...          more orgs in the same process, each on its own port with the user\n"
    "                           demo@NAME.sfstream.local (password demo-pass, the demo token);\n"
    "                           any org's login URL logs every org's users in to their own org.\n"
    "                           The config file's \"orgs\" array describes orgs in full:\n"
    "                           [{\"name\",\"orgId\",\"users\":[{\"username\",\"password\",\n"
    "                           \"securityToken\",\"userId\"}],\"dailyEventLimit\",...}]\n"
    "\n"
    "exit codes: 0 stopped by a signal; 1 could not start; 2 usage.\n";

constexpr std::array<option_spec, 9> emulator_specs{{
    {"port", true, ""},
    {"http", false, ""},
    {"long-poll-timeout", true, ""},
    {"client-expiry", true, ""},
    {"config", true, ""},
    {"state-dir", true, ""},
    {"daily-event-limit", true, ""},
    {"orgs", true, ""},
    {"help", false, "", 'h'},
}};

}  // namespace

int run_emulator(std::span<char* const> args) {
  std::string error;
  auto parsed = parse_args(args, emulator_specs, error);
  if (!parsed) return usage_error("emulator", error);
  if (parsed->given("help")) {
    std::fputs(emulator_help, stdout);
    return exit_ok;
  }
  if (!parsed->positionals().empty()) {
    return usage_error("emulator", "unexpected argument '" + parsed->positionals()[0] + "'");
  }
  emulator::emulator_options options;
  if (auto p = parsed->value("port")) {
    auto v = parse_count(*p);
    if (!v || *v > 65535) return usage_error("emulator", "--port needs a number from 0 to 65535");
    options.port = static_cast<std::uint16_t>(*v);
  }
  options.tls = !parsed->given("http");
  if (auto t = parsed->value("long-poll-timeout")) {
    auto v = parse_seconds(*t);
    if (!v) return usage_error("emulator", "--long-poll-timeout needs a number of seconds");
    options.long_poll_timeout = *v;
  }
  if (auto t = parsed->value("client-expiry")) {
    auto v = parse_seconds(*t);
    if (!v || v->count() == 0)
      return usage_error("emulator", "--client-expiry needs a positive number of seconds");
    options.client_expiry = *v;
  }
  if (auto d = parsed->value("state-dir")) {
    options.state_dir = *d;
    options.persist = true;  // a restart with the same directory is the same org
  }
  if (auto n = parsed->value("daily-event-limit")) {
    auto v = parse_count(*n);
    if (!v) return usage_error("emulator", "--daily-event-limit needs a whole number");
    options.daily_event_limit = static_cast<std::uint64_t>(*v);
  }
  if (auto file = parsed->value("config")) {
    std::ifstream in(*file, std::ios::binary);
    if (!in) return usage_error("emulator", "cannot read --config file '" + *file + "'");
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    error_info why;
    auto data = emulator::data::data_options::parse_json(text, &why);
    if (!data)
      return usage_error("emulator", "bad --config file '" + *file + "': " + describe(why));
    options.data = std::move(*data);
    auto orgs = emulator::org_options::parse_json_list(text, &why);
    if (!orgs)
      return usage_error("emulator", "bad --config file '" + *file + "': " + describe(why));
    options.more_orgs = std::move(*orgs);
  }
  if (auto names = parsed->value("orgs")) {
    std::string_view list = *names;
    while (!list.empty()) {
      const auto comma = list.find(',');
      const std::string name(list.substr(0, comma));
      list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
      const bool valid = !name.empty() && name.find_first_not_of(
                                              "abcdefghijklmnopqrstuvwxyz0123456789-") == std::string::npos;
      if (!valid)
        return usage_error("emulator", "--orgs needs names of lower-case letters, digits and '-'");
      if (options.more_orgs.size() >= 90) return usage_error("emulator", "--orgs: at most 90 orgs");
      options.more_orgs.push_back(
          emulator::org_options::demo(name, static_cast<int>(options.more_orgs.size()) + 2));
    }
  }

  asio::io_context io;
  std::unique_ptr<emulator::org_emulator> emu;
  try {
    emu = std::make_unique<emulator::org_emulator>(io.get_executor(), options);
  } catch (const sfstream::error& e) {
    print_error("emulator: cannot start: " + describe(e.info()));
    return exit_failure;
  } catch (const std::exception& e) {
    print_error(std::string("emulator: cannot start: ") + e.what());
    return exit_failure;
  }
  print_line(emu->startup_json());

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (ec) return;
    print_error("emulator: stopping");
    emu->stop();
    io.stop();
  });
  io.run();
  emu.reset();
  return exit_ok;
}

}  // namespace sfstream::cli
