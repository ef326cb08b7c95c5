#include "core/testing_fault_fs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace keel::testing {

// A WritableFile whose Appends and Syncs go through the fault file system's bookkeeping.
class FaultFile final : public WritableFile {
 public:
  FaultFile(FaultInjectionFileSystem* fs, uint64_t gen, std::string path,
            std::unique_ptr<WritableFile> real)
      : fs_(fs), gen_(gen), path_(std::move(path)), real_(std::move(real)) {}

  Status Append(std::string_view data) override {
    return fs_->FileAppend(gen_, path_, data, real_.get());
  }
  Status Sync() override { return fs_->FileSync(gen_, path_, real_.get()); }
  Status Close() override { return real_->Close(); }

 private:
  FaultInjectionFileSystem* fs_;
  uint64_t gen_;
  std::string path_;
  std::unique_ptr<WritableFile> real_;
};

// A FileLock that dies with its "process": a crash releases its real lock.
class FaultLock final : public FileLock {
 public:
  FaultLock(FaultInjectionFileSystem* fs, uint64_t gen, std::unique_ptr<FileLock> real)
      : fs_(fs), gen_(gen), real_(std::move(real)) {}
  ~FaultLock() override {
    std::lock_guard<std::mutex> l(fs_->mu_);
    fs_->locks_.erase(this);
  }

  Result<bool> TryLock(LockMode mode) override {
    std::lock_guard<std::mutex> l(fs_->mu_);
    KEEL_RETURN_IF_ERROR(Alive());
    return real_->TryLock(mode);
  }
  // Waits without the file system's mutex held: the holder may need it to let go.
  Status Lock(LockMode mode) override {
    {
      std::lock_guard<std::mutex> l(fs_->mu_);
      KEEL_RETURN_IF_ERROR(Alive());
    }
    return real_->Lock(mode);
  }
  Status Unlock() override {
    std::lock_guard<std::mutex> l(fs_->mu_);
    KEEL_RETURN_IF_ERROR(Alive());
    return real_->Unlock();
  }
  const std::string& path() const override { return real_->path(); }

  // With the file system's mutex held.
  void ReleaseForCrash() { real_->Unlock().IgnoreError(); }

 private:
  Status Alive() const {
    if (gen_ != fs_->generation_ || fs_->crashed_) {
      return Unavailable("lock handle of " + real_->path() + " died in a crash");
    }
    return OkStatus();
  }

  FaultInjectionFileSystem* fs_;
  uint64_t gen_;
  std::unique_ptr<FileLock> real_;
};

namespace {
Status DiskFullError(const std::string& what) {
  return ErrnoStatus(ENOSPC, what + " (injected)");
}
}  // namespace

FaultInjectionFileSystem::FaultInjectionFileSystem(FileSystem* base) : base_(base) {}
FaultInjectionFileSystem::~FaultInjectionFileSystem() = default;

Status FaultInjectionFileSystem::CheckAlive() const {
  if (crashed_) return Unavailable("simulated crash: the file system is down");
  return OkStatus();
}

Status FaultInjectionFileSystem::CountOp() {
  KEEL_RETURN_IF_ERROR(CheckAlive());
  if (crash_after_ == 0) {
    if (crash_power_loss_) {
      CrashLocked();
    } else {
      KillProcessLocked();
    }
    crashed_ = true;
    crash_after_ = -1;
    return Unavailable("simulated crash: the file system is down");
  }
  if (crash_after_ > 0) --crash_after_;
  ++ops_count_;
  return OkStatus();
}

Status FaultInjectionFileSystem::MaybeSyncFault(const std::string& what) {
  ++syncs_;
  ++sync_counter_;
  if (fail_sync_at_ > 0 &&
      (sync_counter_ == fail_sync_at_ || (fail_sync_sticky_ && sync_counter_ > fail_sync_at_))) {
    return DataLoss("fsync of " + what +
                    " failed (Input/output error, injected); stopping writes: the data may "
                    "not be on disk");
  }
  return OkStatus();
}

Status FaultInjectionFileSystem::FileAppend(uint64_t gen, const std::string& path,
                                            std::string_view data, WritableFile* real) {
  std::lock_guard<std::mutex> l(mu_);
  if (gen != generation_) return Unavailable("file handle of " + path + " died in a crash");
  KEEL_RETURN_IF_ERROR(CountOp());
  if (DiskFull()) return DiskFullError("writing " + path);
  KEEL_RETURN_IF_ERROR(real->Append(data));
  ++appends_;
  files_[path].size += data.size();
  return OkStatus();
}

