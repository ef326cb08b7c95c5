#include "core/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/crash_point.h"

namespace keel {
namespace {

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Append(std::string_view data) override {
    while (!data.empty()) {
      ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, "writing " + path_);
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return OkStatus();
  }

  Status Sync() override {
    if (::fdatasync(fd_) != 0) {
      return DataLoss("fsync of " + path_ + " failed (" + std::strerror(errno) +
                      "); stopping writes: the data may not be on disk");
    }
    return OkStatus();
  }

  Status Close() override {
    if (fd_ < 0) return OkStatus();
    int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) return ErrnoStatus(errno, "closing " + path_);
    return OkStatus();
  }

 private:
  int fd_;
  std::string path_;
};

class PosixSequentialFile final : public SequentialFile {
 public:
  PosixSequentialFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixSequentialFile() override { ::close(fd_); }

  Result<size_t> Read(char* buf, size_t n) override {
    for (;;) {
      ssize_t got = ::read(fd_, buf, n);
      if (got >= 0) return static_cast<size_t>(got);
      if (errno != EINTR) return ErrnoStatus(errno, "reading " + path_);
    }
  }

 private:
  int fd_;
  std::string path_;
};

class PosixFileLock final : public FileLock {
 public:
  PosixFileLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixFileLock() override { ::close(fd_); }  // closing the last descriptor drops the lock

  Result<bool> TryLock(LockMode mode) override {
    for (;;) {
      if (::flock(fd_, Op(mode) | LOCK_NB) == 0) return true;
      if (errno == EWOULDBLOCK) return false;
      if (errno != EINTR) return ErrnoStatus(errno, "locking " + path_);
    }
  }

  Status Lock(LockMode mode) override {
    while (::flock(fd_, Op(mode)) != 0) {
      if (errno != EINTR) return ErrnoStatus(errno, "locking " + path_);
    }
    return OkStatus();
  }

  Status Unlock() override {
    if (::flock(fd_, LOCK_UN) != 0) return ErrnoStatus(errno, "unlocking " + path_);
    return OkStatus();
  }

  const std::string& path() const override { return path_; }

 private:
  static int Op(LockMode mode) { return mode == LockMode::kShared ? LOCK_SH : LOCK_EX; }

  int fd_;
  std::string path_;
};

class PosixFileSystem final : public FileSystem {
 public:
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                        int mode) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) return ErrnoStatus(errno, "creating " + path);
    if (Status s = EnsureFileMode(fd, mode, path); !s.ok()) {
      ::close(fd);
      return s;
    }
    return std::unique_ptr<WritableFile>(new PosixWritableFile(fd, path));
  }

  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path,
                                                          int mode) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) return ErrnoStatus(errno, "opening " + path);
    if (Status s = EnsureFileMode(fd, mode, path); !s.ok()) {
      ::close(fd);
      return s;
    }
    return std::unique_ptr<WritableFile>(new PosixWritableFile(fd, path));
  }

  Result<std::string> ReadFile(const std::string& path, uint64_t max_bytes) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus(errno, "reading " + path);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      int e = errno;
      ::close(fd);
      return ErrnoStatus(e, "reading " + path);
    }
    if (static_cast<uint64_t>(st.st_size) > max_bytes) {
      ::close(fd);
      return InvalidArgument(path + " is " + std::to_string(st.st_size) +
                             " bytes, more than the limit of " + std::to_string(max_bytes));
    }
    std::string out;
    out.reserve(static_cast<size_t>(st.st_size));
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        int e = errno;
        ::close(fd);
        return ErrnoStatus(e, "reading " + path);
      }
      if (n == 0) break;
      out.append(buf, static_cast<size_t>(n));
      if (out.size() > max_bytes) {
        ::close(fd);
        return InvalidArgument(path + " is larger than the limit of " + std::to_string(max_bytes) +
                               " bytes");
      }
    }
    ::close(fd);
    return out;
  }

  bool Exists(const std::string& path) override {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0;
  }

  Result<uint64_t> FileSize(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "stat " + path);
    return static_cast<uint64_t>(st.st_size);
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return ErrnoStatus(errno, "renaming " + from + " to " + to);
    }
    return OkStatus();
  }

  Status SyncDir(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus(errno, "opening folder " + dir);
    int rc = ::fsync(fd);
    int e = errno;
    ::close(fd);
    if (rc != 0) {
      return DataLoss("fsync of folder " + dir + " failed (" + std::strerror(e) +
                      "); stopping writes");
    }
    return OkStatus();
  }

  Status CreateDirs(const std::string& dir, int mode) override {
    // The missing folders, innermost first. std::filesystem::create_directories would give
    // the parents the umask's bits (0777 & ~umask: world-writable under umask 000).
    std::vector<std::string> missing;
    for (std::string d = dir;; d = DirName(d)) {
      struct stat st;
      if (::stat(d.c_str(), &st) == 0) {
        if (!S_ISDIR(st.st_mode)) return ErrnoStatus(ENOTDIR, "creating folder " + dir);
        break;
      }
      if (errno != ENOENT) return ErrnoStatus(errno, "creating folder " + dir);
      missing.push_back(d);
      if (d == "/" || d == "." || DirName(d) == d) break;
    }
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
      if (::mkdir(it->c_str(), static_cast<mode_t>(mode)) != 0) {
        struct stat st;
        // Another process made it meanwhile: it is not ours to change.
        if (errno == EEXIST && ::stat(it->c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
        return ErrnoStatus(errno, "creating folder " + *it);
      }
      // mkdir(2) applies the umask.
      if (::chmod(it->c_str(), static_cast<mode_t>(mode)) != 0) {
        return ErrnoStatus(errno, "setting rights of " + *it);
      }
    }
    return OkStatus();
  }

  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return ErrnoStatus(errno, "removing " + path);
    return OkStatus();
  }

  Status RemoveTree(const std::string& path) override {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    if (ec) return ErrnoStatus(ec.value(), "removing " + path);
    return OkStatus();
  }

  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return ErrnoStatus(errno, "listing " + dir);
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(std::move(n));
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    return names;
  }

  Result<int> Mode(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "stat " + path);
    return static_cast<int>(st.st_mode & 07777);
  }

  Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus(errno, "reading " + path);
    return std::unique_ptr<SequentialFile>(new PosixSequentialFile(fd, path));
  }

  Status SyncFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus(errno, "opening " + path);
    int rc = ::fsync(fd);
    int e = errno;
    ::close(fd);
    if (rc != 0) {
      return DataLoss("fsync of " + path + " failed (" + std::strerror(e) +
                      "); stopping writes: the data may not be on disk");
    }
    return OkStatus();
  }

  Result<std::unique_ptr<FileLock>> OpenLockFile(const std::string& path, bool create,
                                                 int mode) override {
    int flags = create ? O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW : O_RDONLY | O_CLOEXEC;
    int fd = ::open(path.c_str(), flags, mode);
    if (fd < 0) return ErrnoStatus(errno, "opening lock file " + path);
    if (create) {
      if (Status s = EnsureFileMode(fd, mode, path); !s.ok()) {
        ::close(fd);
        return s;
      }
    }
    return std::unique_ptr<FileLock>(new PosixFileLock(fd, path));
  }
};

}  // namespace

