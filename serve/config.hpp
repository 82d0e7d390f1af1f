// The configuration of `sfstream serve`: a TOML file declaring the service (store, threads,
// logs, admin listener) and any number of connections, each an org with its credentials,
// channels, handler failure policy and sink.
//
// Secrets are given only by reference (`*_file` or `*_env`); the loader reads them, so a
// configuration that loads has every secret at hand, and one that refers to an unreadable file
// or a missing variable is refused. An inline secret value is refused as well: a config file is
// read by too many people and tools to hold one.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "serve/webhook_sink.hpp"
#include "sfstream/config.hpp"
#include "sfstream/logger.hpp"
#include "sfstream/network.hpp"
#include "sfstream/replay.hpp"

namespace sfstream::serve {

/// One problem found in a configuration: printed as `FILE:LINE: key: problem`.
struct config_problem {
  std::string file;
  std::size_t line = 0;  ///< 1-based; 0 when the problem has no place (an unreadable file).
  std::string key;       ///< Where in the document, e.g. "connection[1].channel[0].start".
  std::string problem;   ///< A sentence, no secret.

  std::string to_string() const;
};

/// How a connection logs in: every flow the library has.
enum class auth_flow {
  soap,                      ///< SOAP login(): username, password, security token.
  oauth_password,            ///< OAuth username-password grant.
  oauth_refresh_token,       ///< OAuth refresh-token grant.
  oauth_client_credentials,  ///< OAuth client-credentials grant.
  oauth_jwt,                 ///< OAuth JWT bearer grant (a PEM private key).
  static_token,              ///< A token you already have, with its instance URL.
};

/// The `[connection.auth]` table, with its secrets read.
struct auth_config {
  auth_flow flow = auth_flow::soap;
  std::string login_url;  ///< Empty: production (or sandbox when `sandbox`).
  bool sandbox = false;
  std::string username;
  std::string password;        ///< Read from password_file / password_env: a secret.
  std::string security_token;  ///< From security_token_file / _env: a secret; may be empty.
  std::string client_id;
  std::string client_secret;  ///< From client_secret_file / _env: a secret; may be empty.
  std::string refresh_token;  ///< From refresh_token_file / _env: a secret.
  std::string private_key_pem;  ///< From private_key_file: a secret.
  std::string audience;         ///< JWT `aud`; empty: the login URL.
  std::string access_token;     ///< From access_token_file / _env: a secret.
  std::string instance_url;     ///< With a static token.
  std::string soap_version = "64.0";
  bool enterprise_wsdl = false;
};

/// One `[[connection.channel]]`.
struct channel_config {
  std::string name;                         ///< /topic/X, /u/X, /event/X__e, /data/...
  std::int64_t start = replay_new;          ///< -1, -2 or a replay id; a stored position wins.
  std::optional<replay_policy> policy;      ///< The connection's when empty.
};

/// One polled object: `[[connection.object]]` of a poll connection, or
/// `[[connection.fallback.object]]` of a streaming one.
struct poll_object_config {
  std::string name;                 ///< The sObject API name, e.g. "Account".
  std::vector<std::string> fields;  ///< Carried in each event besides Id.
  std::string where;                ///< A SOQL condition ANDed to every poll; empty for none.
  std::chrono::milliseconds interval{0};  ///< 0: the table's interval.
};

/// The objects a connection polls, and how often.
struct polling_config {
  std::vector<poll_object_config> objects;
  /// Time between the end of one poll of an object and the start of the next.
  std::chrono::milliseconds interval{30'000};
  /// How far behind the newest SystemModstamp every poll reads again (late commits).
  std::chrono::milliseconds overlap{60'000};
};

/// `[connection.fallback]`: what a streaming connection polls while the org's daily event
/// allocation is spent, and how often it tries streaming again meanwhile.
struct fallback_config {
  polling_config polling;
  std::chrono::milliseconds probe_interval{300'000};
};

/// What a connection reads: CometD channels, or objects through REST queryAll.
enum class connection_kind { stream, poll };

/// The `[connection.sink]` table.
struct sink_config {
  enum class kind { stdout_lines, file, webhook, postgresql };
  kind type = kind::stdout_lines;
  // file
  std::filesystem::path path;
  std::uint64_t max_bytes = 100ull << 20;  ///< Rotate before a write would pass this size.
  unsigned keep = 5;                       ///< Rotated files kept: path.1 (newest) .. path.N.
  // webhook (its signing key read from signing_key_file / signing_key_env)
  webhook_options webhook;
  // postgresql: the service's store database, its events table
  /// NOTIFY channel told of every committed batch; empty: none.
  std::string notify;
  std::size_t line = 0;                    ///< Where the table is, for later checks.
};

/// One `[[connection]]`.
struct connection_config {
  std::string name;  ///< Unique in the file; the store key prefix and metric label.
  std::size_t line = 0;
  /// False: checked and listed in /status as stopped, but not started.
  bool enabled = true;
  auth_config auth;
  std::string api_version = "59.0";
  network_options network;
  replay_policy policy = replay_policy::earliest;
  handler_failure_policy on_failure{handler_failure::retry, 5, std::chrono::milliseconds(500),
                                    std::chrono::milliseconds(30'000), {}};
  /// `kind = "stream"` (the default: channels) or `"poll"` (objects).
  connection_kind kind = connection_kind::stream;
  std::vector<channel_config> channels;
  /// The objects of a poll connection.
  polling_config polling;
  /// A streaming connection's fallback to polling; none when absent.
  std::optional<fallback_config> fallback;
  sink_config sink;
  /// After a fatal error that a retry can fix, the connection starts again after this long,
  /// doubling up to `restart_backoff_max`.
  std::chrono::milliseconds restart_backoff{30'000};
  std::chrono::milliseconds restart_backoff_max{15 * 60'000};
  std::size_t queue_capacity = 10'000;
  std::size_t queue_max_bytes = 8u << 20;
};

enum class log_format { text, json };

/// `[service] store = "postgresql://…"`: positions (and leases, events) in PostgreSQL.
struct postgresql_store_config {
  /// The URI as given, which holds no password (one inside is refused).
  std::string conninfo;
  /// From store_password_file / store_password_env: a secret. Empty: libpq's own sources
  /// (PGPASSWORD, the password file).
  std::string password;
  /// The schema of sfstream's tables.
  std::string schema = "sfstream";
  /// Sessions open at most (`store_pool`); 0: one per sink thread.
  unsigned pool_size = 0;
  /// This process among the replicas sharing the store (`[service] replica`); empty: the
  /// host name and process id.
  std::string replica;
  /// How long a lease outlives its last renewal (`lease_ttl`, seconds); renewed every third.
  std::chrono::milliseconds lease_ttl{15'000};
};

/// The whole file.
struct service_config {
  std::filesystem::path file;            ///< Where it was read from.
  std::filesystem::path store_path;      ///< The one file replay store of the service.
  /// Set when `store` is a PostgreSQL URI (store_path is unused then).
  std::optional<postgresql_store_config> postgresql;
  unsigned threads = 2;                  ///< I/O threads shared by every connection.
  /// Threads for the blocking side shared by every connection: sink writes and fsyncs, and the
  /// store's commits (grouped across the connections committing at the same time). Kept off
  /// the I/O threads so a slow disk never holds another org's long polls.
  unsigned sink_threads = 8;
  log_format format = log_format::text;
  log_level level = log_level::info;
  std::optional<std::string> admin_bind;  ///< The admin listener; off when absent.
  std::uint16_t admin_port = 0;
  std::vector<connection_config> connections;
  /// Every secret read (passwords, tokens, keys), for redaction of everything written.
  std::vector<std::string> secrets;
};

/// Reads and validates `text` (the contents of `file`, named in problems). Every problem is
/// appended to `problems`; the result is empty when there is at least one. `environment`
/// answers `*_env` references (std::getenv when empty).
std::optional<service_config> parse_service_config(
    const std::string& text, const std::filesystem::path& file,
    std::vector<config_problem>& problems,
    const std::function<std::optional<std::string>(const std::string&)>& environment = {});

/// Reads `file` and parses it; an unreadable file is one problem.
std::optional<service_config> load_service_config(const std::filesystem::path& file,
                                                  std::vector<config_problem>& problems);

/// "soap", "oauth_password", ...
std::string_view to_string(auth_flow flow) noexcept;

}  // namespace sfstream::serve