Status FaultInjectionFileSystem::FileSync(uint64_t gen, const std::string& path,
                                          WritableFile* real) {
  std::lock_guard<std::mutex> l(mu_);
  if (gen != generation_) return Unavailable("file handle of " + path + " died in a crash");
  KEEL_RETURN_IF_ERROR(CountOp());
  // A failed fsync leaves the durable size where it was: the kernel may have dropped the
  // dirty pages, so nothing written since the last good sync may be relied on.
  KEEL_RETURN_IF_ERROR(MaybeSyncFault(path));
  if (real_syncs_) KEEL_RETURN_IF_ERROR(real->Sync());
  auto& st = files_[path];
  st.synced_size = st.size;
  return OkStatus();
}

Result<std::unique_ptr<WritableFile>> FaultInjectionFileSystem::NewWritableFile(
    const std::string& path, int mode) {
  std::lock_guard<std::mutex> l(mu_);
  KEEL_RETURN_IF_ERROR(CountOp());
  if (DiskFull()) return DiskFullError("creating " + path);
  bool existed = base_->Exists(path);
  KEEL_ASSIGN_OR_RETURN(auto real, base_->NewWritableFile(path, mode));
  files_[path] = FileState{};
  if (!existed) ops_.push_back(DirOp{OpKind::kCreateFile, path, "", false, "", 0, false, false});
  return std::unique_ptr<WritableFile>(new FaultFile(this, generation_, path, std::move(real)));
}

Result<std::unique_ptr<WritableFile>> FaultInjectionFileSystem::NewAppendableFile(
    const std::string& path, int mode) {
  std::lock_guard<std::mutex> l(mu_);
  KEEL_RETURN_IF_ERROR(CountOp());
  bool existed = base_->Exists(path);
  if (!existed && DiskFull()) return DiskFullError("creating " + path);
  KEEL_ASSIGN_OR_RETURN(auto real, base_->NewAppendableFile(path, mode));
  if (!existed) {
    files_[path] = FileState{};
    ops_.push_back(DirOp{OpKind::kCreateFile, path, "", false, "", 0, false, false});
  } else if (files_.find(path) == files_.end()) {
    // An untracked file is durable as it stands.
    auto size = base_->FileSize(path);
    uint64_t n = size.ok() ? *size : 0;
    files_[path] = FileState{n, n};
  }
  return std::unique_ptr<WritableFile>(new FaultFile(this, generation_, path, std::move(real)));
}

Result<std::string> FaultInjectionFileSystem::ReadFile(const std::string& path,
                                                       uint64_t max_bytes) {
  return base_->ReadFile(path, max_bytes);
}

bool FaultInjectionFileSystem::Exists(const std::string& path) {
  return base_->Exists(path);
}

Result<uint64_t> FaultInjectionFileSystem::FileSize(const std::string& path) {
  return base_->FileSize(path);
}

std::string FaultInjectionFileSystem::DurableContent(const std::string& path) {
  auto content = base_->ReadFile(path, UINT64_MAX);
  if (!content.ok()) return "";
  auto it = files_.find(path);
  if (it != files_.end() && it->second.synced_size < content->size()) {
    content->resize(it->second.synced_size);
  }
  return std::move(*content);
}

Status FaultInjectionFileSystem::Rename(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> l(mu_);
  KEEL_RETURN_IF_ERROR(CountOp());
  DirOp op{OpKind::kRename, to, from, false, "", 0644, false, false};
  if (base_->Exists(to)) {
    op.has_backup = true;
    op.backup = DurableContent(to);
    auto m = base_->Mode(to);
    op.backup_mode = m.ok() ? *m : 0644;
  }
  KEEL_RETURN_IF_ERROR(base_->Rename(from, to));
  files_.erase(to);
  auto it = files_.find(from);
  if (it != files_.end()) {
    files_[to] = it->second;
    files_.erase(from);
  }
  ops_.push_back(std::move(op));
  return OkStatus();
}

