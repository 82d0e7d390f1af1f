// The file replay store. One small JSON document per store:
//
//   {"format":"sfstream-replay-store","version":1,
//    "positions":{"/topic/X":{"replayId":13,"eventTime":"2016-03-29T16:40:08.208Z"},
//                 "/poll/Account":{"cursor":"…","eventTime":"2016-03-29T16:40:09.000Z"}}}
//
// replayId is a JSON integer kept exact over the whole int64 range (RapidJSON parses integers
// without going through double). An entry with a non-empty replay_position::cursor holds it as
// the string "cursor" instead of a replayId: the one format reads both kinds of position, and a
// store without cursors is byte for byte what it was before they existed.
//
// Where the store lives. The path as given is resolved to the store's real path first: the
// directory through realpath(), then the file name, following a symbolic link (and a chain of
// them) to its target. Every file the store touches sits beside that real path: the lock
// "<real>.lock", the temporary "<real>.tmp", and the document itself, which is replaced by
// renaming over the target, so a store reached through a symlink stays a symlink and two
// spellings of one store (a symlinked file or directory, "a/../b", a relative path) are one
// store.
//
// The exclusion rule: two open stores on one document always collide, whatever path reaches
// it. An open store holds two exclusive flocks for its whole life, and a second open is
// refused with errc::replay_store_locked while either is held:
//   1. on "<real>.lock", which covers every path that resolves to the same real path, even
//      before the document exists;
//   2. on the document's current inode: the file read at open, then each file a save writes
//      (the temporary is locked before it is renamed into place, and the previous inode is
//      released only after). This covers hard links, whose names share the inode and not the
//      lock path, and a removed or replaced lock file while the document exists.
// A lock file cannot be made immune to `rm`, so each save checks both before writing: the
// document must still be the inode this store wrote (or still absent), and the lock path must
// still be the locked inode. A lock file that was removed (or removed and created again by an
// open that rule 2 then refused) while the document is untouched is locked again: nobody else
// can have written. A lock file held by another store, or a document written by someone else,
// means a second writer got in (possible only while no document existed yet); the save then
// fails with errc::replay_store_locked and writes nothing, and so does every save after it.
// An atomic rename cannot keep a hard link: after a save the other name still holds the old
// document, which is then a separate file.
//
// Every save writes "<real>.tmp", fsyncs it, renames it over the real path and fsyncs the
// directory, so a crash at any moment leaves either the old or the new document. A failed
// step removes the temporary and returns errc::replay_store_io with the system error as the
// cause; save() never throws.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <exception>
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

namespace fs = std::filesystem;

constexpr std::string_view format_name = "sfstream-replay-store";
constexpr int format_version = 1;

// Symbolic links followed from the store's name before giving up, as the kernel does (ELOOP).
constexpr int max_symlink_hops = 40;

std::string errno_text(int err) {
  return std::generic_category().message(err);
}

// The context line of every error: the path as given, and the real path when it differs.
std::string store_context(const fs::path& path, const fs::path& real) {
  std::string out = "replay store " + path.string();
  if (!real.empty() && real != path) out += " (" + real.string() + ")";
  return out;
}

error_info make_error(errc code, const fs::path& path, std::string text, int err = 0,
                      const fs::path& real = {}) {
  error_info info;
  info.code = code;
  info.diag.context = store_context(path, real);
  info.diag.server_text = std::move(text);
  if (err != 0) info.cause = std::error_code(err, std::generic_category());
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

 private:
  int fd_ = -1;
};

// A file's identity: the same (device, inode) is the same file whatever name reaches it.
struct file_id {
  dev_t device = 0;
  ino_t inode = 0;
  bool operator==(const file_id&) const = default;
};

file_id id_of(const struct stat& st) noexcept {
  return {st.st_dev, st.st_ino};
}

