#include "serve/config.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include "bayeux/channel.hpp"

namespace sfstream::serve {

std::string config_problem::to_string() const {
  std::string out = file;
  if (line != 0) out += ":" + std::to_string(line);
  out += ": ";
  if (!key.empty()) out += key + ": ";
  out += problem;
  return out;
}

std::string_view to_string(auth_flow flow) noexcept {
  switch (flow) {
    case auth_flow::soap:
      return "soap";
    case auth_flow::oauth_password:
      return "oauth_password";
    case auth_flow::oauth_refresh_token:
      return "oauth_refresh_token";
    case auth_flow::oauth_client_credentials:
      return "oauth_client_credentials";
    case auth_flow::oauth_jwt:
      return "oauth_jwt";
    case auth_flow::static_token:
      return "static";
  }
  return "?";
}

namespace {

using environment_fn = std::function<std::optional<std::string>(const std::string&)>;

/// Secret values that must never be written into the file itself: each has a `_file` and
/// (except keys) an `_env` form.
const std::set<std::string, std::less<>> inline_secret_keys{
    "password",     "security_token", "client_secret", "refresh_token",
    "access_token", "private_key",    "signing_key",   "proxy_password", "store_password"};

std::size_t line_of(const toml::node& node) {
  return static_cast<std::size_t>(node.source().begin.line);
}

std::string type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    default:
      return "a date or time";
  }
}

/// Walks one document, collecting every problem instead of stopping at the first.
class checker {
 public:
  checker(std::string file, std::vector<config_problem>& problems, environment_fn environment)
      : file_(std::move(file)), problems_(problems), environment_(std::move(environment)) {}

  void problem(std::size_t line, const std::string& key, std::string text) {
    problems_.push_back({file_, line, key, std::move(text)});
  }
  std::size_t count() const { return problems_.size(); }

  /// Reports every key of `table` not in `allowed` (an inline secret with its own advice).
  void check_keys(const toml::table& table, const std::string& path,
                  const std::set<std::string, std::less<>>& allowed) {
    for (auto&& [key, value] : table) {
      const std::string name(key.str());
      if (allowed.count(name) != 0) continue;
      const std::size_t line = static_cast<std::size_t>(key.source().begin.line);
      if (inline_secret_keys.count(name) != 0) {
        const bool file_only = name == "private_key" || name == "signing_key";
        problem(line, join(path, name),
                "secrets are not accepted inline: give " + name + "_file" +
                    (file_only && name == "private_key" ? "" : " or " + name + "_env") +
                    " instead");
      } else {
        problem(line, join(path, name), "unknown key");
      }
      (void)value;
    }
  }

  static std::string join(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
  }

  std::optional<std::string> string(const toml::table& table, const std::string& path,
                                    std::string_view key, bool required, std::size_t table_line) {
    const toml::node* node = table.get(key);
    if (node == nullptr) {
      if (required) problem(table_line, join(path, key), "missing (required)");
      return std::nullopt;
    }
    if (const auto* s = node->as_string()) {
      if (s->get().empty() && required) {
        problem(line_of(*node), join(path, key), "must not be empty");
        return std::nullopt;
      }
      return s->get();
    }
    problem(line_of(*node), join(path, key), "must be a string, not " + type_name(*node));
    return std::nullopt;
  }

  std::optional<std::int64_t> integer(const toml::table& table, const std::string& path,
                                      std::string_view key, std::int64_t min, std::int64_t max) {
    const toml::node* node = table.get(key);
    if (node == nullptr) return std::nullopt;
    const auto* i = node->as_integer();
    if (i == nullptr) {
      problem(line_of(*node), join(path, key), "must be an integer, not " + type_name(*node));
      return std::nullopt;
    }
    if (i->get() < min || i->get() > max) {
      problem(line_of(*node), join(path, key),
              "must be from " + std::to_string(min) + " to " + std::to_string(max));
      return std::nullopt;
    }
    return i->get();
  }

  std::optional<bool> boolean(const toml::table& table, const std::string& path,
                              std::string_view key) {
    const toml::node* node = table.get(key);
    if (node == nullptr) return std::nullopt;
    if (const auto* b = node->as_boolean()) return b->get();
    problem(line_of(*node), join(path, key), "must be true or false, not " + type_name(*node));
    return std::nullopt;
  }

  /// A duration in seconds (integer or fraction), positive.
  std::optional<std::chrono::milliseconds> seconds(const toml::table& table,
                                                   const std::string& path, std::string_view key) {
    const toml::node* node = table.get(key);
    if (node == nullptr) return std::nullopt;
    double v = 0;
    if (const auto* i = node->as_integer()) {
      v = static_cast<double>(i->get());
    } else if (const auto* f = node->as_floating_point()) {
      v = f->get();
    } else {
      problem(line_of(*node), join(path, key),
              "must be a number of seconds, not " + type_name(*node));
      return std::nullopt;
    }
    if (!(v > 0) || v > 7 * 24 * 3600.0) {
      problem(line_of(*node), join(path, key), "must be more than 0 and at most a week of seconds");
      return std::nullopt;
    }
    return std::chrono::milliseconds(static_cast<std::int64_t>(v * 1000.0 + 0.5));
  }

