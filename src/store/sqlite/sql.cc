#include "store/sqlite/sql.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "core/fs.h"
#include "store/sqlite/wal_vfs.h"

namespace keel::store::sql {

struct Db::Cache {
  std::unordered_map<const char*, std::unique_ptr<Stmt>> stmts;
};

namespace {
// Maps SQLite's result codes to keel's, poisoning the connection on I/O failure.
Status Convert(sqlite3* db, int rc, std::string_view context, std::atomic<bool>* poisoned) {
  std::string msg(context);
  msg += ": ";
  msg += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  int primary = rc & 0xff;
  switch (primary) {
    case SQLITE_FULL:
      return Unavailable(msg + " (disk full: free space, then retry; nothing was written)");
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Unavailable(msg + " (the database is locked by another keel process)");
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return DataLoss(msg +
                      " (the database file is damaged; run `keel verify`, restore a "
                      "snapshot with `keel restore`)");
    case SQLITE_IOERR:
      if (poisoned) *poisoned = true;
      if (rc == SQLITE_IOERR_FSYNC || rc == SQLITE_IOERR_DIR_FSYNC) {
        return DataLoss(msg +
                        " (fsync failed: keel stops writing; restart keel to recover "
                        "from the write-ahead log)");
      }
      return DataLoss(msg + " (I/O error: keel stops writing)");
    case SQLITE_CANTOPEN:
      return NotFound(msg);
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      return PermissionDenied(msg);
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        return AlreadyExists(msg);
      }
      return FailedPrecondition(msg);
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
      return InvalidArgument(msg);
    case SQLITE_INTERRUPT:
      return Cancelled(msg);
    default:
      return Internal(msg);
  }
}
}  // namespace

Stmt::~Stmt() {
  sqlite3_finalize(stmt_);
}

Stmt& Stmt::Bind(int i, int64_t v) {
  int rc = sqlite3_bind_int64(stmt_, i, v);
  if (rc != SQLITE_OK && bind_error_.ok()) bind_error_ = Convert(db_, rc, "bind", nullptr);
  return *this;
}

Stmt& Stmt::Bind(int i, std::string_view text) {
  int rc =
      sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK && bind_error_.ok()) bind_error_ = Convert(db_, rc, "bind", nullptr);
  return *this;
}

Stmt& Stmt::BindBlob(int i, std::string_view bytes) {
  return BindBlob(i, bytes.data(), bytes.size());
}

Stmt& Stmt::BindBlob(int i, const void* p, size_t n) {
  int rc = sqlite3_bind_blob(stmt_, i, n == 0 ? "" : p, static_cast<int>(n), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK && bind_error_.ok()) bind_error_ = Convert(db_, rc, "bind", nullptr);
  return *this;
}

Stmt& Stmt::BindNull(int i) {
  sqlite3_bind_null(stmt_, i);
  return *this;
}

Stmt& Stmt::BindDouble(int i, double v) {
  int rc = sqlite3_bind_double(stmt_, i, v);
  if (rc != SQLITE_OK && bind_error_.ok()) bind_error_ = Convert(db_, rc, "bind", nullptr);
  return *this;
}

Result<bool> Stmt::Step() {
  if (!bind_error_.ok()) return bind_error_;
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) {
    changes_ = sqlite3_stmt_readonly(stmt_) ? 0 : sqlite3_changes64(db_);
    return false;
  }
  // sqlite3_step returns the extended code when extended codes are enabled.
  if (failures_ != nullptr) ++*failures_;
  Status s = Convert(db_, rc, "sql", poisoned_);
  sqlite3_reset(stmt_);
  return s;
}

Status Stmt::Run() {
  auto r = Step();
  if (!r.ok()) return r.status();
  return OkStatus();
}

void Stmt::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_error_ = OkStatus();
}

int64_t Stmt::Int(int col) const {
  return sqlite3_column_int64(stmt_, col);
}

double Stmt::Double(int col) const {
  return sqlite3_column_double(stmt_, col);
}

std::string Stmt::Text(int col) const {
  return std::string(TextView(col));
}

