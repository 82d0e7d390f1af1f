// The file replay store. One small JSON document per store:
//
//   {"format":"sfstream-replay-store","version":1,
//    "positions":{"/topic/X":{"replayId":13,"eventTime":"2016-03-29T16:40:08.208Z"}}}
//
// replayId is a JSON integer kept exact over the whole int64 range (RapidJSON parses integers
// without going through double). An exclusive flock on "<path>.lock" is held for the store's
// lifetime; every save writes "<path>.tmp", fsyncs it, renames it over the path and fsyncs the
// directory, so a crash at any moment leaves either the old or the new document.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <string_view>
#include <system_error>
#include <utility>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include "sfstream/replay_store.hpp"
#include "src/replay/file_replay_store.hpp"
#include "vocabulary/event_time.hpp"

namespace sfstream {
namespace {

constexpr std::string_view format_name = "sfstream-replay-store";
constexpr int format_version = 1;

std::string errno_text(int err) {
  return std::generic_category().message(err);
}

error_info make_error(errc code, const std::filesystem::path& path, std::string text) {
  error_info info;
  info.code = code;
  info.diag.context = "replay store " + path.string();
  info.diag.server_text = std::move(text);
  return info;
}

// Owns a file descriptor.
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // Closes and reports the close error (which, after a write, may be a deferred write error).
  int close_checked() noexcept {
    const int result = ::close(std::exchange(fd_, -1));
    return result == 0 ? 0 : errno;
  }