  /// A byte size: an integer or a string such as "64MiB", "10MB", "512KiB", "1GiB".
  std::optional<std::uint64_t> bytes(const toml::table& table, const std::string& path,
                                     std::string_view key) {
    const toml::node* node = table.get(key);
    if (node == nullptr) return std::nullopt;
    std::optional<std::uint64_t> v;
    if (const auto* i = node->as_integer()) {
      if (i->get() > 0) v = static_cast<std::uint64_t>(i->get());
    } else if (const auto* s = node->as_string()) {
      v = parse_size(s->get());
    }
    if (!v || *v < 1024) {
      problem(line_of(*node), join(path, key),
              "must be a size of at least 1024 bytes: an integer or e.g. \"64MiB\"");
      return std::nullopt;
    }
    return v;
  }

  static std::optional<std::uint64_t> parse_size(std::string_view text) {
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || end == text.data()) return std::nullopt;
    std::string unit(end, text.data() + text.size());
    while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
    for (auto& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::uint64_t factor = 1;
    if (unit.empty() || unit == "b") {
      factor = 1;
    } else if (unit == "k" || unit == "kb" || unit == "kib") {
      factor = 1ull << 10;
    } else if (unit == "m" || unit == "mb" || unit == "mib") {
      factor = 1ull << 20;
    } else if (unit == "g" || unit == "gb" || unit == "gib") {
      factor = 1ull << 30;
    } else {
      return std::nullopt;
    }
    if (n > (1ull << 50) / factor) return std::nullopt;
    return n * factor;
  }

  /// A secret given as `<base>_file` (read, one trailing newline dropped) or `<base>_env`.
  std::optional<std::string> secret(const toml::table& table, const std::string& path,
                                    const std::string& base, bool required,
                                    std::size_t table_line, bool env_allowed = true) {
    const std::string file_key = base + "_file";
    const std::string env_key = base + "_env";
    const toml::node* file = table.get(file_key);
    const toml::node* env = env_allowed ? table.get(env_key) : nullptr;
    if (file != nullptr && env != nullptr) {
      problem(line_of(*env), join(path, env_key), "give either " + file_key + " or " + env_key +
                                                      ", not both");
      return std::nullopt;
    }
    if (file == nullptr && env == nullptr) {
      if (required)
        problem(table_line, join(path, file_key),
                "missing (required): give " + file_key + (env_allowed ? " or " + env_key : ""));
      return std::nullopt;
    }
    if (file != nullptr) {
      auto name = string(table, path, file_key, true, table_line);
      if (!name) return std::nullopt;
      std::ifstream in(*name, std::ios::binary);
      std::string value;
      if (in) value.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      if (!in && !in.eof()) {
        problem(line_of(*file), join(path, file_key), "cannot read the file '" + *name + "'");
        return std::nullopt;
      }
      if (!value.empty() && value.back() == '\n') value.pop_back();
      if (!value.empty() && value.back() == '\r') value.pop_back();
      if (value.empty()) {
        problem(line_of(*file), join(path, file_key), "the file '" + *name + "' is empty");
        return std::nullopt;
      }
      secrets.push_back(value);
      return value;
    }
    auto name = string(table, path, env_key, true, table_line);
    if (!name) return std::nullopt;
    auto value = environment_(*name);
    if (!value || value->empty()) {
      problem(line_of(*env), join(path, env_key),
              "the environment variable " + *name + " is not set or empty");
      return std::nullopt;
    }
    secrets.push_back(*value);
    return value;
  }

  const toml::table* subtable(const toml::table& table, const std::string& path,
                              std::string_view key) {
    const toml::node* node = table.get(key);
    if (node == nullptr) return nullptr;
    if (const auto* t = node->as_table()) return t;
    problem(line_of(*node), join(path, key), "must be a table, not " + type_name(*node));
    return nullptr;
  }

  std::vector<std::string> secrets;

 private:
  std::string file_;
  std::vector<config_problem>& problems_;
  environment_fn environment_;
};

std::optional<log_level> parse_level(std::string_view text) {
  if (text == "trace") return log_level::trace;
  if (text == "debug") return log_level::debug;
  if (text == "info") return log_level::info;
  if (text == "warning" || text == "warn") return log_level::warning;
  if (text == "error") return log_level::error;
  return std::nullopt;
}

std::optional<auth_flow> parse_flow(std::string_view text) {
  if (text == "soap") return auth_flow::soap;
  if (text == "oauth_password") return auth_flow::oauth_password;
  if (text == "oauth_refresh_token") return auth_flow::oauth_refresh_token;
  if (text == "oauth_client_credentials") return auth_flow::oauth_client_credentials;
  if (text == "oauth_jwt") return auth_flow::oauth_jwt;
  if (text == "static") return auth_flow::static_token;
  return std::nullopt;
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (const char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
      return false;
  }
  return true;
}

bool loopback_http(std::string_view url) {
  return url.starts_with("http://127.0.0.1") || url.starts_with("http://localhost") ||
         url.starts_with("http://[::1]");
}

void check_url(checker& c, const toml::table& table, const std::string& path,
               std::string_view key) {
  const toml::node* node = table.get(key);
  const auto* s = node != nullptr ? node->as_string() : nullptr;
  if (s == nullptr) return;
  const std::string& url = s->get();
  if (url.starts_with("https://") && url.size() > 8) return;
  if (loopback_http(url)) return;
  c.problem(line_of(*node), checker::join(path, key),
            url.starts_with("http://")
                ? "plain http:// is accepted only for a loopback host: use https://"
                : "must be an https:// URL");
}

