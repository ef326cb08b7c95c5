// INTERNAL to src/store: the thin SQL layer the store's repositories are written against.
// Nothing above src/store includes this header; callers see typed store APIs only, so a
// PostgreSQL backend can implement Db/Stmt without touching them (docs/architecture.md).
//
// SQL written against this layer uses `?` placeholders and the SQL subset shared by SQLite
// and PostgreSQL where practical.
//
// Errors: SQLite result codes are converted here: SQLITE_FULL -> Unavailable ("disk full"),
// SQLITE_BUSY/LOCKED -> Unavailable, SQLITE_CORRUPT/NOTADB -> DataLoss, SQLITE_IOERR_FSYNC
// and other I/O errors -> DataLoss and the Db is poisoned: every later write fails until the
// process reopens the database (a failed fsync cannot be retried safely). Checkpoints run
// from a WAL hook after a commit; an I/O error there poisons the Db too (the commit itself
// was durable in the WAL, so it is still reported as done). With background_checkpoint
// they run on a thread that owns a second connection; its I/O errors poison the Db the same
// way, and the next Begin() refuses.
// SQLITE_CONSTRAINT -> AlreadyExists (unique) or FailedPrecondition (triggers, checks).
//
// Writers take turns across processes (docs/architecture.md, "Concurrency"): a writer whose
// BEGIN IMMEDIATE finds the lock taken holds a shared flock on "<db>-writers" while it
// retries every few hundred microseconds; a writer about to begin a transaction first checks
// that lock and, if someone is waiting, lets them go first (for at most kMaxYieldMs). So a
// process committing back to back cannot keep another one out for the busy timeout.
// Waiters also count themselves in the lock file's first word (mapped shared), so the
// check costs no system call when nobody waits.
//
// Thread-safety: a Db is used by one thread at a time (the Workspace serialises access);
// its background checkpointer, if any, touches only its own connection and poisoned().
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace keel::store::sql {

// A value's storage class, as stored (STRICT tables make it match the declared type unless
// the file was edited outside SQLite).
enum class ColType { kInteger, kFloat, kText, kBlob, kNull };

class Stmt {
 public:
  Stmt(sqlite3* db, sqlite3_stmt* stmt, std::atomic<bool>* poisoned, uint64_t* failures = nullptr)
      : db_(db), stmt_(stmt), poisoned_(poisoned), failures_(failures) {}
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  // Binding indexes are 1-based, as in SQL.
  Stmt& Bind(int i, int64_t v);
  Stmt& Bind(int i, std::string_view text);
  Stmt& BindBlob(int i, std::string_view bytes);
  Stmt& BindBlob(int i, const void* p, size_t n);
  Stmt& BindNull(int i);
  Stmt& BindDouble(int i, double v);

  // Advances to the next row. Returns true if a row is available, false when done.
  Result<bool> Step();
  // Runs a statement that returns no rows (or ignores them).
  Status Run();
  // Rows inserted, updated or deleted by this statement's last run to completion (the
  // Step that returned false, or a Run of a statement returning no rows); 0 before that.
  // Rows changed by triggers and foreign-key actions are not counted.
  int64_t changes() const { return changes_; }
  // Resets for re-execution with new bindings (bindings are cleared).
  void Reset();

  int64_t Int(int col) const;
  double Double(int col) const;
  std::string Text(int col) const;
  std::string_view TextView(int col) const;  // valid until the next Step/Reset
  std::string_view BlobView(int col) const;  // valid until the next Step/Reset
  bool IsNull(int col) const;
  ColType Type(int col) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  std::atomic<bool>* poisoned_;
  uint64_t* failures_;  // the Db's count of failed statements, or null
  Status bind_error_;
  int64_t changes_ = 0;
};

// Steps a prepared (cached) query to its end, collecting `read(stmt)` of every row; the
// statement is reset in every case, so a cached one can be used again.
template <typename T, typename F>
Result<std::vector<T>> CollectRows(Stmt* st, F read) {
  std::vector<T> out;
  for (;;) {
    auto row = st->Step();
    if (!row.ok()) {
      st->Reset();
      return row.status();
    }
    if (!*row) break;
    out.push_back(read(*st));
  }
  st->Reset();
  return out;
}

// `read(stmt)` of the query's first row, or nothing if it has none; resets the statement.
template <typename T, typename F>
Result<std::optional<T>> FirstRow(Stmt* st, F read) {
  auto row = st->Step();
  std::optional<T> out;
  if (row.ok() && *row) out = read(*st);
  st->Reset();
  if (!row.ok()) return row.status();
  return out;
}

// The steps of an `EXPLAIN QUERY PLAN` statement, one per line (tests pin that lookups use
// their indexes).
inline Result<std::string> QueryPlanText(Stmt* st) {
  auto steps = CollectRows<std::string>(st, [](const Stmt& s) { return s.Text(3); });
  if (!steps.ok()) return steps.status();
  std::string plan;
  for (const auto& step : *steps) plan += step + "\n";
  return plan;
}

// The lock file beside the database ("keel.db-writers") through which writers of several
// processes take turns (docs/architecture.md, "Concurrency").
inline constexpr char kWriterLockSuffix[] = "-writers";

// The longest a writer lets waiting writers go first before it begins anyway (a waiter that
// is stopped, not dead, must not stall everyone; a dead one's flock is released by the OS).
inline constexpr int kMaxYieldMs = 1000;

struct OpenOptions {
  bool create = false;     // create the file if missing
  bool read_only = false;  // open read-only (verify, ledger listing)
  int busy_timeout_ms = 10000;
  // The VFS to use (tests register a fault-injecting one); empty for the default.
  std::string vfs;
  // Copy the WAL into the database file on a background thread with its own connection,
  // so that a writer never waits for the database file's writes and fsyncs. The writer
  // still checkpoints inline when the WAL outgrows the thread (kInlineCheckpointPages),
  // which bounds the WAL's size. An I/O error in the thread poisons this Db as one in
  // the writer would.
  bool background_checkpoint = false;
};

class Db {
 public:
  static Result<std::unique_ptr<Db>> Open(const std::string& path, const OpenOptions& opts);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  Result<std::unique_ptr<Stmt>> Prepare(std::string_view sql);
  // Returns a cached prepared statement (reset, bindings cleared). The pointer stays owned
  // by the Db and is valid until the Db is destroyed.
  Result<Stmt*> Cached(const char* sql);
  Status Exec(std::string_view sql);  // one or more statements, no results
  Result<int64_t> QueryInt(std::string_view sql);

  // How a write transaction's commit reaches the disk.
  //  kSync: COMMIT returns once the commit is durable (SQLite's synchronous=FULL: the WAL
  //    is fsynced inside COMMIT).
  //  kPipelined: COMMIT returns once the commit is complete and visible to every
  //    connection, without waiting for the disk; it is durable once WaitDurable() returns.
  //    A syncer thread of this Db fsyncs the WAL as soon as it can, so the next
  //    transaction's work overlaps the previous one's fsync, and one fsync covers every
  //    commit made while the previous one was running (group commit for a single writer).
  //    Power loss before that fsync loses a suffix of pipelined commits, never anything
  //    before them: the WAL is one sequential log, SQLite drops a torn tail by its frame
  //    checksums, and any later fsync of the WAL (by any connection) covers all frames
  //    written before it. docs/architecture.md, "Durability".
  enum class Durability { kSync, kPipelined };
  // BEGIN IMMEDIATE: takes the write lock up front.
  Status Begin(Durability durability = Durability::kSync);
  Status Commit();
  void Rollback();
  bool in_transaction() const;
  // Returns once every pipelined commit of this Db so far is durable. OkStatus at once if
  // there is none. DataLoss if the WAL could not be fsynced: the Db is then poisoned, and
  // whether those commits survive a power loss is unknown. Not for use inside a
  // transaction. Thread-safe once the first pipelined commit has returned (before it,
  // call it from the writer's thread only).
  Status WaitDurable();
  // Pipelined commits made, and made durable, so far (tests and benchmarks).
  uint64_t pipelined_commits() const;
  uint64_t durable_commits() const;
  // WAL fsyncs the syncer thread has made: commits per fsync shows how many commits shared
  // one (benchmarks).
  uint64_t pipelined_syncs() const;
  // SQLite's data version of the main database (SQLITE_FCNTL_DATA_VERSION): a commit of
  // this connection changes it at once, a commit of any other connection or process when
  // this one next begins a transaction. The same value read after a commit and inside a
  // later transaction means nothing else was committed between. No statement is run: cheap
  // enough to ask in every transaction.
  uint32_t DataVersion();

  // Resets every cached statement left stepped: a connection kept idle in a pool must not
  // hold a read snapshot open (it would see stale data, and keep the WAL from restarting).
  void ResetStatements();

  // A failed fsync or I/O error poisons the connection: writes are refused from then on.
  // Thread-safe (the background checkpointer may set it).
  bool poisoned() const { return poisoned_.load(); }
  const std::string& path() const { return path_; }
  sqlite3* raw() { return db_; }  // for the backup API and tests inside src/store/sqlite/
  // Statements (and Exec calls) that failed on this connection so far. A failed statement
  // is rolled back by SQLite while its transaction goes on (StateCapture relies on this).
  uint64_t statement_failures() const { return statement_failures_; }

  // Converts the last SQLite error (result code `rc`) into a Status with `context`.
  Status Error(int rc, std::string_view context);

 private:
  Db(sqlite3* db, std::string path);
  // SQLite's busy handler: short, bounded sleeps instead of SQLite's growing ones (up to
  // 100 ms, which lose nearly every race against a writer committing back to back), and
  // announces the wait to other writers while in Begin().
  static int BusyHandler(void* self, int count);
  // Before BEGIN IMMEDIATE: lets writers that announced a wait go first.
  void YieldToWaiters();
  void StopWaiting();
  // The lock file's first bytes, mapped shared, count the waiters holding its flock, so
  // that the common check (nobody waiting) makes no system call.
  static constexpr size_t kWaiterMapBytes = 4096;
  void MapWaiterCount();
  void AddWaiter(int delta);
  // The WAL hook: past kCheckpointPages pages a PASSIVE checkpoint (on the background
  // thread if there is one), poisoning on I/O error (SQLite's default hook ignores
  // checkpoint errors).
  static int WalHook(void* self, sqlite3* db, const char* name, int pages);
  sqlite3* db_;
  std::string path_;
  std::atomic<bool> poisoned_{false};
  uint64_t statement_failures_ = 0;
  struct Cache;
  std::unique_ptr<Cache> cache_;
  class Checkpointer;
  std::unique_ptr<Checkpointer> checkpointer_;  // null unless background_checkpoint
  class Syncer;
  std::unique_ptr<Syncer> syncer_;   // started by the first pipelined commit
  std::string vfs_;                  // the VFS this connection was opened with ("" default)
  bool synchronous_normal_ = false;  // PRAGMA synchronous is NORMAL (set for kPipelined)
  bool pipelined_txn_ = false;       // the open transaction commits pipelined
  bool commit_wrote_wal_ = false;    // set by WalHook during COMMIT
  int busy_timeout_ms_ = 0;
  int64_t busy_since_us_ = 0;  // steady clock, when the current wait began
  int writers_fd_ = -1;        // "<db>-writers", -1 if read-only or it cannot be opened
  bool in_begin_ = false;
  bool waiting_ = false;         // holding the shared lock on writers_fd_
  uint32_t* waiters_ = nullptr;  // mapped from writers_fd_; null if it could not be mapped
};

// fdatasyncs `db_path`-wal if it exists: what any process committed to the WAL so far is
// then durable, pipelined commits included (Workspace::SyncReads). DataLoss if the sync
// fails; an absent WAL (nothing committed since the last checkpoint removed it) is OK.
Status SyncWal(const std::string& db_path);

}  // namespace keel::store::sql
