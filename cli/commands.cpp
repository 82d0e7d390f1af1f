#include "cli/commands.hpp"

#include <cstdio>
#include <string>

namespace sfstream::cli {

const char* const usage_text =
    "usage: sfstream <command> [options]\n"
    "\n"
    "commands:\n"
    "  subscribe [options] CHANNEL...   print events as JSON lines\n"
    "  login [options]                  log in; print instance URL, user id, org id\n"
    "  demo [--follow]                  run the demo against the embedded org emulator\n"
    "  emulator [options]               run the local org emulator\n"
    "  topic, publish                   manage PushTopics, publish events\n"
    "\n"
    "exit codes: 0 done; 2 usage; 3 authentication failed; 4 subscription rejected;\n"
    "            5 replay gap under --replay-policy fail; 6 network given up; 130 interrupted\n";

int run_command(std::string_view command, int, char**) {
  std::fprintf(stderr, "sfstream: unknown command '%.*s'\n%s", static_cast<int>(command.size()),
               command.data(), usage_text);
  return exit_usage;
}

}  // namespace sfstream::cli