void parse_auth(checker& c, const toml::table& t, const std::string& path, std::size_t line,
                auth_config& out) {
  static const std::set<std::string, std::less<>> allowed{
      "flow",
      "login_url",
      "sandbox",
      "username",
      "password_file",
      "password_env",
      "security_token_file",
      "security_token_env",
      "client_id",
      "client_secret_file",
      "client_secret_env",
      "refresh_token_file",
      "refresh_token_env",
      "private_key_file",
      "audience",
      "access_token_file",
      "access_token_env",
      "instance_url",
      "soap_version",
      "enterprise_wsdl"};
  c.check_keys(t, path, allowed);
  if (auto flow = c.string(t, path, "flow", false, line)) {
    auto f = parse_flow(*flow);
    if (!f) {
      c.problem(line_of(*t.get("flow")), checker::join(path, "flow"),
                "must be soap, oauth_password, oauth_refresh_token, oauth_client_credentials, "
                "oauth_jwt or static (got '" + *flow + "')");
      return;
    }
    out.flow = *f;
  }
  check_url(c, t, path, "login_url");
  check_url(c, t, path, "instance_url");
  out.login_url = c.string(t, path, "login_url", false, line).value_or("");
  out.sandbox = c.boolean(t, path, "sandbox").value_or(false);
  out.soap_version = c.string(t, path, "soap_version", false, line).value_or("64.0");
  out.enterprise_wsdl = c.boolean(t, path, "enterprise_wsdl").value_or(false);
  out.audience = c.string(t, path, "audience", false, line).value_or("");
  const auto flow = out.flow;
  const bool oauth = flow != auth_flow::soap && flow != auth_flow::static_token;
  const bool needs_user =
      flow == auth_flow::soap || flow == auth_flow::oauth_password || flow == auth_flow::oauth_jwt;
  out.username = c.string(t, path, "username", needs_user, line).value_or("");
  if (flow == auth_flow::soap || flow == auth_flow::oauth_password) {
    out.password = c.secret(t, path, "password", true, line).value_or("");
    out.security_token = c.secret(t, path, "security_token", false, line).value_or("");
  }
  if (oauth) {
    out.client_id = c.string(t, path, "client_id", true, line).value_or("");
    out.client_secret =
        c.secret(t, path, "client_secret", flow == auth_flow::oauth_client_credentials, line)
            .value_or("");
  }
  if (flow == auth_flow::oauth_refresh_token)
    out.refresh_token = c.secret(t, path, "refresh_token", true, line).value_or("");
  if (flow == auth_flow::oauth_jwt)
    out.private_key_pem = c.secret(t, path, "private_key", true, line, false).value_or("");
  if (flow == auth_flow::static_token) {
    out.access_token = c.secret(t, path, "access_token", true, line).value_or("");
    out.instance_url = c.string(t, path, "instance_url", true, line).value_or("");
  }
  // A key that the chosen flow does not use is a mistake worth saying (a JWT key under soap).
  const std::map<std::string, bool, std::less<>> used{
      {"password_file", flow == auth_flow::soap || flow == auth_flow::oauth_password},
      {"client_id", oauth},
      {"refresh_token_file", flow == auth_flow::oauth_refresh_token},
      {"private_key_file", flow == auth_flow::oauth_jwt},
      {"access_token_file", flow == auth_flow::static_token},
      {"instance_url", flow == auth_flow::static_token}};
  for (const auto& [key, ok] : used) {
    if (const toml::node* n = t.get(key); n != nullptr && !ok)
      c.problem(line_of(*n), checker::join(path, key),
                "not used by flow " + std::string(to_string(flow)));
  }
}

void parse_network(checker& c, const toml::table& t, const std::string& path, std::size_t line,
                   network_options& out) {
  static const std::set<std::string, std::less<>> allowed{
      "ca_file",        "proxy",           "proxy_username", "proxy_password_file",
      "proxy_password_env", "connect_timeout", "request_timeout", "max_body_bytes"};
  c.check_keys(t, path, allowed);
  if (auto ca = c.string(t, path, "ca_file", false, line)) {
    std::ifstream in(*ca);
    if (!in)
      c.problem(line_of(*t.get("ca_file")), checker::join(path, "ca_file"),
                "cannot read the file '" + *ca + "'");
    out.ca_file = *ca;
  }
  if (auto proxy = c.string(t, path, "proxy", false, line)) {
    if (!proxy->starts_with("http://") || proxy->find('@') != std::string::npos) {
      c.problem(line_of(*t.get("proxy")), checker::join(path, "proxy"),
                "must be http://host:port (give the user as proxy_username and the password as "
                "proxy_password_file or proxy_password_env)");
    } else {
      proxy_options p;
      p.url = *proxy;
      p.username = c.string(t, path, "proxy_username", false, line).value_or("");
      p.password = c.secret(t, path, "proxy_password", false, line).value_or("");
      out.proxy = std::move(p);
    }
  }
  if (auto v = c.seconds(t, path, "connect_timeout")) out.connect_timeout = *v;
  if (auto v = c.seconds(t, path, "request_timeout")) out.request_timeout = *v;
  if (auto v = c.bytes(t, path, "max_body_bytes")) out.max_body_bytes = static_cast<std::size_t>(*v);
}