 private:
  int fd_ = -1;
};

int open_retrying(const char* path, int flags, mode_t mode = 0) noexcept {
  int fd = -1;
  do {
    fd = ::open(path, flags, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

// 0 on success, else errno.
int write_all(int fd, std::string_view bytes) noexcept {
  while (!bytes.empty()) {
    const ssize_t written = ::write(fd, bytes.data(), bytes.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    bytes.remove_prefix(static_cast<std::size_t>(written));
  }
  return 0;
}

int fsync_retrying(int fd) noexcept {
  int result = 0;
  do {
    result = ::fsync(fd);
  } while (result != 0 && errno == EINTR);
  return result == 0 ? 0 : errno;
}

std::filesystem::path with_suffix(const std::filesystem::path& path, const char* suffix) {
  std::filesystem::path out = path;
  out += suffix;
  return out;
}

// Reads the whole file; a missing file yields an empty optional and no error.
error_info read_file(const std::filesystem::path& path, std::optional<std::string>& contents) {
  contents.reset();
  unique_fd fd{open_retrying(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (!fd) {
    if (errno == ENOENT) return {};
    return make_error(errc::replay_store_io, path, "cannot open for reading: " + errno_text(errno));
  }
  std::string text;
  char buffer[16384];
  for (;;) {
    const ssize_t got = ::read(fd.get(), buffer, sizeof buffer);
    if (got < 0) {
      if (errno == EINTR) continue;
      return make_error(errc::replay_store_io, path, "cannot read: " + errno_text(errno));
    }
    if (got == 0) break;
    text.append(buffer, static_cast<std::size_t>(got));
  }
  contents = std::move(text);
  return {};
}

}  // namespace

namespace detail {

error_info parse_replay_store(std::string_view text, const std::filesystem::path& path,
                              std::map<std::string, replay_position>& positions) {
  auto corrupt = [&](std::string why) {
    return make_error(errc::replay_store_corrupt, path, std::move(why));
  };
  if (text.find('\0') != std::string_view::npos) return corrupt("the file contains a NUL byte");
  rapidjson::Document document;
  document.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  if (document.HasParseError()) {
    return corrupt(std::string("not valid JSON at byte ") +
                   std::to_string(document.GetErrorOffset()) + ": " +
                   rapidjson::GetParseError_En(document.GetParseError()));
  }
  if (!document.IsObject()) return corrupt("the document is not a JSON object");
  // Read through a const view: const iterators compare unambiguously under C++20.
  const rapidjson::Value& root = document;
  const auto version = root.FindMember("version");
  if (version == root.MemberEnd() || !version->value.IsInt() ||
      version->value.GetInt() != format_version) {
    return corrupt("\"version\" is missing or is not 1");
  }
  const auto list = root.FindMember("positions");
  if (list == root.MemberEnd() || !list->value.IsObject()) {
    return corrupt("\"positions\" is missing or is not an object");
  }
  for (const auto& member : list->value.GetObject()) {
    const std::string key(member.name.GetString(), member.name.GetStringLength());
    if (!member.value.IsObject()) return corrupt("the entry of \"" + key + "\" is not an object");
    const auto id = member.value.FindMember("replayId");
    if (id == member.value.MemberEnd() || !id->value.IsInt64()) {
      return corrupt("the entry of \"" + key + "\" has no 64-bit integer \"replayId\"");
    }
    const auto time = member.value.FindMember("eventTime");
    if (time == member.value.MemberEnd() || !time->value.IsString()) {
      return corrupt("the entry of \"" + key + "\" has no \"eventTime\" string");
    }
    const auto parsed_time = detail::parse_event_time(
        std::string_view(time->value.GetString(), time->value.GetStringLength()));
    if (!parsed_time) {
      return corrupt("the entry of \"" + key +
                     "\" has an \"eventTime\" that is not YYYY-MM-DDTHH:MM:SS.mmmZ");
    }
    positions[key] = replay_position{id->value.GetInt64(), *parsed_time};
  }
  return {};
}

std::string serialize_replay_store(const std::map<std::string, replay_position>& positions) {
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buffer);
  writer.SetIndent(' ', 2);
  writer.StartObject();
  writer.Key("format");
  writer.String(format_name.data(), static_cast<rapidjson::SizeType>(format_name.size()));
  writer.Key("version");
  writer.Int(format_version);
  writer.Key("positions");
  writer.StartObject();
  for (const auto& [key, position] : positions) {
    writer.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
    writer.StartObject();
    writer.Key("replayId");
    writer.Int64(position.replay_id);
    writer.Key("eventTime");
    const std::string time = detail::format_event_time(position.event_time);
    writer.String(time.data(), static_cast<rapidjson::SizeType>(time.size()));
    writer.EndObject();
  }
  writer.EndObject();
  writer.EndObject();
  std::string out(buffer.GetString(), buffer.GetSize());
  out += '\n';
  return out;
}

}  // namespace detail

namespace {

class file_replay_store final : public replay_store {
 public:
  file_replay_store(std::filesystem::path path, unique_fd lock,
                    std::map<std::string, replay_position> positions)
      : path_(std::move(path)), lock_(std::move(lock)), positions_(std::move(positions)) {}

  std::optional<replay_position> load(const std::string& replay_key) const override {
    const std::lock_guard guard(mutex_);
    const auto found = positions_.find(replay_key);
    if (found == positions_.end()) return std::nullopt;
    return found->second;
  }

  std::map<std::string, replay_position> load_all() const override {
    const std::lock_guard guard(mutex_);
    return positions_;
  }

  error_info save(const std::map<std::string, replay_position>& positions) override {
    if (positions.empty()) return {};
    const std::lock_guard guard(mutex_);
    auto merged = positions_;
    for (const auto& [key, position] : positions) merged[key] = position;
    if (auto failed = write_atomically(detail::serialize_replay_store(merged))) return failed;
    positions_ = std::move(merged);
    return {};
  }

 private:
  error_info write_atomically(std::string_view bytes) const {
    const std::filesystem::path temporary = with_suffix(path_, ".tmp");
    auto fail = [&](const std::string& step, int err) {
      ::unlink(temporary.c_str());
      return make_error(errc::replay_store_io, path_, step + ": " + errno_text(err));
    };
    unique_fd out{open_retrying(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666)};
    if (!out) {
      const int err = errno;
      return make_error(errc::replay_store_io, path_,
                        "cannot create " + temporary.string() + ": " + errno_text(err));
    }
    if (const int err = write_all(out.get(), bytes))
      return fail("cannot write " + temporary.string(), err);
    if (const int err = fsync_retrying(out.get()))
      return fail("cannot fsync " + temporary.string(), err);
    if (const int err = out.close_checked()) return fail("cannot close " + temporary.string(), err);
    if (::rename(temporary.c_str(), path_.c_str()) != 0) {
      return fail("cannot rename " + temporary.string() + " over it", errno);
    }
    // The rename is durable only once the directory entry is on disk.
    std::filesystem::path directory = path_.parent_path();
    if (directory.empty()) directory = ".";
    unique_fd dir{open_retrying(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (!dir) {
      const int err = errno;
      return make_error(
          errc::replay_store_io, path_,
          "cannot open directory " + directory.string() + " to fsync it: " + errno_text(err));
    }
    if (const int err = fsync_retrying(dir.get())) {
      return make_error(errc::replay_store_io, path_,
                        "cannot fsync directory " + directory.string() + ": " + errno_text(err));
    }
    return {};
  }

  std::filesystem::path path_;
  unique_fd lock_;  // Holds the flock until the store is destroyed.
  mutable std::mutex mutex_;
  std::map<std::string, replay_position> positions_;
};

}  // namespace

std::shared_ptr<replay_store> open_file_replay_store(const std::filesystem::path& path) {
  if (path.empty() || !path.has_filename()) {
    throw error(make_error(errc::replay_store_io, path, "the path names no file"));
  }
  const std::filesystem::path lock_path = with_suffix(path, ".lock");
  unique_fd lock{open_retrying(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666)};
  if (!lock) {
    const int err = errno;
    throw error(make_error(errc::replay_store_io, path,
                           "cannot open lock file " + lock_path.string() + ": " + errno_text(err)));
  }
  int locked = 0;
  do {
    locked = ::flock(lock.get(), LOCK_EX | LOCK_NB);
  } while (locked != 0 && errno == EINTR);
  if (locked != 0) {
    const int err = errno;
    if (err == EWOULDBLOCK) {
      throw error(make_error(errc::replay_store_locked, path,
                             lock_path.string() +
                                 " is locked: another process (or another open store in this "
                                 "process) is using this replay store"));
    }
    throw error(make_error(errc::replay_store_io, path,
                           "cannot lock " + lock_path.string() + ": " + errno_text(err)));
  }
  std::optional<std::string> contents;
  if (auto failed = read_file(path, contents)) throw error(std::move(failed));
  std::map<std::string, replay_position> positions;
  if (contents) {
    if (auto failed = detail::parse_replay_store(*contents, path, positions))
      throw error(std::move(failed));
  }
  return std::make_shared<file_replay_store>(path, std::move(lock), std::move(positions));
}

}  // namespace sfstream
