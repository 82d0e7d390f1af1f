#include "cli/commands.hpp"

#include <cstdio>
#include <string>

namespace sfstream::cli {

const char* const usage_text =
    "usage: sfstream <command> [options]\n"
    "\n"
    "commands:\n"
    "  subscribe [options] CHANNEL[=REPLAY]...  print events as JSON lines on stdout\n"
    "  login [options]                          log in; print instance URL, user id, org id\n"
    "  demo [--follow]                          stream the four kinds of events from an\n"
    "                                           embedded org emulator\n"
    "  emulator [options]                       run the local org emulator\n"
    "  topic create|list|delete [options] ...   manage PushTopics\n"
    "  publish [options] CHANNEL PAYLOAD        publish a platform event or push a generic event\n"
    "  poll [options] OBJECT...                 print record changes found by polling REST\n"
    "  serve --config FILE                      run many connections as a service (TOML config)\n"
    "\n"
    "Run 'sfstream <command> --help' for the options of a command.\n"
    "\n"
    "exit codes:\n"
    "  0    done\n"
    "  1    other failure (network, server error, timeout)\n"
    "  2    usage error\n"
    "  3    authentication failed\n"
    "  4    subscription rejected (every channel of the command)\n"
    "  5    replay gap under --replay-policy fail\n"
    "  6    network given up (only when --max-retries bounds the retries)\n"
    "  7    a Change Data Capture gap or overflow could not be reconciled\n"
    "  8    output failed: an event could not be written to stdout (e.g. disk full)\n"
    "  9    the reader of stdout went away (broken pipe)\n"
    "  10   the replay store could not be saved\n"
    "  130  interrupted (SIGINT or SIGTERM; the stop is graceful)\n";

int usage_error(std::string_view command, std::string_view message) {
  std::fprintf(stderr, "sfstream %.*s: %.*s\nRun 'sfstream %.*s --help' for usage.\n",
               static_cast<int>(command.size()), command.data(), static_cast<int>(message.size()),
               message.data(), static_cast<int>(command.size()), command.data());
  return exit_usage;
}

int run_command(std::string_view command, int argc, char** argv) {
  const std::span<char* const> args(argv, static_cast<std::size_t>(argc));
  if (command == "subscribe") return run_subscribe(args);
  if (command == "login") return run_login(args);
  if (command == "demo") return run_demo(args);
  if (command == "emulator") return run_emulator(args);
  if (command == "topic") return run_topic(args);
  if (command == "publish") return run_publish(args);
  if (command == "poll") return run_poll(args);
  if (command == "serve") return run_serve(args);
  std::fprintf(stderr, "sfstream: unknown command '%.*s'\n%s", static_cast<int>(command.size()),
               command.data(), usage_text);
  return exit_usage;
}

}  // namespace sfstream::cli