std::string_view Stmt::TextView(int col) const {
  const auto* p = sqlite3_column_text(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  if (p == nullptr) return {};
  return std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
}

std::string_view Stmt::BlobView(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  if (p == nullptr) return {};
  return std::string_view(static_cast<const char*>(p), static_cast<size_t>(n));
}

bool Stmt::IsNull(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

ColType Stmt::Type(int col) const {
  switch (sqlite3_column_type(stmt_, col)) {
    case SQLITE_INTEGER:
      return ColType::kInteger;
    case SQLITE_FLOAT:
      return ColType::kFloat;
    case SQLITE_TEXT:
      return ColType::kText;
    case SQLITE_BLOB:
      return ColType::kBlob;
    default:
      return ColType::kNull;
  }
}

namespace {
// Past this many WAL pages a checkpoint is due (SQLite's own default).
constexpr int kCheckpointPages = 1000;
// Past this many the writer checkpoints inline even with a background thread: a writer
// that outpaces the thread would otherwise grow the WAL without bound (about 64 MiB here).
constexpr int kInlineCheckpointPages = 16000;
}  // namespace

// One thread, one connection of its own, PASSIVE checkpoints on request. PASSIVE never
// waits for readers or the writer: it copies what it can and leaves the rest.
//
// SQLite restarts the WAL from its beginning (overwriting in place, cheaper to fsync than
// appending) only when a write transaction begins after every frame was copied back. A
// thread that copies while the writer keeps committing never gets there on its own, and
// asking it again after every commit doubles the fsyncs. So the thread takes the bulk of
// each WAL generation and the writer, once the thread is idle and less than
// kCheckpointPages frames remain, copies that remainder inline (WalHook).
class Db::Checkpointer {
 public:
  Checkpointer(std::string path, std::string vfs, std::atomic<bool>* poisoned)
      : path_(std::move(path)), vfs_(std::move(vfs)), poisoned_(poisoned) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~Checkpointer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
    if (db_ != nullptr) sqlite3_close(db_);
  }
  // Writer thread. Returns false when the writer should copy the rest itself.
  bool Offer(int pages) {
    if (pages < last_pages_) copied_ = 0;  // the WAL restarted: a new generation
    last_pages_ = pages;
    if (busy_.load()) return true;  // already copying; the writer goes on
    if (pages - copied_.load() < kCheckpointPages) return false;
    busy_ = true;
    {
      std::lock_guard<std::mutex> lock(mu_);
      requested_ = true;
    }
    cv_.notify_one();
    return true;
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return requested_ || stop_; });
      if (stop_) return;
      requested_ = false;
      lock.unlock();
      Checkpoint();
      busy_ = false;
      lock.lock();
    }
  }
  void Checkpoint() {
    if (db_ == nullptr) {
      int rc = sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                               vfs_.empty() ? nullptr : vfs_.c_str());
      if (rc != SQLITE_OK) {
        if ((rc & 0xff) == SQLITE_IOERR) *poisoned_ = true;
        sqlite3_close(db_);
        db_ = nullptr;
        return;  // the writer copies inline instead (Offer sees nothing copied)
      }
      sqlite3_extended_result_codes(db_, 1);
      // The checkpoint's fsyncs follow this connection's setting, not the writer's.
      sqlite3_exec(db_, "PRAGMA synchronous = FULL", nullptr, nullptr, nullptr);
    }
    int log = 0, copied = 0;
    int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
    if ((rc & 0xff) == SQLITE_IOERR) *poisoned_ = true;
    if (rc == SQLITE_OK && copied > 0) copied_ = copied;
  }

  const std::string path_, vfs_;
  std::atomic<bool>* const poisoned_;
  sqlite3* db_ = nullptr;  // used by the thread only
  std::atomic<bool> busy_{false};
  std::atomic<int> copied_{0};  // frames of the current WAL generation copied back
  int last_pages_ = 0;          // writer thread only
  std::mutex mu_;
  std::condition_variable cv_;
  bool requested_ = false, stop_ = false;
  std::thread thread_;
};

// Pipelined commits allowed to wait for the disk at once (Db::Begin).
constexpr uint64_t kMaxUndurable = 8;

