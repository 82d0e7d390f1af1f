// docs/webhooks.md's verifier, run as written (python3) against a request the sink really sent:
// it accepts that request, and refuses a tampered body, another key and a stale timestamp.
#include <doctest/doctest.h>

#include <ctime>
#include <fstream>
#include <sstream>

#include "serve/signature.hpp"
#include "tests/serve/admin_support.hpp"
#include "tests/serve/webhook_fixture.hpp"

using namespace webhook_test;

namespace {

/// The first ```python block of the page.
std::string python_block(const std::string& page) {
  const std::string open = "```python\n";
  const auto start = page.find(open);
  if (start == std::string::npos) return {};
  const auto end = page.find("\n```", start + open.size());
  if (end == std::string::npos) return {};
  return page.substr(start + open.size(), end - start - open.size() + 1);
}

std::string python() {
  // Debian's own interpreter first: the one every Debian machine has.
  if (::access("/usr/bin/python3", X_OK) == 0) return "/usr/bin/python3";
  return admin_test::find_program("python3");
}

std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

TEST_CASE("the verifier in docs/webhooks.md accepts a real request and refuses forgeries") {
  const auto interpreter = python();
  REQUIRE_MESSAGE(!interpreter.empty(), "python3 is missing (Debian ships it by default)");
  std::ifstream in(std::string(SFSTREAM_SOURCE_DIR) + "/docs/webhooks.md");
  std::stringstream page;
  page << in.rdbuf();
  const auto code = python_block(page.str());
  REQUIRE_MESSAGE(code.find("def verify(") != std::string::npos,
                  "docs/webhooks.md has no python block defining verify()");

  fixture f;
  f.start();
  CHECK(f.deliver("/topic/Orders", make_events("/topic/Orders", 1, 3)).handled == 3);
  const auto requests = f.receiver.requests();
  REQUIRE(requests.size() == 1);
  const auto& real = requests[0];

  admin_test::temp_dir dir;
  // The documented block, unchanged, then a driver: headers (JSON) and body (raw bytes) from
  // files, the key from the environment.
  const auto script = dir.write(
      "verify.py", code +
                       "\n\nimport json, os, sys\n"
                       "headers = json.load(open(sys.argv[1]))\n"
                       "body = open(sys.argv[2], 'rb').read()\n"
                       "print('accepted' if verify(os.environ['WEBHOOK_KEY'].encode(), headers, "
                       "body) else 'refused')\n");
  auto run = [&](const std::string& key, const std::string& timestamp,
                 const std::string& signature, const std::string& body) {
    const auto headers = dir.write("headers.json", "{\"X-Sfstream-Timestamp\":" +
                                                       json_string(timestamp) +
                                                       ",\"X-Sfstream-Signature\":" +
                                                       json_string(signature) + "}");
    const auto body_file = dir.write("body.bin", body);
    const auto result = admin_test::run_command("WEBHOOK_KEY='" + key + "' '" + interpreter +
                                                "' '" + script.string() + "' '" +
                                                headers.string() + "' '" + body_file.string() +
                                                "'");
    CAPTURE(result.output);
    REQUIRE(result.exit_code == 0);
    return result.output;
  };

  CHECK(run(signing_key, real.timestamp, real.signature, real.body) == "accepted\n");
  std::string tampered = real.body;
  tampered.replace(tampered.find("n-2"), 3, "n-9");
  CHECK(run(signing_key, real.timestamp, real.signature, tampered) == "refused\n");
  CHECK(run("some-other-key-0000", real.timestamp, real.signature, real.body) == "refused\n");
  // Correctly signed, but ten minutes old: refused by the timestamp tolerance.
  const auto old = static_cast<std::int64_t>(std::time(nullptr)) - 600;
  CHECK(run(signing_key, std::to_string(old),
            sfstream::serve::signature_header_value(signing_key, old, real.body),
            real.body) == "refused\n");
  // Several entries: the valid one among them is found.
  CHECK(run(signing_key, real.timestamp, "v1=" + std::string(64, 'f') + ", " + real.signature,
            real.body) == "accepted\n");
  CHECK(run(signing_key, "12x", real.signature, real.body) == "refused\n");
}
