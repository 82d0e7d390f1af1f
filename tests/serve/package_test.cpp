// The Debian package: `cpack -G DEB` from this build directory, then what is inside: the
// command, the systemd unit (systemd-analyze verify), the example config (accepted by the
// packaged `sfstream serve --check`), the CMake package and the docs.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/serve/admin_support.hpp"

namespace fs = std::filesystem;
using admin_test::run_command;

namespace {

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

}  // namespace

TEST_CASE("cpack builds a Debian package with the command, the unit, the example config and the CMake package" *
          doctest::test_suite("heavy") * doctest::timeout(280)) {
  for (const auto* tool : {"cpack", "dpkg-deb", "systemd-analyze"}) {
    REQUIRE_MESSAGE(!admin_test::find_program(tool).empty(), tool, " is missing");
  }
  admin_test::temp_dir dir;
  const fs::path build = SFSTREAM_BINARY_DIR;
  const auto packed = run_command("cpack -G DEB --config " + quoted(build / "CPackConfig.cmake") +
                                  " -B " + quoted(dir.path / "out"));
  CAPTURE(packed.output);
  REQUIRE(packed.exit_code == 0);
  fs::path deb;
  for (const auto& entry : fs::directory_iterator(dir.path / "out")) {
    if (entry.path().extension() == ".deb") deb = entry.path();
  }
  REQUIRE_MESSAGE(!deb.empty(), "no .deb in the cpack output");

  const auto listing = run_command("dpkg-deb -c " + quoted(deb));
  REQUIRE(listing.exit_code == 0);
  for (const auto* path :
       {"./usr/bin/sfstream", "./lib/systemd/system/sfstream.service", "./etc/sfstream/sfstream.toml",
        "./usr/lib/cmake/sfstream/sfstreamConfig.cmake",
        "./usr/lib/cmake/sfstream/sfstreamTargets.cmake", "./usr/include/sfstream/client.hpp",
        "./usr/lib/libsfstream.a", "./usr/share/doc/sfstream/webhooks.md",
        "./usr/share/doc/sfstream/operations.md"}) {
    CAPTURE(path);
    CHECK(listing.output.find(std::string(" ") + path + "\n") != std::string::npos);
  }
  // The binary is executable, the config not readable by others (installed 0644 is fine: it
  // holds no secret; the secrets are credentials).
  CHECK(listing.output.find("-rwxr-xr-x root/root") != std::string::npos);

  const auto fields = run_command("dpkg-deb -f " + quoted(deb) + " Package Depends");
  CHECK(fields.output.find("Package: sfstream") != std::string::npos);
  CHECK(fields.output.find("libssl3") != std::string::npos);
  CHECK(fields.output.find("libtomlplusplus3") != std::string::npos);
  REQUIRE(run_command("dpkg-deb -e " + quoted(deb) + " " + quoted(dir.path / "control")).exit_code == 0);
  CHECK(read_file(dir.path / "control" / "conffiles") == "/etc/sfstream/sfstream.toml\n");

  const auto root = dir.path / "root";
  REQUIRE(run_command("dpkg-deb -x " + quoted(deb) + " " + quoted(root)).exit_code == 0);
  const auto unit = read_file(root / "lib/systemd/system/sfstream.service");
  CHECK(unit == read_file(fs::path(SFSTREAM_SOURCE_DIR) / "packaging/sfstream.service"));
  CHECK(unit.find("\nExecStart=/usr/bin/sfstream serve --config /etc/sfstream/sfstream.toml\n") !=
        std::string::npos);
  for (const auto* line : {"\nProtectSystem=strict\n", "\nStateDirectory=sfstream\n",
                           "\nRestart=on-failure\n", "\nDynamicUser=yes\n", "\nType=simple\n",
                           "\nNoNewPrivileges=yes\n"}) {
    CAPTURE(line);
    CHECK(unit.find(line) != std::string::npos);
  }
  // systemd itself reads the unit: no unknown key, no bad value. The binary path is pointed at
  // the packaged binary, since /usr/bin/sfstream need not exist on the build machine.
  const auto binary = root / "usr/bin/sfstream";
  const auto checked_unit =
      dir.write("sfstream.service", replace_all(unit, "/usr/bin/sfstream", binary.string()));
  const auto verify = run_command("systemd-analyze verify " + quoted(checked_unit));
  CAPTURE(verify.output);
  CHECK(verify.exit_code == 0);
  CHECK(verify.output.empty());

  // The example config is accepted by the packaged command once its credentials exist.
  const auto config = read_file(root / "etc/sfstream/sfstream.toml");
  CHECK(config == read_file(fs::path(SFSTREAM_SOURCE_DIR) / "packaging/sfstream.toml"));
  const auto credentials = dir.path / "credentials";
  fs::create_directories(credentials);
  for (const auto* name : {"acme-password", "acme-token", "globex-webhook"}) {
    dir.write(std::string("credentials/") + name, "not-a-real-secret-0123456789\n");
  }
  REQUIRE(run_command("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " +
                      quoted(credentials / "globex-key"))
              .exit_code == 0);
  const auto local = dir.write(
      "sfstream.toml",
      replace_all(config, "/run/credentials/sfstream.service/", credentials.string() + "/"));
  const auto check = run_command(quoted(binary) + " serve --check " + quoted(local));
  CAPTURE(check.output);
  CHECK(check.exit_code == 0);
  CHECK(check.output.find("good: 3 connections") != std::string::npos);
  CHECK(check.output.find("not-a-real-secret") == std::string::npos);
}