// Makes pipelined commits durable: one thread that fsyncs the WAL whenever commits were
// made since its last fsync. It syncs through a file of its own, opened on the WAL by the
// connection's VFS (so fault-injecting tests see and can fail it): the connection's own
// file object is SQLite's, used by the writer thread, and must not be touched here. A
// second file object on the WAL is safe to fsync from another thread: it is only read by
// the kernel, and an fsync of any descriptor of a file writes back all of its dirty pages,
// whoever wrote them. The WAL file outlives the connection's use of it: SQLite deletes it
// only at the last connection's close, and this Db's connection is open until the Syncer
// is gone.
class Db::Syncer {
 public:
  Syncer(std::string wal_name_owner, const char* wal_name, std::string vfs,
         std::atomic<bool>* poisoned)
      : wal_display_(std::move(wal_name_owner)),
        wal_name_(wal_name),
        vfs_(std::move(vfs)),
        poisoned_(poisoned) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~Syncer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;  // the loop syncs what is pending before it ends
    }
    cv_.notify_all();
    thread_.join();
    if (file_ != nullptr) {
      if (file_->pMethods != nullptr) file_->pMethods->xClose(file_);
      std::free(file_);
    }
  }
  // Writer thread, right after a pipelined COMMIT.
  void Request() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++requested_;
    }
    cv_.notify_all();
  }
  // Writer thread: every commit up to `n` became durable by the writer's own fsync.
  void MarkDurable(uint64_t n) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (n <= synced_ || !error_.empty()) return;
      synced_ = n;
    }
    cv_.notify_all();
  }
  Status WaitFor(uint64_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return synced_ >= n || !error_.empty(); });
    if (synced_ >= n) return OkStatus();
    return DataLoss(error_);
  }
  uint64_t requested() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requested_;
  }
  uint64_t synced() const {
    std::lock_guard<std::mutex> lock(mu_);
    return synced_;
  }
  uint64_t syncs() const {
    std::lock_guard<std::mutex> lock(mu_);
    return syncs_;
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return requested_ > synced_ || stop_; });
      if (requested_ <= synced_ || !error_.empty()) {
        if (stop_) return;
        if (!error_.empty()) cv_.wait(lock, [this] { return stop_; });
        continue;
      }
      uint64_t target = requested_;  // every commit counted so far was written before this
      lock.unlock();
      std::string err = SyncOnce();
      lock.lock();
      if (err.empty()) {
        ++syncs_;
        synced_ = std::max(synced_, target);
      } else {
        error_ = std::move(err);
        *poisoned_ = true;  // the writer's next Begin() refuses
      }
      cv_.notify_all();
    }
  }
  // Empty on success, else what failed.
  std::string SyncOnce() {
    if (file_ == nullptr) {
      sqlite3_vfs* vfs = sqlite3_vfs_find(vfs_.empty() ? nullptr : vfs_.c_str());
      if (vfs == nullptr) return "no SQLite VFS to open " + wal_display_ + " with";
      file_ = static_cast<sqlite3_file*>(std::calloc(1, static_cast<size_t>(vfs->szOsFile)));
      if (file_ == nullptr) return "out of memory opening " + wal_display_;
      int out = 0;
      int rc = vfs->xOpen(vfs, wal_name_, file_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_WAL, &out);
      if (rc != SQLITE_OK) {
        return "cannot open " + wal_display_ + " to make pipelined commits durable (" +
               sqlite3_errstr(rc) + "); keel refuses further writes until restarted";
      }
    }
    int rc = file_->pMethods->xSync(file_, SQLITE_SYNC_NORMAL);
    if (rc != SQLITE_OK) {
      return "fsync of " + wal_display_ + " failed (" + std::string(sqlite3_errstr(rc)) +
             "): commits made since the last good fsync may not survive a power loss; keel "
             "refuses further writes until restarted";
    }
    return "";
  }

  const std::string wal_display_;
  const char* const wal_name_;  // SQLite's own WAL filename object (sqlite3_filename_wal)
  const std::string vfs_;
  std::atomic<bool>* const poisoned_;
  sqlite3_file* file_ = nullptr;  // the thread's only
  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t requested_ = 0, synced_ = 0, syncs_ = 0;
  std::string error_;  // set once, by the first failed sync
  bool stop_ = false;
  std::thread thread_;
};