void parse_failure(checker& c, const toml::table& t, const std::string& path, std::size_t line,
                   handler_failure_policy& out) {
  static const std::set<std::string, std::less<>> allowed{
      "action", "max_retries", "backoff_initial", "backoff_max", "dead_letter_path"};
  c.check_keys(t, path, allowed);
  if (auto a = c.string(t, path, "action", false, line)) {
    if (*a == "stop") {
      out.action = handler_failure::stop;
    } else if (*a == "retry") {
      out.action = handler_failure::retry;
    } else if (*a == "dead_letter") {
      out.action = handler_failure::dead_letter;
    } else {
      c.problem(line_of(*t.get("action")), checker::join(path, "action"),
                "must be stop, retry or dead_letter (got '" + *a + "')");
    }
  }
  if (auto n = c.integer(t, path, "max_retries", 0, 1'000'000)) out.max_retries = static_cast<int>(*n);
  if (auto v = c.seconds(t, path, "backoff_initial")) out.retry_backoff_initial = *v;
  if (auto v = c.seconds(t, path, "backoff_max")) out.retry_backoff_max = *v;
  if (auto p = c.string(t, path, "dead_letter_path", out.action == handler_failure::dead_letter,
                        line))
    out.dead_letter_path = *p;
}

void parse_sink(checker& c, const toml::table& t, const std::string& path, std::size_t line,
                sink_config& out) {
  out.line = line;
  const auto type = c.string(t, path, "type", true, line);
  std::set<std::string, std::less<>> allowed{"type"};
  if (type == "stdout") {
    out.type = sink_config::kind::stdout_lines;
  } else if (type == "file") {
    out.type = sink_config::kind::file;
    allowed.insert({"path", "max_size", "keep"});
    if (auto p = c.string(t, path, "path", true, line)) out.path = *p;
    if (auto m = c.bytes(t, path, "max_size")) out.max_bytes = *m;
    if (auto k = c.integer(t, path, "keep", 0, 1000)) out.keep = static_cast<unsigned>(*k);
  } else if (type == "webhook") {
    out.type = sink_config::kind::webhook;
    allowed.insert({"url", "signing_key_file", "signing_key_env", "max_batch_events",
                    "max_batch_bytes", "request_timeout", "backoff_initial", "backoff_max",
                    "retry_after_max", "max_retries", "dead_letter_path", "ca_file",
                    "network"});
    auto& w = out.webhook;
    check_url(c, t, path, "url");
    w.url = c.string(t, path, "url", true, line).value_or("");
    w.signing_key = c.secret(t, path, "signing_key", true, line).value_or("");
    if (auto n = c.integer(t, path, "max_batch_events", 1, 100'000))
      w.max_batch_events = static_cast<std::size_t>(*n);
    if (auto n = c.bytes(t, path, "max_batch_bytes")) w.max_batch_bytes = static_cast<std::size_t>(*n);
    if (auto v = c.seconds(t, path, "request_timeout")) w.request_timeout = *v;
    if (auto v = c.seconds(t, path, "backoff_initial")) w.backoff_initial = *v;
    if (auto v = c.seconds(t, path, "backoff_max")) w.backoff_max = *v;
    if (auto v = c.seconds(t, path, "retry_after_max")) w.retry_after_max = *v;
    if (auto n = c.integer(t, path, "max_retries", 0, 1'000'000))
      w.max_retries = static_cast<unsigned>(*n);
    if (auto p = c.string(t, path, "dead_letter_path", false, line)) w.dead_letter_path = *p;
    // The receiver is reached as Salesforce is: the same network keys (proxy, CA, timeouts).
    if (const auto* network = c.subtable(t, path, "network"))
      parse_network(c, *network, checker::join(path, "network"), line_of(*network), w.network);
    if (auto ca = c.string(t, path, "ca_file", false, line)) w.network.ca_file = *ca;
  } else if (type == "postgresql") {
    out.type = sink_config::kind::postgresql;
    allowed.insert("notify");
    if (auto n = c.string(t, path, "notify", false, line)) {
      const bool ok = !n->empty() && n->size() <= 63 &&
                      std::all_of(n->begin(), n->end(), [](char ch) {
                        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_';
                      });
      if (!ok)
        c.problem(line_of(*t.get("notify")), checker::join(path, "notify"),
                  "must be a NOTIFY channel name: 1-63 letters, digits or '_'");
      out.notify = *n;
    }
  } else if (type) {
    c.problem(line_of(*t.get("type")), checker::join(path, "type"),
              "must be stdout, file, webhook or postgresql (got '" + *type + "')");
    return;
  } else {
    return;
  }
  c.check_keys(t, path, allowed);
}

/// True when the userinfo or the query of a postgresql:// URI carries a password.
bool uri_has_password(std::string_view uri) {
  const auto scheme_end = uri.find("://");
  std::string_view rest = uri.substr(scheme_end + 3);
  const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (const auto at = authority.rfind('@'); at != std::string_view::npos &&
                                            authority.substr(0, at).find(':') != std::string_view::npos)
    return true;
  const auto q = rest.find('?');
  if (q == std::string_view::npos) return false;
  std::string_view query = rest.substr(q + 1);
  query = query.substr(0, query.find('#'));
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (pair.substr(0, pair.find('=')) == "password") return true;
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return false;
}

/// `store` (a file path or a postgresql:// URI) and the keys of a PostgreSQL store.
void parse_store(checker& c, const toml::table& svc, std::size_t line, service_config& out) {
  const auto store = c.string(svc, "service", "store", false, line);
  const bool postgres =
      store && (store->starts_with("postgresql://") || store->starts_with("postgres://"));
  if (!postgres) {
    if (store) out.store_path = *store;
    for (const char* key : {"store_password_file", "store_password_env", "store_schema",
                            "store_pool"}) {
      if (const toml::node* n = svc.get(key))
        c.problem(line_of(*n), checker::join("service", key),
                  "only with a PostgreSQL store (store = \"postgresql://user@host/db\")");
    }
    return;
  }
  postgresql_store_config pg;
  if (uri_has_password(*store)) {
    // The text is not repeated: it holds the secret.
    c.problem(line_of(*svc.get("store")), "service.store",
              "secrets are not accepted inline: remove the password from the URI and give "
              "store_password_file or store_password_env instead");
  }
  pg.conninfo = *store;
  pg.password = c.secret(svc, "service", "store_password", false, line).value_or("");
  if (auto schema = c.string(svc, "service", "store_schema", false, line)) {
    const bool ok = !schema->empty() && schema->size() <= 63 &&
                    !std::isdigit(static_cast<unsigned char>((*schema)[0])) &&
                    std::all_of(schema->begin(), schema->end(), [](char ch) {
                      return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_';
                    });
    if (!ok)
      c.problem(line_of(*svc.get("store_schema")), "service.store_schema",
                "must be 1-63 letters, digits or '_', not starting with a digit");
    pg.schema = *schema;
  }
  if (auto n = c.integer(svc, "service", "store_pool", 1, 256)) pg.pool_size = static_cast<unsigned>(*n);
  out.postgresql = std::move(pg);
}

/// `replica` and `lease_ttl`: how this process shares a PostgreSQL store's connections.
void parse_replica(checker& c, const toml::table& svc, std::size_t line, service_config& out) {
  if (!out.postgresql) {
    for (const char* key : {"replica", "lease_ttl"})
      if (const toml::node* n = svc.get(key))
        c.problem(line_of(*n), checker::join("service", key),
                  "only with a PostgreSQL store: replicas share connections through it");
    return;
  }
  if (auto r = c.string(svc, "service", "replica", false, line)) {
    const bool ok = !r->empty() && r->size() <= 200 &&
                    std::all_of(r->begin(), r->end(), [](char ch) {
                      return static_cast<unsigned char>(ch) > ' ' && ch != 0x7f;
                    });
    if (!ok)
      c.problem(line_of(*svc.get("replica")), "service.replica",
                "must be 1-200 characters without spaces or control characters");
    out.postgresql->replica = *r;
  }
  if (auto v = c.seconds(svc, "service", "lease_ttl")) {
    if (*v < std::chrono::seconds(1) || *v > std::chrono::minutes(10))
      c.problem(line_of(*svc.get("lease_ttl")), "service.lease_ttl",
                "must be 1 to 600 seconds (a replica that stops answering keeps its "
                "connections this long)");
    out.postgresql->lease_ttl = *v;
  }
}

void parse_channel(checker& c, const toml::table& t, const std::string& path, std::size_t line,
                   channel_config& out) {
  static const std::set<std::string, std::less<>> allowed{"name", "start", "replay_policy"};
  c.check_keys(t, path, allowed);
  if (auto name = c.string(t, path, "name", true, line)) {
    auto parsed = bayeux::parse_channel(*name);
    if (!parsed || !parsed->subscribable()) {
      const std::string why = parsed ? "not a channel one can subscribe to"
                                     : parsed.error().diag.server_text.empty()
                                           ? parsed.error().to_string()
                                           : parsed.error().diag.server_text;
      c.problem(line_of(*t.get("name")), checker::join(path, "name"),
                "bad channel '" + *name + "': " + why);
    }
    out.name = *name;
  }
  if (const toml::node* start = t.get("start")) {
    std::optional<std::int64_t> id;
    if (const auto* i = start->as_integer()) {
      if (i->get() >= -2) id = i->get();
    } else if (const auto* s = start->as_string()) {
      id = parse_replay_id(s->get());
    }
    if (!id) {
      c.problem(line_of(*start), checker::join(path, "start"),
                "bad replay id: use -1 (new events), -2 (all retained) or a replay id");
    } else {
      out.start = *id;
    }
  }
  if (auto p = c.string(t, path, "replay_policy", false, line)) {
    out.policy = parse_replay_policy(*p);
    if (!out.policy)
      c.problem(line_of(*t.get("replay_policy")), checker::join(path, "replay_policy"),
                "must be earliest, tip or fail (got '" + *p + "')");
  }
}

// An sObject or field API name: a letter, then letters, digits and '_' (a relationship
// field may be dotted).
bool api_name(std::string_view name, bool dotted) {
  if (name.empty() || name.size() > 80) return false;
  bool start = true;
  for (const char ch : name) {
    const auto u = static_cast<unsigned char>(ch);
    if (dotted && ch == '.' && !start) {
      start = true;
      continue;
    }
    if (start ? !std::isalpha(u) : !std::isalnum(u) && ch != '_') return false;
    start = false;
  }
  return !start;
}

void parse_object(checker& c, const toml::table& t, const std::string& path, std::size_t line,
                  poll_object_config& out) {
  static const std::set<std::string, std::less<>> allowed{"name", "fields", "where", "interval"};
  c.check_keys(t, path, allowed);
  if (auto name = c.string(t, path, "name", true, line)) {
    if (!api_name(*name, false))
      c.problem(line_of(*t.get("name")), checker::join(path, "name"),
                "'" + *name + "' is not an sObject API name (e.g. Account, Invoice__c)");
    out.name = *name;
  }
  if (const toml::node* fields = t.get("fields")) {
    const auto* list = fields->as_array();
    if (list == nullptr) {
      c.problem(line_of(*fields), checker::join(path, "fields"),
                "must be an array of field names, e.g. [\"Name\", \"Industry\"]");
    } else {
      for (const auto& f : *list) {
        const auto* s = f.as_string();
        if (s == nullptr || !api_name(s->get(), true)) {
          c.problem(line_of(f), checker::join(path, "fields"),
                    s ? "'" + s->get() + "' is not a field API name"
                      : "must hold strings, not " + type_name(f));
          continue;
        }
        out.fields.push_back(s->get());
      }
    }
  }
  out.where = c.string(t, path, "where", false, line).value_or("");
  if (auto v = c.seconds(t, path, "interval")) out.interval = *v;
}

/// The `object` array of `t` and its interval and overlap.
void parse_polling(checker& c, const toml::table& t, const std::string& path, std::size_t line,
                   std::string_view array_name, polling_config& out) {
  if (auto v = c.seconds(t, path, "interval")) out.interval = *v;
  if (auto v = c.seconds(t, path, "overlap")) out.overlap = *v;
  const toml::node* objects = t.get("object");
  const toml::array* list = objects != nullptr ? objects->as_array() : nullptr;
  if (objects == nullptr) {
    c.problem(line, checker::join(path, "object"),
              "missing (required): at least one [[" + std::string(array_name) + "]]");
    return;
  }
  if (list == nullptr || list->empty()) {
    c.problem(line_of(*objects), checker::join(path, "object"),
              "must be an array of tables ([[" + std::string(array_name) + "]])");
    return;
  }
  std::map<std::string, std::size_t> seen;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const std::string opath = path + ".object[" + std::to_string(i) + "]";
    const auto* ot = (*list)[i].as_table();
    if (ot == nullptr) {
      c.problem(line_of((*list)[i]), opath, "must be a table");
      continue;
    }
    poll_object_config o;
    parse_object(c, *ot, opath, line_of(*ot), o);
    if (!o.name.empty()) {
      if (auto [it, fresh] = seen.emplace(o.name, line_of(*ot)); !fresh)
        c.problem(line_of(*ot), opath + ".name",
                  "object '" + o.name + "' is polled twice (also at line " +
                      std::to_string(it->second) + ")");
    }
    out.objects.push_back(std::move(o));
  }
}

void parse_fallback(checker& c, const toml::table& t, const std::string& path, std::size_t line,
                    fallback_config& out) {
  static const std::set<std::string, std::less<>> allowed{"object", "interval", "overlap",
                                                          "probe_interval"};
  c.check_keys(t, path, allowed);
  parse_polling(c, t, path, line, "connection.fallback.object", out.polling);
  if (auto v = c.seconds(t, path, "probe_interval")) out.probe_interval = *v;
}

void parse_connection(checker& c, const toml::table& t, const std::string& path,
                      connection_config& out) {
  static const std::set<std::string, std::less<>> allowed{
      "name",          "enabled",         "api_version",      "replay_policy",  "auth",
      "network",
      "on_failure",    "channel",         "sink",             "restart_backoff",
      "restart_backoff_max", "queue_capacity", "queue_max_bytes", "kind", "object",
      "interval", "overlap", "fallback"};
  const std::size_t line = line_of(t);
  out.line = line;
  c.check_keys(t, path, allowed);
  if (auto name = c.string(t, path, "name", true, line)) {
    if (!valid_name(*name)) {
      c.problem(line_of(*t.get("name")), checker::join(path, "name"),
                "must be 1-64 letters, digits, '-', '_' or '.' (it prefixes store keys and "
                "labels metrics)");
    }
    out.name = *name;
  }
  out.enabled = c.boolean(t, path, "enabled").value_or(true);
  if (auto v = c.string(t, path, "api_version", false, line)) {
    double version = 0;
    const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), version);
    if (ec != std::errc() || end != v->data() + v->size() || v->find('.') == std::string::npos ||
        version < 37.0) {
      c.problem(line_of(*t.get("api_version")), checker::join(path, "api_version"),
                "must be a version such as \"59.0\", 37.0 or later");
    }
    out.api_version = *v;
  }
  if (auto p = c.string(t, path, "replay_policy", false, line)) {
    auto v = parse_replay_policy(*p);
    if (!v) {
      c.problem(line_of(*t.get("replay_policy")), checker::join(path, "replay_policy"),
                "must be earliest, tip or fail (got '" + *p + "')");
    } else {
      out.policy = *v;
    }
  }
  if (auto v = c.seconds(t, path, "restart_backoff")) out.restart_backoff = *v;
  if (auto v = c.seconds(t, path, "restart_backoff_max")) out.restart_backoff_max = *v;
  if (auto v = c.integer(t, path, "queue_capacity", 1, 10'000'000))
    out.queue_capacity = static_cast<std::size_t>(*v);
  if (auto v = c.bytes(t, path, "queue_max_bytes")) out.queue_max_bytes = static_cast<std::size_t>(*v);

  if (const auto* auth = c.subtable(t, path, "auth")) {
    parse_auth(c, *auth, checker::join(path, "auth"), line_of(*auth), out.auth);
  } else if (t.get("auth") == nullptr) {
    c.problem(line, checker::join(path, "auth"), "missing (required): the org's credentials");
  }
  if (const auto* network = c.subtable(t, path, "network"))
    parse_network(c, *network, checker::join(path, "network"), line_of(*network), out.network);
  if (const auto* failure = c.subtable(t, path, "on_failure"))
    parse_failure(c, *failure, checker::join(path, "on_failure"), line_of(*failure),
                  out.on_failure);
  if (const auto* sink = c.subtable(t, path, "sink")) {
    parse_sink(c, *sink, checker::join(path, "sink"), line_of(*sink), out.sink);
  } else if (t.get("sink") == nullptr) {
    c.problem(line, checker::join(path, "sink"), "missing (required): where the events go");
  }

  if (auto kind = c.string(t, path, "kind", false, line)) {
    if (*kind == "poll") {
      out.kind = connection_kind::poll;
    } else if (*kind != "stream") {
      c.problem(line_of(*t.get("kind")), checker::join(path, "kind"),
                "must be stream or poll (got '" + *kind + "')");
    }
  }
  // The postgresql sink keys its rows by replay id, which polled events do not have.
  const auto polled_into_postgresql = [&](const char* what) {
    if (out.sink.type == sink_config::kind::postgresql)
      c.problem(out.sink.line, checker::join(path, "sink.type"),
                std::string(what) + " needs a stdout, file or webhook sink: the postgresql sink "
                "stores events by replay id, and polled events have none");
  };
  if (out.kind == connection_kind::poll) {
    polled_into_postgresql("a poll connection");
    parse_polling(c, t, path, line, "connection.object", out.polling);
    if (const toml::node* n = t.get("channel"))
      c.problem(line_of(*n), checker::join(path, "channel"),
                "a poll connection reads [[connection.object]] tables, not channels");
    if (const toml::node* n = t.get("fallback"))
      c.problem(line_of(*n), checker::join(path, "fallback"),
                "only a streaming connection falls back to polling");
    if (out.on_failure.action == handler_failure::dead_letter)
      c.problem(line_of(*t.get("on_failure")), checker::join(path, "on_failure.action"),
                "a poll connection supports stop and retry (a sink's own dead_letter_path "
                "keeps what its receiver refuses)");
    return;
  }
  for (const char* key : {"object", "interval", "overlap"}) {
    if (const toml::node* n = t.get(key))
      c.problem(line_of(*n), checker::join(path, key),
                "only with kind = \"poll\" (a streaming connection polls in [connection.fallback])");
  }
  if (const auto* fallback = c.subtable(t, path, "fallback")) {
    polled_into_postgresql("a [connection.fallback]");
    out.fallback.emplace();
    parse_fallback(c, *fallback, checker::join(path, "fallback"), line_of(*fallback),
                   *out.fallback);
  }

  const toml::node* channels = t.get("channel");
  const toml::array* list = channels != nullptr ? channels->as_array() : nullptr;
  if (channels == nullptr) {
    c.problem(line, checker::join(path, "channel"),
              "missing (required): at least one [[connection.channel]]");
  } else if (list == nullptr || list->empty()) {
    c.problem(line_of(*channels), checker::join(path, "channel"),
              "must be an array of tables ([[connection.channel]])");
  } else {
    std::map<std::string, std::size_t> seen;
    for (std::size_t i = 0; i < list->size(); ++i) {
      const std::string cpath = path + ".channel[" + std::to_string(i) + "]";
      const auto* ct = (*list)[i].as_table();
      if (ct == nullptr) {
        c.problem(line_of((*list)[i]), cpath, "must be a table");
        continue;
      }
      channel_config ch;
      parse_channel(c, *ct, cpath, line_of(*ct), ch);
      if (!ch.name.empty()) {
        const std::string key(bayeux::replay_key_of(ch.name));
        if (auto [it, fresh] = seen.emplace(key, line_of(*ct)); !fresh) {
          c.problem(line_of(*ct), cpath + ".name",
                    "duplicate channel '" + key + "' (also at line " + std::to_string(it->second) +
                        "): one subscription per replay key");
        }
      }
      out.channels.push_back(std::move(ch));
    }
  }
}

}  // namespace

