// The service's log lines: text or JSON, one entry per line, the connection named, every
// secret masked.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <rapidjson/document.h>

#include "serve/service_log.hpp"

namespace fs = std::filesystem;
using namespace sfstream;
using namespace sfstream::serve;

namespace {

/// What `write` logs through a service_log of `format` writing to a file.
template <class F>
std::string logged(log_format format, log_level level, F write) {
  const fs::path path = fs::temp_directory_path() /
                        ("sfstream-service-log-" + std::to_string(::getpid()) + ".log");
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  REQUIRE(fd >= 0);
  {
    service_log log(format, level, {"config-secret-1234"}, fd);
    write(log);
  }
  ::close(fd);
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  fs::remove(path);
  return s.str();
}

}  // namespace

TEST_CASE("text log lines name the level and the connection, one entry per line, secrets masked") {
  const auto text = logged(log_format::text, log_level::info, [](const service_log& log) {
    log.for_connection("acme").log(log_level::warning,
                                   "login with config-secret-1234 refused\nforged line");
    log.log(log_level::info, "", "service line");
    log.log(log_level::debug, "", "below the level");
  });
  INFO(text);
  CHECK(text.find("config-secret-1234") == std::string::npos);
  CHECK(text.find(" warning [acme] login with [REDACTED] refused forged line\n") !=
        std::string::npos);
  CHECK(text.find(" info service line\n") != std::string::npos);
  CHECK(text.find("below the level") == std::string::npos);
  CHECK(std::count(text.begin(), text.end(), '\n') == 2);
}

TEST_CASE("JSON log lines are objects with time, level, connection and message") {
  const auto text = logged(log_format::json, log_level::debug, [](const service_log& log) {
    log.for_connection("acme").log(log_level::error,
                                   "Authorization: Bearer 00Dxx0000001gPL!AQ4AQ.secretpart \xff");
    log.log(log_level::info, "", "service line");
  });
  std::istringstream lines(text);
  std::string line;
  REQUIRE(std::getline(lines, line));
  rapidjson::Document d;
  d.Parse(line.c_str(), line.size());
  REQUIRE_FALSE(d.HasParseError());
  CHECK(std::string(d["level"].GetString()) == "error");
  CHECK(std::string(d["connection"].GetString()) == "acme");
  CHECK(std::string(d["time"].GetString()).size() == 24);
  const std::string message = d["message"].GetString();
  CHECK(message.find("secretpart") == std::string::npos);
  CHECK(message.find("[REDACTED]") != std::string::npos);
  REQUIRE(std::getline(lines, line));
  d.Parse(line.c_str(), line.size());
  REQUIRE_FALSE(d.HasParseError());
  CHECK(d["connection"].IsNull());
  CHECK(std::string(d["message"].GetString()) == "service line");
}
