#include "serve/file_sink.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

namespace sfstream::serve {

namespace {

error_info io_error(int err, const std::string& what) {
  return {make_error_code(errc::output_failed),
          {"", std::strerror(err), what},
          std::error_code(err, std::generic_category())};
}

class file_sink final : public line_sink {
 public:
  file_sink(file_sink_options options, logger log)
      : line_sink(std::move(log)), options_(std::move(options)) {}
  ~file_sink() override {
    if (fd_ >= 0) ::close(fd_);
  }

 protected:
  error_info write(std::string_view lines) override {
    std::lock_guard lock{mutex_};
    if (fd_ < 0) {
      if (auto why = open_file()) return why;
    }
    if (size_ > 0 && size_ + lines.size() > options_.max_bytes) {
      if (auto why = rotate()) return why;
    }
    if (const int err = write_all(fd_, lines); err != 0) {
      undo();
      return io_error(err, "writing " + options_.path.string());
    }
    if (::fsync(fd_) != 0) {
      const int err = errno;
      undo();
      return io_error(err, "syncing " + options_.path.string());
    }
    size_ += lines.size();
    return {};
  }

  std::string describe() const override { return "file " + options_.path.string(); }

 private:
  error_info open_file() {
    fd_ = ::open(options_.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd_ < 0) return io_error(errno, "opening " + options_.path.string());
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      const int err = errno;
      ::close(fd_);
      fd_ = -1;
      return io_error(err, "opening " + options_.path.string());
    }
    regular_ = S_ISREG(st.st_mode);
    size_ = regular_ ? static_cast<std::uint64_t>(st.st_size) : 0;
    return {};
  }

  /// Drops what a failed batch left at the end of the file.
  void undo() {
    if (regular_ && ::ftruncate(fd_, static_cast<off_t>(size_)) == 0) return;
    // The file cannot be cut back (not a regular file, or truncating failed too): reopen at the
    // next batch, which finds the size anew.
    ::close(fd_);
    fd_ = -1;
  }

  std::string numbered(unsigned n) const { return options_.path.string() + "." + std::to_string(n); }

  error_info rotate() {
    if (!regular_) return {};
    ::close(fd_);
    fd_ = -1;
    const std::string current = options_.path.string();
    if (options_.keep == 0) {
      if (::unlink(current.c_str()) != 0 && errno != ENOENT)
        return io_error(errno, "rotating " + current);
    } else {
      std::error_code ignored;
      std::filesystem::remove(numbered(options_.keep), ignored);
      for (unsigned i = options_.keep; i > 1; --i) {
        if (::rename(numbered(i - 1).c_str(), numbered(i).c_str()) != 0 && errno != ENOENT)
          return io_error(errno, "rotating " + numbered(i - 1));
      }
      if (::rename(current.c_str(), numbered(1).c_str()) != 0)
        return io_error(errno, "rotating " + current);
    }
    // The renames are durable before lines go to the new file.
    auto dir = options_.path.parent_path();
    if (dir.empty()) dir = ".";
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
    return open_file();
  }

  file_sink_options options_;
  std::mutex mutex_;
  int fd_ = -1;
  bool regular_ = true;
  std::uint64_t size_ = 0;
};

}  // namespace

std::shared_ptr<sink> make_file_sink(file_sink_options options, logger log) {
  return std::make_shared<file_sink>(std::move(options), std::move(log));
}

}  // namespace sfstream::serve