namespace {

// Process-wide settings, made before SQLite initializes (a later call is refused by SQLite
// and changes nothing). Memory statistics are off: keel reads none, and keeping them takes
// a global mutex on every allocation SQLite makes, which showed in every write.
void ConfigureSqliteOnce() {
  static std::once_flag once;
  std::call_once(once, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
}

}  // namespace

Result<std::unique_ptr<Db>> Db::Open(const std::string& path, const OpenOptions& opts) {
  ConfigureSqliteOnce();
  sqlite3* db = nullptr;
  int flags = SQLITE_OPEN_NOMUTEX;
  flags |= opts.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (opts.create) flags |= SQLITE_OPEN_CREATE;
  if (opts.create && !opts.read_only && !path.empty() && path[0] != ':') {
    // SQLite would create the file 0644 & ~umask. An empty file is an empty database, so
    // create it owner-only first; SQLite gives the -wal and -shm files the database
    // file's bits (docs/architecture.md, "Permissions").
    int fd =
        ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, kPrivateFileMode);
    if (fd >= 0) {
      Status m = EnsureFileMode(fd, kPrivateFileMode, path);
      ::close(fd);
      if (!m.ok()) return m;
    } else if (errno != EEXIST) {
      return ErrnoStatus(errno, "creating database " + path);
    }
  }
  const char* vfs = opts.vfs.empty() ? WalVfsName() : opts.vfs.c_str();
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, vfs);
  if (rc != SQLITE_OK) {
    Status s = Convert(db, rc, "opening database " + path, nullptr);
    sqlite3_close(db);
    return s;
  }
  sqlite3_extended_result_codes(db, 1);
  std::unique_ptr<Db> out(new Db(db, path));
  out->vfs_ = vfs ? vfs : "";
  out->busy_timeout_ms_ = opts.busy_timeout_ms;
  sqlite3_busy_handler(db, &Db::BusyHandler, out.get());
  out->cache_ = std::make_unique<Cache>();
  if (!opts.read_only) {
    // Without it (a read-only folder) writers still work, only without taking turns.
    const std::string lock_path = path + kWriterLockSuffix;
    out->writers_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, kPrivateFileMode);
    // Owner-only like every file of a workspace. A lock file of another owner that this
    // process may not chmod still works as a lock: best effort.
    if (out->writers_fd_ >= 0) {
      EnsureFileMode(out->writers_fd_, kPrivateFileMode, lock_path).IgnoreError();
    }
    out->MapWaiterCount();
    sqlite3_wal_hook(db, &Db::WalHook, out.get());
    if (opts.background_checkpoint) {
      out->checkpointer_ = std::make_unique<Checkpointer>(path, vfs ? vfs : "", &out->poisoned_);
    }
  }
  return out;
}

int Db::WalHook(void* self, sqlite3* db, const char* name, int pages) {
  Db* d = static_cast<Db*>(self);
  d->commit_wrote_wal_ = true;  // SQLite calls this only after a commit that wrote frames
  if (pages < kCheckpointPages) return SQLITE_OK;
  if (d->checkpointer_ != nullptr && pages < kInlineCheckpointPages &&
      d->checkpointer_->Offer(pages)) {
    return SQLITE_OK;
  }
  int rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  // The commit that triggered this is already durable in the WAL: report it as done, but a
  // failed write or fsync of the database file means the disk can no longer be trusted.
  if ((rc & 0xff) == SQLITE_IOERR) d->poisoned_ = true;
  return SQLITE_OK;
}

