// The subcommands of the `sfstream` command and its exit codes.
#pragma once

#include <span>
#include <string_view>

namespace sfstream::cli {

/// Exit codes, documented in --help and the README.
inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1;        ///< Any other failure.
inline constexpr int exit_usage = 2;          ///< Bad command line.
inline constexpr int exit_auth = 3;           ///< Authentication failed.
inline constexpr int exit_rejected = 4;       ///< Every subscription was rejected.
inline constexpr int exit_replay_gap = 5;     ///< A replay gap under --replay-policy fail.
inline constexpr int exit_network = 6;        ///< Network given up (only with --max-retries).
inline constexpr int exit_unreconciled = 7;   ///< A CDC gap or overflow could not be reconciled.
inline constexpr int exit_output_failed = 8;  ///< Writing events to stdout failed (e.g. disk full).
inline constexpr int exit_output_closed = 9;  ///< The reader of stdout went away (EPIPE).
inline constexpr int exit_store_failed = 10;  ///< The replay store could not be saved.
inline constexpr int exit_interrupted = 130;  ///< SIGINT/SIGTERM.

/// The top-level help: commands and exit codes.
extern const char* const usage_text;

/// Runs `command` with its arguments (those after the command name); returns the exit code.
int run_command(std::string_view command, int argc, char** argv);

// One function per subcommand; `args` are the arguments after the command name.
int run_subscribe(std::span<char* const> args);
int run_login(std::span<char* const> args);
int run_demo(std::span<char* const> args);
int run_emulator(std::span<char* const> args);
int run_topic(std::span<char* const> args);
int run_publish(std::span<char* const> args);
int run_poll(std::span<char* const> args);
int run_serve(std::span<char* const> args);

/// Prints "sfstream <command>: <message>" and a pointer to --help on stderr; returns exit_usage.
int usage_error(std::string_view command, std::string_view message);

}  // namespace sfstream::cli
