#include "src/client/durable_append.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

namespace sfstream::detail {

error_info append_durably(const std::filesystem::path& path, std::string_view text,
                          std::string_view doing) {
  auto io_error = [&](const char* step) {
    const int code = errno;
    return error_info{errc::output_failed,
                      {"", std::string(step) + " " + path.string() + ": " + std::strerror(code),
                       std::string(doing)},
                      std::error_code(code, std::generic_category())};
  };
  std::error_code ignored;
  const bool existed = std::filesystem::exists(path, ignored);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return io_error("cannot open");
  std::size_t written = 0;
  while (written < text.size()) {
    const auto n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      auto e = io_error("cannot write");
      ::close(fd);
      return e;
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    auto e = io_error("cannot sync");
    ::close(fd);
    return e;
  }
  if (::close(fd) != 0) return io_error("cannot close");
  if (!existed) {
    // A new file is durable only once its directory entry is.
    auto dir = path.parent_path();
    if (dir.empty()) dir = ".";
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }
  return {};
}

}  // namespace sfstream::detail