int open_retrying(const char* path, int flags, mode_t mode = 0) noexcept {
  int fd = -1;
  do {
    fd = ::open(path, flags, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

// 0 when the exclusive flock was taken, else errno (EWOULDBLOCK: someone else holds it).
int lock_exclusive(int fd) noexcept {
  int result = 0;
  do {
    result = ::flock(fd, LOCK_EX | LOCK_NB);
  } while (result != 0 && errno == EINTR);
  return result == 0 ? 0 : errno;
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

fs::path with_suffix(const fs::path& path, const char* suffix) {
  fs::path out = path;
  out += suffix;
  return out;
}

fs::path directory_of(const fs::path& path) {
  fs::path directory = path.parent_path();
  return directory.empty() ? fs::path(".") : directory;
}

// The store's real path: realpath() of the directory, then the file name with any chain of
// symbolic links followed to its final target (which need not exist yet).
error_info resolve_store_path(const fs::path& path, fs::path& real) {
  fs::path current = path;
  for (int hop = 0; hop <= max_symlink_hops; ++hop) {
    if (!current.has_filename()) {
      return make_error(errc::replay_store_io, path,
                        "the symbolic link " + current.string() + " names no file");
    }
    const fs::path directory = directory_of(current);
    char* resolved = ::realpath(directory.c_str(), nullptr);
    if (resolved == nullptr) {
      const int err = errno;
      return make_error(errc::replay_store_io, path,
                        "cannot resolve directory " + directory.string() + ": " + errno_text(err),
                        err);
    }
    const fs::path candidate = fs::path(resolved) / current.filename();
    std::free(resolved);
    struct stat st {};
    if (::lstat(candidate.c_str(), &st) != 0) {
      const int err = errno;
      if (err == ENOENT) {
        real = candidate;
        return {};
      }
      return make_error(errc::replay_store_io, path,
                        "cannot examine " + candidate.string() + ": " + errno_text(err), err);
    }
    if (!S_ISLNK(st.st_mode)) {
      real = candidate;
      return {};
    }
    std::error_code ec;
    const fs::path target = fs::read_symlink(candidate, ec);
    if (ec) {
      return make_error(errc::replay_store_io, path,
                        "cannot read the symbolic link " + candidate.string() + ": " + ec.message(),
                        ec.value());
    }
    current = target.is_absolute() ? target : candidate.parent_path() / target;
  }
  return make_error(errc::replay_store_io, path, "too many levels of symbolic links", ELOOP);
}

// Reads the whole of an open file from its start.
error_info read_all(int fd, const fs::path& path, const fs::path& real, std::string& text) {
  text.clear();
  char buffer[16384];
  for (off_t offset = 0;;) {
    const ssize_t got = ::pread(fd, buffer, sizeof buffer, offset);
    if (got < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      return make_error(errc::replay_store_io, path, "cannot read: " + errno_text(err), err, real);
    }
    if (got == 0) return {};
    text.append(buffer, static_cast<std::size_t>(got));
    offset += got;
  }
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
    const auto cursor = member.value.FindMember("cursor");
    const bool has_cursor = cursor != member.value.MemberEnd();
    if (has_cursor && (!cursor->value.IsString() || cursor->value.GetStringLength() == 0)) {
      return corrupt("the entry of \"" + key + "\" has a \"cursor\" that is not a non-empty string");
    }
    if (has_cursor && id != member.value.MemberEnd()) {
      return corrupt("the entry of \"" + key + "\" has both a \"replayId\" and a \"cursor\"");
    }
    if (!has_cursor && (id == member.value.MemberEnd() || !id->value.IsInt64())) {
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
    replay_position position;
    position.event_time = *parsed_time;
    if (has_cursor)
      position.cursor.assign(cursor->value.GetString(), cursor->value.GetStringLength());
    else
      position.replay_id = id->value.GetInt64();
    positions[key] = std::move(position);
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
    if (position.cursor.empty()) {
      writer.Key("replayId");
      writer.Int64(position.replay_id);
    } else {
      writer.Key("cursor");
      writer.String(position.cursor.data(),
                    static_cast<rapidjson::SizeType>(position.cursor.size()));
    }
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
  file_replay_store(fs::path path, fs::path real, unique_fd lock, file_id lock_id,
                    unique_fd document, std::optional<file_id> document_id,
                    std::map<std::string, replay_position> positions)
      : path_(std::move(path)),
        real_(std::move(real)),
        lock_path_(with_suffix(real_, ".lock")),
        temporary_(with_suffix(real_, ".tmp")),
        lock_(std::move(lock)),
        lock_id_(lock_id),
        document_(std::move(document)),
        document_id_(document_id),
        positions_(std::move(positions)) {}

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
    try {
      const std::lock_guard guard(mutex_);
      if (auto lost = check_still_exclusive()) return lost;
      auto merged = positions_;
      for (const auto& [key, position] : positions) merged[key] = position;
      bool replaced = false;
      auto failed = write_atomically(detail::serialize_replay_store(merged), replaced);
      // Once renamed into place the new document is what the file holds, even when the
      // directory fsync that makes it durable then failed.
      if (replaced) positions_ = std::move(merged);
      return failed;
    } catch (const std::exception& e) {
      return fail(errc::replay_store_io, std::string("cannot save: ") + e.what());
    }
  }

 private:
  error_info fail(errc code, std::string text, int err = 0) const {
    return make_error(code, path_, std::move(text), err, real_);
  }

  // The check before each save (see the top of this file): the document and the lock path
  // must still be the files this store holds.
  error_info check_still_exclusive() {
    if (lost_) return *lost_;
    struct stat st {};
    if (::lstat(real_.c_str(), &st) == 0) {
      if (!document_id_ || !(id_of(st) == *document_id_)) {
        return lose(
            "the store file was written by another process or replaced since this "
            "store last saved it; stopped saving so that two writers never share it");
      }
    } else if (errno != ENOENT) {
      const int err = errno;
      return fail(errc::replay_store_io, "cannot examine: " + errno_text(err), err);
    }
    // A document removed by hand is written again: the lock file still keeps others out.
    if (::lstat(lock_path_.c_str(), &st) == 0) {
      if (id_of(st) == lock_id_) return {};
    } else if (errno != ENOENT) {
      const int err = errno;
      return fail(errc::replay_store_io,
                  "cannot examine " + lock_path_.string() + ": " + errno_text(err), err);
    }
    // The lock file was removed (and perhaps created again by an open that was then refused
    // at the document's lock). The document is untouched, so nobody else wrote: take the lock
    // at the path again, unless another store holds it.
    unique_fd lock{
        open_retrying(lock_path_.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666)};
    if (!lock) {
      const int err = errno;
      return fail(
          errc::replay_store_io,
          "cannot re-create the removed lock file " + lock_path_.string() + ": " + errno_text(err),
          err);
    }
    if (const int err = lock_exclusive(lock.get())) {
      if (err == EWOULDBLOCK) {
        return lose("the lock file " + lock_path_.string() +
                    " was replaced while this store held it, and another store holds the new "
                    "one: stopped saving so that two writers never share this replay store");
      }
      return fail(errc::replay_store_io,
                  "cannot lock " + lock_path_.string() + ": " + errno_text(err), err);
    }
    if (::fstat(lock.get(), &st) != 0) {
      const int stat_err = errno;
      return fail(errc::replay_store_io,
                  "cannot examine " + lock_path_.string() + ": " + errno_text(stat_err), stat_err);
    }
    lock_ = std::move(lock);
    lock_id_ = id_of(st);
    return {};
  }

  // Exclusivity, once lost, stays lost: every later save fails the same way.
  error_info lose(std::string text) {
    lost_ = fail(errc::replay_store_locked, std::move(text));
    return *lost_;
  }

  error_info write_atomically(std::string_view bytes, bool& replaced) {
    replaced = false;
    auto discard = [&](const std::string& step, int err) {
      ::unlink(temporary_.c_str());
      return fail(errc::replay_store_io, step + ": " + errno_text(err), err);
    };
    // A temporary left by a crash is removed first: the new one is created exclusively, and
    // never through a symbolic link planted at its name.
    if (::unlink(temporary_.c_str()) != 0 && errno != ENOENT) {
      const int err = errno;
      return fail(errc::replay_store_io,
                  "cannot remove the stale " + temporary_.string() + ": " + errno_text(err), err);
    }
    unique_fd out{open_retrying(temporary_.c_str(),
                                O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666)};
    if (!out) {
      const int err = errno;
      return fail(errc::replay_store_io,
                  "cannot create " + temporary_.string() + ": " + errno_text(err), err);
    }
    if (const int err = lock_exclusive(out.get()))
      return discard("cannot lock " + temporary_.string(), err);
    if (const int err = write_all(out.get(), bytes))
      return discard("cannot write " + temporary_.string(), err);
    if (const int err = fsync_retrying(out.get()))
      return discard("cannot fsync " + temporary_.string(), err);
    struct stat st {};
    if (::fstat(out.get(), &st) != 0)
      return discard("cannot examine " + temporary_.string(), errno);
    if (::rename(temporary_.c_str(), real_.c_str()) != 0) {
      return discard("cannot rename " + temporary_.string() + " over the store file", errno);
    }
    // The new inode is the store's now; closing the old descriptor releases the old one.
    replaced = true;
    document_ = std::move(out);
    document_id_ = id_of(st);
    // The rename is durable only once the directory entry is on disk.
    const fs::path directory = directory_of(real_);
    unique_fd dir{open_retrying(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (!dir) {
      const int err = errno;
      return fail(
          errc::replay_store_io,
          "cannot open directory " + directory.string() + " to fsync it: " + errno_text(err), err);
    }
    if (const int err = fsync_retrying(dir.get())) {
      return fail(errc::replay_store_io,
                  "cannot fsync directory " + directory.string() + ": " + errno_text(err), err);
    }
    return {};
  }

  const fs::path path_;       // As given: what errors name first.
  const fs::path real_;       // Resolved: where every file is read, written and locked.
  const fs::path lock_path_;  // real_ + ".lock"
  const fs::path temporary_;  // real_ + ".tmp"
  mutable std::mutex mutex_;
  unique_fd lock_;  // Holds the flock on lock_path_ (rule 1).
  file_id lock_id_;
  unique_fd document_;                  // Holds the flock on the document's current inode (rule 2).
  std::optional<file_id> document_id_;  // Empty while no document exists.
  std::optional<error_info> lost_;      // Set once another writer was detected.
  std::map<std::string, replay_position> positions_;
};

}  // namespace

std::shared_ptr<replay_store> open_file_replay_store(const std::filesystem::path& path) {
  if (path.empty() || !path.has_filename()) {
    throw error(make_error(errc::replay_store_io, path, "the path names no file"));
  }
  fs::path real;
  if (auto failed = resolve_store_path(path, real)) throw error(std::move(failed));
  auto fail = [&](errc code, std::string text, int err = 0) {
    return error(make_error(code, path, std::move(text), err, real));
  };
  constexpr std::string_view held_elsewhere =
      ": another process (or another open store in this process) is using this replay store";

  const fs::path lock_path = with_suffix(real, ".lock");
  unique_fd lock{open_retrying(lock_path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666)};
  if (!lock) {
    const int err = errno;
    throw fail(errc::replay_store_io,
               "cannot open lock file " + lock_path.string() + ": " + errno_text(err), err);
  }
  if (const int err = lock_exclusive(lock.get())) {
    if (err == EWOULDBLOCK) {
      throw fail(errc::replay_store_locked,
                 lock_path.string() + " is locked" + std::string(held_elsewhere));
    }
    throw fail(errc::replay_store_io, "cannot lock " + lock_path.string() + ": " + errno_text(err),
               err);
  }
  struct stat st {};
  if (::fstat(lock.get(), &st) != 0) {
    const int err = errno;
    throw fail(errc::replay_store_io,
               "cannot examine " + lock_path.string() + ": " + errno_text(err), err);
  }
  const file_id lock_id = id_of(st);

  std::map<std::string, replay_position> positions;
  std::optional<file_id> document_id;
  unique_fd document{open_retrying(real.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC)};
  if (!document) {
    const int err = errno;
    if (err != ENOENT) {
      throw fail(errc::replay_store_io, "cannot open for reading: " + errno_text(err), err);
    }
  } else {
    if (::fstat(document.get(), &st) != 0) {
      const int err = errno;
      throw fail(errc::replay_store_io, "cannot examine: " + errno_text(err), err);
    }
    if (!S_ISREG(st.st_mode)) {
      throw fail(errc::replay_store_io, "the store path is not a regular file");
    }
    if (const int err = lock_exclusive(document.get())) {
      if (err == EWOULDBLOCK) {
        throw fail(errc::replay_store_locked,
                   "the store file is locked, reached through another name (a hard link?)" +
                       std::string(held_elsewhere));
      }
      throw fail(errc::replay_store_io, "cannot lock the store file: " + errno_text(err), err);
    }
    document_id = id_of(st);
    std::string text;
    if (auto failed = read_all(document.get(), path, real, text)) throw error(std::move(failed));
    if (auto failed = detail::parse_replay_store(text, path, positions))
      throw error(std::move(failed));
  }
  return std::make_shared<file_replay_store>(
      path, real, std::move(lock), lock_id, std::move(document), document_id, std::move(positions));
}

}  // namespace sfstream
