// The configuration of `sfstream serve`: a good file loads whole, a bad one is refused with
// every problem listed as FILE:LINE: key: problem.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "serve/config.hpp"

namespace fs = std::filesystem;
using namespace sfstream;
using namespace sfstream::serve;

namespace {

struct temp_dir {
  fs::path path;
  temp_dir() {
    path = fs::temp_directory_path() / ("sfstream-serve-config-" + std::to_string(::getpid()) +
                                        "-" + std::to_string(counter()++));
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  static int& counter() {
    static int n = 0;
    return n;
  }
  fs::path write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name, std::ios::binary) << text;
    return path / name;
  }
};

std::map<std::string, std::string> env_vars{{"ACME_PASSWORD", "s3cret-from-env"}};

std::optional<std::string> test_env(const std::string& name) {
  auto it = env_vars.find(name);
  if (it == env_vars.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> problems_of(const std::string& text) {
  std::vector<config_problem> problems;
  auto config = parse_service_config(text, "serve.toml", problems, test_env);
  CHECK_FALSE(config.has_value());
  std::vector<std::string> out;
  for (const auto& p : problems) out.push_back(p.to_string());
  return out;
}

bool has(const std::vector<std::string>& lines, const std::string& wanted) {
  for (const auto& l : lines) {
    if (l == wanted) return true;
  }
  return false;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

}  // namespace

TEST_CASE("a good configuration loads every connection with its secrets read") {
  temp_dir dir;
  const auto password = dir.write("acme.password", "file-password-1\n");
  const auto key = dir.write("jwt.pem", "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n");
  const std::string text = R"([service]
store = "/var/lib/sfstream/positions.json"
threads = 4
sink_threads = 16
log_format = "json"
log_level = "debug"

[admin]
bind = "127.0.0.1"
port = 9464

[[connection]]
name = "acme"
api_version = "58.0"
replay_policy = "tip"
[connection.auth]
flow = "soap"
login_url = "https://acme.my.salesforce.com"
username = "integration@acme.example"
password_file = ")" + password.string() + R"("
[connection.on_failure]
action = "retry"
max_retries = 7
backoff_initial = 0.25
[connection.sink]
type = "file"
path = "/var/log/sfstream/acme.jsonl"
max_size = "64MiB"
keep = 3
[[connection.channel]]
name = "/topic/AccountUpdates"
start = -2
[[connection.channel]]
name = "/event/Order__e"
start = 1234
replay_policy = "fail"

[[connection]]
name = "globex"
[connection.auth]
flow = "oauth_jwt"
login_url = "https://globex.my.salesforce.com"
client_id = "3MVG9"
username = "bot@globex.example"
private_key_file = ")" + key.string() + R"("
[connection.sink]
type = "stdout"
[[connection.channel]]
name = "/data/ChangeEvents"

[[connection]]
name = "initech"
enabled = false
[connection.auth]
flow = "oauth_password"
client_id = "3MVG9x"
username = "u@initech.example"
password_env = "ACME_PASSWORD"
[connection.sink]
type = "stdout"
[[connection.channel]]
name = "/u/notifications"
)";
  std::vector<config_problem> problems;
  auto config = parse_service_config(text, "serve.toml", problems, test_env);
  for (const auto& p : problems) INFO(p.to_string());
  REQUIRE(problems.empty());
  REQUIRE(config.has_value());
  CHECK(config->store_path == "/var/lib/sfstream/positions.json");
  CHECK(config->threads == 4);
  CHECK(config->sink_threads == 16);
  CHECK(config->format == log_format::json);
  CHECK(config->level == log_level::debug);
  REQUIRE(config->admin_bind.has_value());
  CHECK(*config->admin_bind == "127.0.0.1");
  CHECK(config->admin_port == 9464);
  REQUIRE(config->connections.size() == 3);

  const auto& acme = config->connections[0];
  CHECK(acme.name == "acme");
  CHECK(acme.api_version == "58.0");
  CHECK(acme.policy == replay_policy::tip);
  CHECK(acme.auth.flow == auth_flow::soap);
  CHECK(acme.auth.password == "file-password-1");
  CHECK(acme.auth.username == "integration@acme.example");
  CHECK(acme.on_failure.action == handler_failure::retry);
  CHECK(acme.on_failure.max_retries == 7);
  CHECK(acme.on_failure.retry_backoff_initial == std::chrono::milliseconds(250));
  CHECK(acme.sink.type == sink_config::kind::file);
  CHECK(acme.sink.max_bytes == 64ull << 20);
  CHECK(acme.sink.keep == 3);
  REQUIRE(acme.channels.size() == 2);
  CHECK(acme.channels[0].name == "/topic/AccountUpdates");
  CHECK(acme.channels[0].start == replay_all);
  CHECK_FALSE(acme.channels[0].policy.has_value());
  CHECK(acme.channels[1].start == 1234);
  CHECK(acme.channels[1].policy == replay_policy::fail);

  const auto& globex = config->connections[1];
  CHECK(globex.auth.flow == auth_flow::oauth_jwt);
  CHECK(globex.auth.private_key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
  CHECK(globex.channels[0].start == replay_new);
  CHECK(globex.sink.type == sink_config::kind::stdout_lines);

  CHECK(config->connections[2].auth.password == "s3cret-from-env");
  CHECK(acme.enabled);
  CHECK_FALSE(config->connections[2].enabled);
  // Every secret read is known for redaction.
  CHECK(std::count(config->secrets.begin(), config->secrets.end(), "file-password-1") == 1);
  CHECK(std::count(config->secrets.begin(), config->secrets.end(), "s3cret-from-env") == 1);
}

TEST_CASE("a bad configuration lists every problem with its line and key") {
  const std::string text = R"([service]
threads = "two"
colour = "blue"

[[connection]]
name = "acme"
[connection.auth]
flow = "soap"
username = "u@acme.example"
password = "hunter2-inline"
[connection.sink]
type = "file"
[[connection.channel]]
name = "/topic/"
[[connection.channel]]
name = "/event/Order__e"
start = -7

[[connection]]
name = "acme"
[connection.auth]
flow = "soap"
username = "u2@acme.example"
password_file = "/nonexistent/sfstream/password"
[connection.sink]
type = "stdout"
[[connection.channel]]
name = "/u/x"

[[connection]]
name = "third"
[connection.auth]
flow = "static"
access_token_env = "NO_SUCH_VARIABLE"
instance_url = "https://x.my.salesforce.com"
[[connection.channel]]
name = "/data/ChangeEvents"
start = "abc"
)";
  const auto lines = problems_of(text);
  INFO(joined(lines));
  CHECK(has(lines, "serve.toml:2: service.threads: must be an integer, not a string"));
  CHECK(has(lines, "serve.toml:3: service.colour: unknown key"));
  CHECK(has(lines,
            "serve.toml:10: connection[0].auth.password: secrets are not accepted inline: give "
            "password_file or password_env instead"));
  CHECK(has(lines,
            "serve.toml:7: connection[0].auth.password_file: missing (required): give "
            "password_file or password_env"));
  CHECK(has(lines, "serve.toml:11: connection[0].sink.path: missing (required)"));
  bool bad_channel = false;
  for (const auto& l : lines) {
    if (l.starts_with("serve.toml:14: connection[0].channel[0].name: bad channel '/topic/'"))
      bad_channel = true;
  }
  CHECK(bad_channel);
  CHECK(has(lines,
            "serve.toml:17: connection[0].channel[1].start: bad replay id: use -1 (new events), "
            "-2 (all retained) or a replay id"));
  CHECK(has(lines, "serve.toml:20: connection[1].name: duplicate name 'acme' (also at line 5)"));
  CHECK(has(lines,
            "serve.toml:24: connection[1].auth.password_file: cannot read the file "
            "'/nonexistent/sfstream/password'"));
  CHECK(has(lines,
            "serve.toml:34: connection[2].auth.access_token_env: the environment variable "
            "NO_SUCH_VARIABLE is not set or empty"));
  CHECK(has(lines, "serve.toml:30: connection[2].sink: missing (required): where the events go"));
  CHECK(has(lines,
            "serve.toml:38: connection[2].channel[0].start: bad replay id: use -1 (new events), "
            "-2 (all retained) or a replay id"));
  CHECK(lines.size() == 12);
  // In the order of the file.
  CHECK(lines.front().starts_with("serve.toml:2: "));
  CHECK(lines.back().starts_with("serve.toml:38: "));
  // The inline secret's value is never repeated.
  CHECK(joined(lines).find("hunter2-inline") == std::string::npos);
}

TEST_CASE("a file that is not TOML is one problem at its line") {
  const auto lines = problems_of("[service]\nthreads = 2\n[[connection]\nname = \"x\"\n");
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].starts_with("serve.toml:3: not valid TOML: "));
}

