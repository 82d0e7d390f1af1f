// The subcommands of the `sfstream` command and its exit codes.
#pragma once

#include <string_view>

namespace sfstream::cli {

/// Exit codes, documented in --help and the README.
inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1;       ///< Any other failure.
inline constexpr int exit_usage = 2;         ///< Bad command line.
inline constexpr int exit_auth = 3;          ///< Authentication failed.
inline constexpr int exit_rejected = 4;      ///< A subscription was rejected.
inline constexpr int exit_replay_gap = 5;    ///< A replay gap under --replay-policy fail.
inline constexpr int exit_network = 6;       ///< Network given up (only with bounded retries).
inline constexpr int exit_interrupted = 130; ///< SIGINT/SIGTERM.

extern const char* const usage_text;

/// Runs `command` with its arguments; returns the exit code.
int run_command(std::string_view command, int argc, char** argv);

}  // namespace sfstream::cli