std::optional<service_config> parse_service_config(const std::string& text,
                                                   const std::filesystem::path& file,
                                                   std::vector<config_problem>& problems,
                                                   const environment_fn& environment) {
  const std::size_t before = problems.size();
  environment_fn env = environment;
  if (!env) {
    env = [](const std::string& name) -> std::optional<std::string> {
      const char* v = std::getenv(name.c_str());
      if (v == nullptr) return std::nullopt;
      return std::string(v);
    };
  }
  toml::table doc;
  try {
    doc = toml::parse(text, file.string());
  } catch (const toml::parse_error& e) {
    problems.push_back({file.string(), static_cast<std::size_t>(e.source().begin.line), "",
                        "not valid TOML: " + std::string(e.description())});
    return std::nullopt;
  }
  checker c(file.string(), problems, std::move(env));
  service_config out;
  out.file = file;
  c.check_keys(doc, "", {"service", "admin", "connection"});

  if (const auto* svc = c.subtable(doc, "", "service")) {
    const std::size_t line = line_of(*svc);
    c.check_keys(*svc, "service",
                 {"store", "store_password_file", "store_password_env", "store_schema",
                  "store_pool", "replica", "lease_ttl", "threads", "sink_threads",
                  "log_format", "log_level"});
    parse_store(c, *svc, line, out);
    parse_replica(c, *svc, line, out);
    if (auto n = c.integer(*svc, "service", "threads", 1, 256)) out.threads = static_cast<unsigned>(*n);
    if (auto n = c.integer(*svc, "service", "sink_threads", 1, 256))
      out.sink_threads = static_cast<unsigned>(*n);
    if (auto f = c.string(*svc, "service", "log_format", false, line)) {
      if (*f == "text") {
        out.format = log_format::text;
      } else if (*f == "json") {
        out.format = log_format::json;
      } else {
        c.problem(line_of(*svc->get("log_format")), "service.log_format",
                  "must be text or json (got '" + *f + "')");
      }
    }
    if (auto l = c.string(*svc, "service", "log_level", false, line)) {
      if (auto v = parse_level(*l)) {
        out.level = *v;
      } else {
        c.problem(line_of(*svc->get("log_level")), "service.log_level",
                  "must be trace, debug, info, warning or error (got '" + *l + "')");
      }
    }
  }
  if (out.store_path.empty()) out.store_path = "sfstream-positions.json";

  if (const auto* admin = c.subtable(doc, "", "admin")) {
    const std::size_t line = line_of(*admin);
    c.check_keys(*admin, "admin", {"bind", "port"});
    out.admin_bind = c.string(*admin, "admin", "bind", false, line).value_or("127.0.0.1");
    if (auto p = c.integer(*admin, "admin", "port", 0, 65535)) {
      out.admin_port = static_cast<std::uint16_t>(*p);
    } else if (admin->get("port") == nullptr) {
      c.problem(line, "admin.port", "missing (required): the admin listener's port");
    }
  }

  const toml::node* connections = doc.get("connection");
  const toml::array* list = connections != nullptr ? connections->as_array() : nullptr;
  if (connections == nullptr) {
    c.problem(1, "connection", "missing (required): at least one [[connection]]");
  } else if (list == nullptr || list->empty()) {
    c.problem(line_of(*connections), "connection", "must be an array of tables ([[connection]])");
  } else {
    std::map<std::string, std::size_t> names;
    for (std::size_t i = 0; i < list->size(); ++i) {
      const std::string path = "connection[" + std::to_string(i) + "]";
      const auto* t = (*list)[i].as_table();
      if (t == nullptr) {
        c.problem(line_of((*list)[i]), path, "must be a table");
        continue;
      }
      connection_config conn;
      parse_connection(c, *t, path, conn);
      if (!conn.name.empty()) {
        if (auto [it, fresh] = names.emplace(conn.name, conn.line); !fresh) {
          c.problem(line_of(*t->get("name")), path + ".name",
                    "duplicate name '" + conn.name + "' (also at line " +
                        std::to_string(it->second) + ")");
        }
      }
      out.connections.push_back(std::move(conn));
    }
  }
  // The PostgreSQL sink commits positions with its rows: they must be the service's store.
  for (std::size_t i = 0; i < out.connections.size(); ++i) {
    const auto& conn = out.connections[i];
    if (conn.sink.type == sink_config::kind::postgresql && !out.postgresql)
      c.problem(conn.sink.line, "connection[" + std::to_string(i) + "].sink.type",
                "a postgresql sink needs the service's store in PostgreSQL ([service] store = "
                "\"postgresql://user@host/db\"): it commits the positions with the rows");
  }
  // Two file sinks writing one path would interleave and rotate each other's files.
  std::map<std::string, std::string> paths;
  for (const auto& conn : out.connections) {
    if (conn.sink.type != sink_config::kind::file || conn.sink.path.empty()) continue;
    const std::string p = std::filesystem::absolute(conn.sink.path).lexically_normal().string();
    if (auto [it, fresh] = paths.emplace(p, conn.name); !fresh) {
      c.problem(conn.sink.line, "connection." + conn.name + ".sink.path",
                "the file '" + conn.sink.path.string() + "' is already the sink of connection '" +
                    it->second + "'");
    }
  }
  out.secrets = std::move(c.secrets);
  if (problems.size() != before) {
    // In the order of the file, as an editor walks it.
    std::stable_sort(problems.begin() + static_cast<std::ptrdiff_t>(before), problems.end(),
                     [](const config_problem& a, const config_problem& b) { return a.line < b.line; });
    return std::nullopt;
  }
  return out;
}

std::optional<service_config> load_service_config(const std::filesystem::path& file,
                                                  std::vector<config_problem>& problems) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    problems.push_back({file.string(), 0, "", "cannot read the configuration file"});
    return std::nullopt;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_service_config(text.str(), file, problems);
}

}  // namespace sfstream::serve