TEST_CASE("a file without connections, and connections without channels, are refused") {
  auto lines = problems_of("[service]\nthreads = 1\n");
  CHECK(has(lines, "serve.toml:1: connection: missing (required): at least one [[connection]]"));

  lines = problems_of(R"([[connection]]
name = "a b"
[connection.auth]
flow = "carrier_pigeon"
[connection.sink]
type = "kafka"
)");
  INFO(joined(lines));
  CHECK(has(lines,
            "serve.toml:2: connection[0].name: must be 1-64 letters, digits, '-', '_' or '.' "
            "(it prefixes store keys and labels metrics)"));
  CHECK(has(lines,
            "serve.toml:4: connection[0].auth.flow: must be soap, oauth_password, "
            "oauth_refresh_token, oauth_client_credentials, oauth_jwt or static (got "
            "'carrier_pigeon')"));
  CHECK(has(lines, "serve.toml:6: connection[0].sink.type: must be stdout, file, webhook or postgresql (got 'kafka')"));
  CHECK(has(lines,
            "serve.toml:1: connection[0].channel: missing (required): at least one "
            "[[connection.channel]]"));
}

TEST_CASE("a duplicate channel, a key another flow uses, both secret forms and plain http") {
  const auto lines = problems_of(R"([[connection]]
name = "a"
[connection.auth]
flow = "soap"
login_url = "http://login.example.com"
username = "u"
password_file = "/etc/hostname"
password_env = "ACME_PASSWORD"
private_key_file = "/etc/hostname"
[connection.sink]
type = "stdout"
[[connection.channel]]
name = "/topic/X?Industry=Energy"
[[connection.channel]]
name = "/topic/X"
)");
  INFO(joined(lines));
  CHECK(has(lines,
            "serve.toml:5: connection[0].auth.login_url: plain http:// is accepted only for a "
            "loopback host: use https://"));
  CHECK(has(lines,
            "serve.toml:8: connection[0].auth.password_env: give either password_file or "
            "password_env, not both"));
  CHECK(has(lines, "serve.toml:9: connection[0].auth.private_key_file: not used by flow soap"));
  CHECK(has(lines,
            "serve.toml:14: connection[0].channel[1].name: duplicate channel '/topic/X' (also at "
            "line 12): one subscription per replay key"));
}

