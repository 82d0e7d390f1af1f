// Command-line parsing shared by the subcommands: long options (`--opt value`, `--opt=value`),
// flags, environment fallbacks, and the credentials and network settings they describe.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "sfstream/credentials.hpp"
#include "sfstream/logger.hpp"
#include "sfstream/network.hpp"

namespace sfstream::cli {

/// One option a subcommand accepts.
struct option_spec {
  std::string_view name;    ///< Long name without dashes, e.g. "login-url".
  bool takes_value = true;  ///< False for flags such as --sandbox.
  std::string_view env;     ///< Environment variable read when the option is absent; may be empty.
  char short_name = '\0';   ///< e.g. 'v' for -v; '\0' for none.
};

/// The options every command that talks to an org accepts (credentials and network).
std::span<const option_spec> connection_options();

/// The result of parsing one subcommand's arguments.
class parsed_args {
 public:
  /// The option's value from the command line, else from its environment variable, else nullopt.
  std::optional<std::string> value(std::string_view name) const;
  /// The option's value from the command line only.
  std::optional<std::string> command_line_value(std::string_view name) const;
  /// True when the flag (or the value option) was given on the command line.
  bool given(std::string_view name) const;
  const std::vector<std::string>& positionals() const noexcept { return positionals_; }

 private:
  friend std::optional<parsed_args> parse_args(std::span<char* const> args,
                                               std::span<const option_spec> specs,
                                               std::string& error);
  std::map<std::string, std::string, std::less<>> values_;
  std::set<std::string, std::less<>> flags_;
  std::map<std::string, std::string, std::less<>> env_of_;
  std::vector<std::string> positionals_;
};

/// Parses `args` against `specs`. A later occurrence of an option wins. "--" ends the options.
/// Returns nullopt with a one-line `error` for an unknown option, a missing value, or a value
/// given to a flag.
std::optional<parsed_args> parse_args(std::span<char* const> args,
                                      std::span<const option_spec> specs, std::string& error);

/// Parses a whole non-negative number of seconds (fractions allowed, e.g. "0.5") into
/// milliseconds; nullopt when malformed, negative or absurdly large.
std::optional<std::chrono::milliseconds> parse_seconds(std::string_view text);
/// Parses a non-negative decimal integer that fits in `long long`; nullopt otherwise.
std::optional<long long> parse_count(std::string_view text);

/// The oldest API version the Streaming API serves with replay (Salesforce's CometD endpoint
/// refuses anything older with 400).
inline constexpr std::string_view oldest_api_version = "37.0";

/// Checks an --api-version value: digits, a dot, digits (e.g. "59.0"), at least 37.0. Returns
/// an empty string when it is usable, else the usage message saying why not.
std::string check_api_version(std::string_view text);

/// Network settings from --ca-file and --proxy (http://[user:pass@]host:port). Fills `error`
/// and returns nullopt for a malformed proxy URL.
std::optional<network_options> network_from(const parsed_args& args, std::string& error);

/// The credentials the options describe, in this order: --oauth FLOW; --access-token (with
/// --instance-url); --username/--password (SOAP login); then the same from the environment
/// (SF_ACCESS_TOKEN before SF_USERNAME). Fills `error` (a usage error) and returns null when
/// something required is missing or unreadable (e.g. the --jwt-key-file).
std::shared_ptr<credentials_provider> credentials_from(const parsed_args& args,
                                                       boost::asio::any_io_executor executor,
                                                       const network_options& network,
                                                       const logger& log, std::string& error);

/// Registers every secret option's value (password, tokens, client secret) for redaction
/// from everything the command prints.
void register_secrets(const parsed_args& args);

}  // namespace sfstream::cli