Status FaultInjectionFileSystem::SyncDir(const std::string& dir) {
  std::lock_guard<std::mutex> l(mu_);
  KEEL_RETURN_IF_ERROR(CountOp());
  KEEL_RETURN_IF_ERROR(MaybeSyncFault("folder " + dir));
  if (real_syncs_) KEEL_RETURN_IF_ERROR(base_->SyncDir(dir));
  std::vector<DirOp> keep;
  for (DirOp& op : ops_) {
    if (DirName(op.path) == dir) op.dir_synced = true;
    if (op.kind == OpKind::kRename && DirName(op.from) == dir) op.from_dir_synced = true;
    bool durable = op.dir_synced && (op.kind != OpKind::kRename || op.from_dir_synced);
    if (!durable) keep.push_back(std::move(op));
  }
  ops_ = std::move(keep);
  return OkStatus();
}

Status FaultInjectionFileSystem::CreateDirs(const std::string& dir, int mode) {
  std::lock_guard<std::mutex> l(mu_);
  KEEL_RETURN_IF_ERROR(CountOp());
  // The folders this call creates, outermost first.
  std::vector<std::string> created;
  for (std::string d = dir; !d.empty() && d != "/" && d != "." && !base_->Exists(d);
       d = DirName(d)) {
    created.insert(created.begin(), d);
  }
  if (!created.empty() && DiskFull()) return DiskFullError("creating folder " + dir);
  KEEL_RETURN_IF_ERROR(base_->CreateDirs(dir, mode));
  for (const std::string& d : created) {
    ops_.push_back(DirOp{OpKind::kCreateDir, d, "", false, "", 0, false, false});
  }
  return OkStatus();
}

Status FaultInjectionFileSystem::RemoveFile(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  KEEL_RETURN_IF_ERROR(CountOp());
  DirOp op{OpKind::kRemove, path, "", false, "", 0644, false, false};
  if (base_->Exists(path)) {
    op.has_backup = true;
    op.backup = DurableContent(path);
    auto m = base_->Mode(path);
    op.backup_mode = m.ok() ? *m : 0644;
  }
  KEEL_RETURN_IF_ERROR(base_->RemoveFile(path));
  files_.erase(path);
  ops_.push_back(std::move(op));
  return OkStatus();
}

Status FaultInjectionFileSystem::RemoveTree(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  KEEL_RETURN_IF_ERROR(CountOp());
  KEEL_RETURN_IF_ERROR(base_->RemoveTree(path));
  // Not modelled: a removed tree stays removed after a crash.
  std::string prefix = path + "/";
  for (auto it = files_.begin(); it != files_.end();) {
    if (it->first == path || it->first.compare(0, prefix.size(), prefix) == 0) {
      it = files_.erase(it);
    } else {
      ++it;
    }
  }
  return OkStatus();
}

Result<std::vector<std::string>> FaultInjectionFileSystem::ListDir(const std::string& dir) {
  return base_->ListDir(dir);
}

Result<int> FaultInjectionFileSystem::Mode(const std::string& path) {
  return base_->Mode(path);
}

Result<std::unique_ptr<SequentialFile>> FaultInjectionFileSystem::NewSequentialFile(
    const std::string& path) {
  return base_->NewSequentialFile(path);
}

Status FaultInjectionFileSystem::SyncFile(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  KEEL_RETURN_IF_ERROR(CountOp());
  KEEL_RETURN_IF_ERROR(MaybeSyncFault(path));
  if (real_syncs_) KEEL_RETURN_IF_ERROR(base_->SyncFile(path));
  auto it = files_.find(path);
  if (it != files_.end()) it->second.synced_size = it->second.size;
  return OkStatus();
}

Result<std::unique_ptr<FileLock>> FaultInjectionFileSystem::OpenLockFile(const std::string& path,
                                                                         bool create, int mode) {
  std::lock_guard<std::mutex> l(mu_);
  KEEL_RETURN_IF_ERROR(CheckAlive());
  KEEL_ASSIGN_OR_RETURN(auto real, base_->OpenLockFile(path, create, mode));
  auto lock = std::make_unique<FaultLock>(this, generation_, std::move(real));
  locks_.insert(lock.get());
  return std::unique_ptr<FileLock>(std::move(lock));
}

namespace {
// Writes `content` to `path` with `mode`, bypassing the bookkeeping (crash recovery only).
void RestoreFile(FileSystem* base, const std::string& path, const std::string& content, int mode) {
  if (base->Exists(path)) {
    ::chmod(path.c_str(), 0600);
    base->RemoveFile(path).IgnoreError();
  }
  auto f = base->NewWritableFile(path, mode);
  if (!f.ok()) return;
  (*f)->Append(content).IgnoreError();
  (*f)->Close().IgnoreError();
}
}  // namespace