TEST_CASE("two file sinks on one path are refused") {
  temp_dir dir;
  const auto pw = dir.write("pw", "password-123");
  std::string conn = R"(
[[connection]]
name = "NAME"
[connection.auth]
username = "u"
password_file = ")" + pw.string() + R"("
[connection.sink]
type = "file"
path = "/tmp/same.jsonl"
[[connection.channel]]
name = "/u/x"
)";
  auto a = conn;
  a.replace(a.find("NAME"), 4, "one");
  auto b = conn;
  b.replace(b.find("NAME"), 4, "two");
  const auto lines = problems_of(a + b);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0] ==
        "serve.toml:18: connection.two.sink.path: the file '/tmp/same.jsonl' is already the "
        "sink of connection 'one'");
}

TEST_CASE("an unreadable configuration file is one problem without a line") {
  std::vector<config_problem> problems;
  auto config = load_service_config("/nonexistent/sfstream/serve.toml", problems);
  CHECK_FALSE(config.has_value());
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].to_string() ==
        "/nonexistent/sfstream/serve.toml: cannot read the configuration file");
}

TEST_CASE("the emulator sample configuration is good apart from the emulator's CA file") {
  std::vector<config_problem> problems;
  auto config = load_service_config(SFSTREAM_SOURCE_DIR "/samples/serve-emulator.toml", problems);
  (void)config;
  std::map<std::string, std::string> env{{"SF_PASSWORD", "demo-pass"},
                                         {"SF_SECURITY_TOKEN", "DEMOTOKEN0000000000000"}};
  std::ifstream in(SFSTREAM_SOURCE_DIR "/samples/serve-emulator.toml");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  problems.clear();
  auto parsed = parse_service_config(text, "serve-emulator.toml", problems,
                                     [&](const std::string& name) -> std::optional<std::string> {
                                       auto it = env.find(name);
                                       if (it == env.end()) return std::nullopt;
                                       return it->second;
                                     });
  for (const auto& p : problems) {
    INFO(p.to_string());
    // Only present while the emulator runs with --state-dir /tmp/sfstream-demo.
    CHECK(p.key == "connection[0].network.ca_file");
  }
  if (problems.empty()) {
    REQUIRE(parsed.has_value());
    CHECK(parsed->connections.size() == 1);
    CHECK(parsed->admin_port == 9464);
  }
}