Db::Db(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

Db::~Db() {
  syncer_.reset();        // pending pipelined commits are synced first
  checkpointer_.reset();  // its thread stops before the connections close
  cache_.reset();         // finalize statements before closing
  sqlite3_close(db_);
  if (waiters_ != nullptr) ::munmap(waiters_, kWaiterMapBytes);
  if (writers_fd_ >= 0) ::close(writers_fd_);  // releases any flock
}

void Db::MapWaiterCount() {
  if (writers_fd_ < 0) return;
  // Grow a new (empty) lock file to hold the counter. Several processes may race here;
  // ftruncate to the same size is harmless, and a file that cannot grow or be mapped
  // (some network file systems) only means every Begin() checks the flock instead.
  struct stat st {};
  if (::fstat(writers_fd_, &st) != 0) return;
  if (st.st_size < static_cast<off_t>(kWaiterMapBytes) &&
      ::ftruncate(writers_fd_, kWaiterMapBytes) != 0) {
    return;
  }
  void* p = ::mmap(nullptr, kWaiterMapBytes, PROT_READ | PROT_WRITE, MAP_SHARED, writers_fd_, 0);
  if (p != MAP_FAILED) waiters_ = static_cast<uint32_t*>(p);
}

void Db::AddWaiter(int delta) {
  if (waiters_ != nullptr)
    std::atomic_ref<uint32_t>(*waiters_).fetch_add(static_cast<uint32_t>(delta));
}

namespace {
int64_t SteadyMicros() {
  // Real time on purpose: this waits for another process, as SQLite's own timeout does.
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
// 100 us, 200 us, ... up to 1 ms between attempts: a turn handed over by YieldToWaiters is
// taken within about a millisecond, at the cost of a few hundred lock probes per second.
constexpr int kMaxBusySleepUs = 1000;
}  // namespace

int Db::BusyHandler(void* self, int count) {
  Db* d = static_cast<Db*>(self);
  int64_t now = SteadyMicros();
  if (count == 0) d->busy_since_us_ = now;
  if (now - d->busy_since_us_ >= int64_t{d->busy_timeout_ms_} * 1000) return 0;  // SQLITE_BUSY
  // Announce the wait (shared: several writers may wait at once). Non-blocking: a writer
  // checking for waiters holds the lock exclusively for a moment; the next attempt retries.
  if (d->in_begin_ && !d->waiting_ && d->writers_fd_ >= 0 &&
      ::flock(d->writers_fd_, LOCK_SH | LOCK_NB) == 0) {
    d->waiting_ = true;
    d->AddWaiter(1);  // after taking the flock: see YieldToWaiters
  }
  ::usleep(static_cast<useconds_t>(std::min(kMaxBusySleepUs, 100 << std::min(count, 4))));
  return 1;
}

void Db::YieldToWaiters() {
  if (writers_fd_ < 0) return;
  // The common case, nobody waiting: one read of shared memory. A waiter counts itself
  // only while it holds the flock, so a count of zero means no announced waiter; one that
  // is announcing itself right now is seen at the next Begin(), as it would be had this
  // check come a moment earlier.
  if (waiters_ != nullptr && std::atomic_ref<uint32_t>(*waiters_).load() == 0) return;
  if (::flock(writers_fd_, LOCK_EX | LOCK_NB) == 0) {
    // Nobody holds the flock, so any count left is from waiters that died (killed while
    // waiting): no live waiter counts itself without holding the flock shared.
    if (waiters_ != nullptr) std::atomic_ref<uint32_t>(*waiters_).store(0);
    ::flock(writers_fd_, LOCK_UN);
    return;
  }
  // Someone holds it shared: a writer waiting in its busy handler. It finds the write lock
  // free now (this Db is between transactions) and releases its flock once it has begun.
  int64_t deadline = SteadyMicros() + int64_t{kMaxYieldMs} * 1000;
  int sleep_us = 50;
  while (SteadyMicros() < deadline) {
    ::usleep(static_cast<useconds_t>(sleep_us));
    sleep_us = std::min(sleep_us * 2, kMaxBusySleepUs);
    if (::flock(writers_fd_, LOCK_EX | LOCK_NB) == 0) {
      if (waiters_ != nullptr) std::atomic_ref<uint32_t>(*waiters_).store(0);
      ::flock(writers_fd_, LOCK_UN);
      return;
    }
  }
}

void Db::StopWaiting() {
  if (waiting_) {
    AddWaiter(-1);  // before releasing the flock: see YieldToWaiters
    ::flock(writers_fd_, LOCK_UN);
    waiting_ = false;
  }
}

Result<std::unique_ptr<Stmt>> Db::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return Error(rc, "preparing SQL");
  return std::make_unique<Stmt>(db_, stmt, &poisoned_, &statement_failures_);
}

void Db::ResetStatements() {
  for (auto& [sql, stmt] : cache_->stmts) stmt->Reset();
}

Status SyncWal(const std::string& db_path) {
  std::string wal = db_path + "-wal";
  int fd = ::open(wal.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return OkStatus();
    return Unavailable("opening " + wal + " to sync it: " + std::strerror(errno));
  }
  int rc = ::fdatasync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return DataLoss("fdatasync of " + wal + " failed: " + std::strerror(err));
  return OkStatus();
}

Result<Stmt*> Db::Cached(const char* sql) {
  auto it = cache_->stmts.find(sql);
  if (it != cache_->stmts.end()) {
    it->second->Reset();
    return it->second.get();
  }
  KEEL_ASSIGN_OR_RETURN(auto stmt, Prepare(sql));
  Stmt* p = stmt.get();
  cache_->stmts.emplace(sql, std::move(stmt));
  return p;
}

Status Db::Exec(std::string_view sql) {
  std::string s(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) {
    ++statement_failures_;
    return Error(rc, "sql");
  }
  return OkStatus();
}

Result<int64_t> Db::QueryInt(std::string_view sql) {
  KEEL_ASSIGN_OR_RETURN(auto stmt, Prepare(sql));
  KEEL_ASSIGN_OR_RETURN(bool row, stmt->Step());
  if (!row) return NotFound("query returned no row");
  return stmt->Int(0);
}

Status Db::Begin(Durability durability) {
  if (poisoned_) {
    return DataLoss("an earlier write to " + path_ +
                    " failed at the disk; keel refuses further writes until restarted");
  }
  // SQLite refuses to change the setting inside a transaction; switched only when the
  // kind of commit changes, so a run of pipelined (or of durable) commits pays nothing.
  bool normal = durability == Durability::kPipelined;
  // Back-pressure: at most kMaxUndurable pipelined commits wait for the disk. Without it a
  // writer faster than the disk runs ahead, each fsync carries more frames and takes
  // longer, and the time until a commit is durable grows to milliseconds; with it the
  // writer waits (no lock held) while one fsync covers a few commits.
  if (normal && syncer_ != nullptr && syncer_->requested() >= kMaxUndurable) {
    KEEL_RETURN_IF_ERROR(syncer_->WaitFor(syncer_->requested() - kMaxUndurable + 1));
  }
  if (normal != synchronous_normal_) {
    KEEL_ASSIGN_OR_RETURN(Stmt * pragma, Cached(normal ? "PRAGMA synchronous = NORMAL"
                                                       : "PRAGMA synchronous = FULL"));
    KEEL_RETURN_IF_ERROR(pragma->Run());
    synchronous_normal_ = normal;
  }
  pipelined_txn_ = normal;
  // Prepared once: parsing BEGIN and COMMIT on every transaction is measurable next to a
  // single-entry append.
  KEEL_ASSIGN_OR_RETURN(Stmt * begin, Cached("BEGIN IMMEDIATE"));
  YieldToWaiters();
  in_begin_ = true;
  Status s = begin->Run();
  in_begin_ = false;
  StopWaiting();  // begun (or given up): no longer waiting
  return s;
}

Status Db::Commit() {
  auto commit = Cached("COMMIT");
  uint64_t before = syncer_ ? syncer_->requested() : 0;
  commit_wrote_wal_ = false;
  Status s = commit.ok() ? (*commit)->Run() : commit.status();
  if (!s.ok() && in_transaction()) Rollback();
  // A durable commit that wrote frames fsynced the WAL inside COMMIT, after every earlier
  // pipelined frame was written: those are durable now too (a commit that wrote nothing
  // synced nothing).
  if (s.ok() && !pipelined_txn_ && commit_wrote_wal_ && syncer_ != nullptr) {
    syncer_->MarkDurable(before);
  }
  if (s.ok() && pipelined_txn_) {
    if (syncer_ == nullptr) {
      const char* wal = sqlite3_filename_wal(sqlite3_db_filename(db_, "main"));
      syncer_ = std::make_unique<Syncer>(path_ + "-wal", wal, vfs_, &poisoned_);
    }
    syncer_->Request();
  }
  pipelined_txn_ = false;
  return s;
}

Status Db::WaitDurable() {
  if (syncer_ == nullptr) return OkStatus();
  return syncer_->WaitFor(syncer_->requested());
}

uint64_t Db::pipelined_commits() const {
  return syncer_ ? syncer_->requested() : 0;
}

uint64_t Db::pipelined_syncs() const {
  return syncer_ ? syncer_->syncs() : 0;
}

uint64_t Db::durable_commits() const {
  return syncer_ ? syncer_->synced() : 0;
}

void Db::Rollback() {
  pipelined_txn_ = false;
  if (sqlite3_get_autocommit(db_) == 0) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

uint32_t Db::DataVersion() {
  unsigned int v = 0;
  if (sqlite3_file_control(db_, "main", SQLITE_FCNTL_DATA_VERSION, &v) != SQLITE_OK) return 0;
  return v;
}

bool Db::in_transaction() const {
  return sqlite3_get_autocommit(db_) == 0;
}

Status Db::Error(int rc, std::string_view context) {
  return Convert(db_, rc, context, &poisoned_);
}

}  // namespace keel::store::sql
