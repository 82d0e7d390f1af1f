// The `sfstream` command: dispatches to its subcommands.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "cli/commands.hpp"
#include "sfstream/version.hpp"

int main(int argc, char** argv) {
  // A reader that goes away (`sfstream subscribe | head`) must show as EPIPE from write(2),
  // which the command reports and stops on, not kill the process before it can say so.
  std::signal(SIGPIPE, SIG_IGN);
  // Likewise a write past the file size limit (ulimit -f) fails with EFBIG, reported as an
  // output or replay store failure, instead of killing the process.
  std::signal(SIGXFSZ, SIG_IGN);
  if (argc < 2) {
    std::fputs(sfstream::cli::usage_text, stderr);
    return sfstream::cli::exit_usage;
  }
  const std::string_view command = argv[1];
  if (command == "--help" || command == "-h" || command == "help") {
    std::fputs(sfstream::cli::usage_text, stdout);
    return 0;
  }
  if (command == "--version") {
    std::printf("sfstream %s\n", sfstream::version_string());
    return 0;
  }
  return sfstream::cli::run_command(command, argc - 2, argv + 2);
}
