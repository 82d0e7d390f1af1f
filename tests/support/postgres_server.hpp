// A real PostgreSQL server for a test: a fresh cluster (initdb) in a temporary directory,
// listening on 127.0.0.1 at a free port, stopped and removed when the object goes. The
// superuser `sfstream` logs in over TCP with a password (SCRAM), so the tests pass it the way
// users do. initdb and the server refuse to run as root: as root they run as the `postgres`
// account (created by Debian's postgresql package), through setpriv.
#pragma once

#include <doctest/doctest.h>

#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/child_process.hpp"

namespace sfstream::testing {

class postgres_server {
 public:
  postgres_server() {
    namespace fs = std::filesystem;
    bin_ = find_bin();
    REQUIRE_MESSAGE(!bin_.empty(), "PostgreSQL 15 server binaries not found under "
                                   "/usr/lib/postgresql (scripts/setup.sh installs postgresql-15)");
    char templ[] = "/tmp/sfstream-pg-XXXXXX";
    REQUIRE(::mkdtemp(templ) != nullptr);
    dir_ = templ;
    const fs::path pwfile = dir_ / "pw";
    { std::ofstream(pwfile) << password_ << "\n"; }
    if (::geteuid() == 0) {
      const passwd* pw = ::getpwnam("postgres");
      REQUIRE_MESSAGE(pw != nullptr, "no postgres account to run the server as");
      uid_ = pw->pw_uid;
      gid_ = pw->pw_gid;
      REQUIRE(::chown(dir_.c_str(), uid_, gid_) == 0);
      REQUIRE(::chown(pwfile.c_str(), uid_, gid_) == 0);
    }
    child_process init(as_server_user({(bin_ / "initdb").string(), "-D", (dir_ / "data").string(),
                                        "-U", "sfstream", "--pwfile", pwfile.string(),
                                        "--auth-local=trust", "--auth-host=scram-sha-256",
                                        "-E", "UTF8", "--locale=C", "--no-sync"}),
                       {}, dir_ / "initdb.out", dir_ / "initdb.err");
    const int code = init.wait(std::chrono::seconds(120));
    REQUIRE_MESSAGE(code == 0, "initdb failed: " << read_whole_file(dir_ / "initdb.err"));
    fs::remove(pwfile);
    start();
  }

  ~postgres_server() {
    stop();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  postgres_server(const postgres_server&) = delete;
  postgres_server& operator=(const postgres_server&) = delete;

  /// Starts the server again after stop() (same data, same port when still free).
  void start() {
    ++starts_;
    for (int attempt = 0; attempt < 5 && !server_; ++attempt) {
      if (port_ == 0 || attempt > 0) port_ = free_port();
      auto p = std::make_unique<child_process>(
          as_server_user({(bin_ / "postgres").string(), "-D", (dir_ / "data").string(), "-p",
                          std::to_string(port_), "-k", dir_.string(), "-c",
                          "listen_addresses=127.0.0.1", "-c", "max_connections=200", "-c",
                          // The server itself is not under test for crashes: no fsync.
                          "fsync=off"}),
          child_process::environment{}, dir_ / "server.out", log());
      if (wait_ready(*p)) server_ = std::move(p);
    }
    REQUIRE_MESSAGE(server_ != nullptr,
                    "PostgreSQL did not start: " << read_whole_file(log()));
  }

  /// Fast shutdown (SIGINT: sessions cut, data kept); bounded.
  void stop() {
    if (!server_) return;
    server_->kill(SIGINT);
    server_->wait(std::chrono::seconds(20));
    server_.reset();
  }

  std::uint16_t port() const noexcept { return port_; }
  /// The connection string without the password.
  std::string conninfo(const std::string& database = "postgres") const {
    return "postgresql://sfstream@127.0.0.1:" + std::to_string(port_) + "/" + database +
           "?sslmode=disable";
  }
  const std::string& password() const noexcept { return password_; }
  const std::filesystem::path& dir() const noexcept { return dir_; }

 private:
  static std::filesystem::path find_bin() {
    for (const char* v : {"15", "16", "17"}) {
      std::filesystem::path p = std::string("/usr/lib/postgresql/") + v + "/bin";
      if (std::filesystem::exists(p / "postgres") && std::filesystem::exists(p / "initdb")) return p;
    }
    return {};
  }

  std::vector<std::string> as_server_user(std::vector<std::string> argv) const {
    if (::geteuid() != 0) return argv;
    std::vector<std::string> out{"/usr/bin/setpriv", "--reuid=" + std::to_string(uid_),
                                 "--regid=" + std::to_string(gid_), "--clear-groups", "--"};
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
  }

  static std::uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
  }

  /// Up to 30 s for the server to accept connections (its log says so); false when it died.
  bool wait_ready(child_process& p) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < end) {
      if (read_whole_file(log()).find("ready to accept connections") !=
          std::string::npos)
        return true;
      if (!p.alive()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  /// This start's server log (a new file each start, so an old "ready" is never read).
  std::filesystem::path log() const { return dir_ / ("server-" + std::to_string(starts_) + ".log"); }

  int starts_ = 0;
  std::filesystem::path bin_;
  std::filesystem::path dir_;
  std::string password_ = "pg-test-secret-" + std::to_string(::getpid());
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  std::uint16_t port_ = 0;
  std::unique_ptr<child_process> server_;
};

}  // namespace sfstream::testing