TEST_CASE("a webhook sink takes the network keys a connection takes, with its proxy password") {
  temp_dir dir;
  const auto pw = dir.write("pw", "password-123");
  const auto key = dir.write("key", "signing-key-0123456789");
  const auto proxy_pw = dir.write("proxy", "proxy-secret-42");
  const std::string text = R"(
[[connection]]
name = "acme"
[connection.auth]
username = "u"
password_file = ")" + pw.string() + R"("
[connection.sink]
type = "webhook"
url = "https://hooks.example.com/in"
signing_key_file = ")" + key.string() + R"("
[connection.sink.network]
proxy = "http://proxy.example.com:3128"
proxy_username = "relay"
proxy_password_file = ")" + proxy_pw.string() + R"("
ca_file = "/etc/ssl/certs/ca-certificates.crt"
[[connection.channel]]
name = "/u/x"
)";
  std::vector<config_problem> problems;
  auto config = parse_service_config(text, "serve.toml", problems, test_env);
  REQUIRE_MESSAGE(config.has_value(), joined([&] {
                    std::vector<std::string> out;
                    for (const auto& p : problems) out.push_back(p.to_string());
                    return out;
                  }()));
  const auto& net = config->connections.at(0).sink.webhook.network;
  REQUIRE(net.proxy.has_value());
  CHECK(net.proxy->url == "http://proxy.example.com:3128");
  CHECK(net.proxy->username == "relay");
  CHECK(net.proxy->password == "proxy-secret-42");
  CHECK(net.ca_file == "/etc/ssl/certs/ca-certificates.crt");
  // An unknown key there is a problem like anywhere else.
  std::string bad = text;
  bad.insert(bad.find("ca_file = "), "proxy_port = 3128\n");
  const auto lines = problems_of(bad);
  REQUIRE(lines.size() == 1);
  CAPTURE(lines[0]);
  CHECK(lines[0] == "serve.toml:15: connection[0].sink.network.proxy_port: unknown key");
}