Status EnsureFileMode(int fd, int mode, const std::string& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus(errno, "stat " + path);
  if (static_cast<int>(st.st_mode & 07777) == mode) return OkStatus();
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) {
    return ErrnoStatus(errno, "setting rights of " + path);
  }
  return OkStatus();
}

FileSystem* DefaultFileSystem() {
  static PosixFileSystem fs;
  return &fs;
}

Status WriteFileAtomic(FileSystem* fs, const std::string& path, std::string_view data, int mode) {
  std::string tmp = path + ".tmp";
  // A temp file left by a crashed process may be read-only (mode 0400 for artifacts), and
  // opening it for writing would fail: remove it first.
  if (fs->Exists(tmp)) KEEL_RETURN_IF_ERROR(fs->RemoveFile(tmp));
  KEEL_ASSIGN_OR_RETURN(auto file, fs->NewWritableFile(tmp, mode));
  Status s = file->Append(data);
  if (s.ok()) s = file->Sync();
  Status c = file->Close();
  if (s.ok()) s = c;
  if (!s.ok()) {
    fs->RemoveFile(tmp).IgnoreError();
    return s;
  }
  KEEL_CRASH_POINT("file.after_write_before_rename");
  if (Status r = fs->Rename(tmp, path); !r.ok()) {
    fs->RemoveFile(tmp).IgnoreError();
    return r;
  }
  KEEL_CRASH_POINT("file.after_rename_before_dirsync");
  return fs->SyncDir(DirName(path));
}

Result<std::unique_ptr<FileLock>> LockFile(FileSystem* fs, const std::string& path, LockMode lock,
                                           LockWait wait, int mode) {
  KEEL_ASSIGN_OR_RETURN(auto f, fs->OpenLockFile(path, /*create=*/true, mode));
  if (wait == LockWait::kWait) {
    KEEL_RETURN_IF_ERROR(f->Lock(lock));
    return f;
  }
  KEEL_ASSIGN_OR_RETURN(bool taken, f->TryLock(lock));
  if (!taken) return std::unique_ptr<FileLock>();
  return f;
}

std::string JoinPath(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (!b.empty() && b.front() == '/') return std::string(b);
  std::string out(a);
  if (out.back() != '/') out += '/';
  out += b;
  return out;
}

std::string DirName(const std::string& path) {
  auto pos = path.find_last_of('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return path.substr(0, pos);
}

std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  auto p = std::filesystem::absolute(path, ec);
  if (ec) return path;
  return p.lexically_normal().string();
}

}  // namespace keel