std::vector<std::string> FaultInjectionFileSystem::CrashLocked() {
  std::vector<std::string> log;
  // 1. Unsynced tails of files are lost.
  for (const auto& [path, st] : files_) {
    if (st.size <= st.synced_size || !base_->Exists(path)) continue;
    struct stat sb;
    if (::stat(path.c_str(), &sb) != 0) continue;
    ::chmod(path.c_str(), (sb.st_mode & 07777) | 0200);
    if (::truncate(path.c_str(), static_cast<off_t>(st.synced_size)) == 0) {
      log.push_back("truncated " + path + " to " + std::to_string(st.synced_size));
    }
    ::chmod(path.c_str(), sb.st_mode & 07777);
  }
  // 2. Directory entries never synced are undone, newest first.
  for (auto it = ops_.rbegin(); it != ops_.rend(); ++it) {
    const DirOp& op = *it;
    switch (op.kind) {
      case OpKind::kCreateFile:
        if (base_->Exists(op.path)) {
          base_->RemoveFile(op.path).IgnoreError();
          log.push_back("removed unsynced file " + op.path);
        }
        break;
      case OpKind::kCreateDir:
        if (base_->Exists(op.path)) {
          base_->RemoveTree(op.path).IgnoreError();
          log.push_back("removed unsynced folder " + op.path);
        }
        break;
      case OpKind::kRename:
        if (base_->Exists(op.path)) {
          base_->Rename(op.path, op.from).IgnoreError();
          log.push_back("moved " + op.path + " back to " + op.from);
        }
        if (op.has_backup) {
          RestoreFile(base_, op.path, op.backup, op.backup_mode);
          log.push_back("restored replaced " + op.path);
        }
        break;
      case OpKind::kRemove:
        if (op.has_backup) {
          RestoreFile(base_, op.path, op.backup, op.backup_mode);
          log.push_back("restored removed " + op.path);
        }
        break;
    }
  }
  files_.clear();
  ops_.clear();
  KillProcessLocked();
  return log;
}

void FaultInjectionFileSystem::KillProcessLocked() {
  ++generation_;
  for (FaultLock* l : locks_) l->ReleaseForCrash();
  locks_.clear();
}

std::vector<std::string> FaultInjectionFileSystem::SimulateCrash() {
  std::lock_guard<std::mutex> l(mu_);
  return CrashLocked();
}

void FaultInjectionFileSystem::MarkAllDurable() {
  std::lock_guard<std::mutex> l(mu_);
  files_.clear();
  ops_.clear();
}

void FaultInjectionFileSystem::CrashAfterOps(int64_t n, bool power_loss) {
  std::lock_guard<std::mutex> l(mu_);
  crash_after_ = n;
  crash_power_loss_ = power_loss;
}

bool FaultInjectionFileSystem::crashed() const {
  std::lock_guard<std::mutex> l(mu_);
  return crashed_;
}

void FaultInjectionFileSystem::ResetAfterCrash() {
  std::lock_guard<std::mutex> l(mu_);
  crashed_ = false;
  crash_after_ = -1;
}

void FaultInjectionFileSystem::SetRealSyncs(bool on) {
  std::lock_guard<std::mutex> l(mu_);
  real_syncs_ = on;
}

void FaultInjectionFileSystem::SetDiskFullAfterWrites(int64_t n) {
  std::lock_guard<std::mutex> l(mu_);
  full_after_ = appends_ + n;
}

void FaultInjectionFileSystem::FreeSpace() {
  std::lock_guard<std::mutex> l(mu_);
  full_after_ = -1;
}

void FaultInjectionFileSystem::FailSyncAt(int64_t n, bool sticky) {
  std::lock_guard<std::mutex> l(mu_);
  fail_sync_at_ = n;
  fail_sync_sticky_ = sticky;
  sync_counter_ = 0;
}

void FaultInjectionFileSystem::ClearFaults() {
  std::lock_guard<std::mutex> l(mu_);
  full_after_ = -1;
  fail_sync_at_ = -1;
  fail_sync_sticky_ = false;
}

int64_t FaultInjectionFileSystem::appends() const {
  std::lock_guard<std::mutex> l(mu_);
  return appends_;
}

int64_t FaultInjectionFileSystem::syncs() const {
  std::lock_guard<std::mutex> l(mu_);
  return syncs_;
}

int64_t FaultInjectionFileSystem::mutating_ops() const {
  std::lock_guard<std::mutex> l(mu_);
  return ops_count_;
}

}  // namespace keel::testing
