// Workspace: one business's folder — keel.yaml, keel.db (SQLite, WAL, synchronous=FULL),
// artifacts/, snapshots/, keys/, workflows/, checkpoints.log — and the only way to change
// its state. Everything keel creates in it is owner-only (folders 0700, files 0600).
//
// Every change happens inside Workspace::Write, one database transaction in which the
// change and its ledger entries (Txn::Append) commit together or not at all.
//
// Ownership: the caller owns the Workspace; it owns its database connection. The Env's
// pointees must outlive it.
// Thread-safety: all public methods are safe to call from several threads. Writes are
// serialised on the one write connection. Reads (the store's query functions, QueryLedger,
// ScanLedger) made outside a write transaction use read-only connections of a pool, one per
// reading thread at a time (store::Reader): a WAL reader sees the last commit and never
// waits behind the writer's transaction, nor the writer behind it. A read made inside a
// Write, on the writing thread, sees that transaction. Several processes may open one
// workspace: SQLite's locking serialises writers and they take turns (docs/architecture.md,
// "Concurrency"), so a process committing back to back does not keep the others out; a
// writer waits up to 10 s for the lock, then gets Unavailable.
//
// What a read sees may be committed but not yet durable (a pipelined commit of this or of
// another process). Whatever is shown to a person or a client calls SyncReads() first, so
// that nothing shown can be undone by a power loss (docs/architecture.md, "Durability").
// Errors: NotFound (no workspace), PermissionDenied, FailedPrecondition (newer schema),
// DataLoss (corrupt file, failed fsync: the workspace refuses writes until reopened),
// Unavailable (disk full, locked), InvalidArgument (bad keel.yaml, bad entry).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/env.h"
#include "core/status.h"
#include "store/ledger.h"

namespace keel::store {

namespace sql {
class Db;
class StateCapture;
}  // namespace sql
struct CheckpointState;  // store/checkpoint.h

// The settings this layer reads from keel.yaml. Upper layers read their own sections from
// Workspace::config_text() at wiring time.
struct WorkspaceConfig {
  std::string id;                // "ws_…", fixed at init; named in signed checkpoints
  std::string name;              // shown to the operator
  std::string mode = "sandbox";  // sandbox | live (adapters send nothing in sandbox)
  int64_t checkpoint_every = 1000;
  int snapshot_keep = 7;
};

struct InitOptions {
  std::string name = "My business";
  // Init refuses a folder inside another workspace (FailedPrecondition) unless this is set.
  bool allow_nested = false;
};

// The folder of a workspace that holds workflow definitions (<name>.yaml), made by Init.
inline constexpr char kWorkflowsDir[] = "workflows";

// The database page size of a new workspace (workspace.cc explains the choice).
inline constexpr int kPageSize = 4096;

struct WorkspaceOpenOptions {
  bool read_only = false;  // for verify and listings; Write fails with FailedPrecondition
  std::string sqlite_vfs;  // tests: a fault-injecting VFS name
  // Copy the WAL into the database file on a background thread (sql.h OpenOptions), so
  // that commits never wait for it. Tests that count fsyncs one by one turn it off.
  bool background_checkpoint = true;
  // keel.yaml's text as the application layer read it (app::Runtime); when unset, Open
  // reads <dir>/keel.yaml itself (tests and tools that open a workspace directly).
  std::optional<std::string> config_text;
};

class Workspace;

// A write transaction. Obtained only inside Workspace::Write; invalid after it returns.
class Txn {
 public:
  // Appends one ledger entry; returns it with seq and time filled in. Entries are written
  // to the ledger table one behind: when the next entry is appended, when the ledger is
  // read inside this transaction, or at commit, so that the last entry of the transaction
  // carries the images of every state row the transaction changed (store/state.h; a read
  // of the ledger inside the transaction puts those changed so far on the entry it
  // writes). Its state, prev_hash and hash are known only then: read it back after the
  // commit for them.
  // InvalidArgument: empty actor/kind, payload not a JSON object or over kMaxPayloadBytes,
  // an artifact reference that is not 64 lowercase hex, text containing NUL.
  Result<LedgerEntry> Append(const NewEntry& entry);
  // INTERNAL to src/store: appends an entry that carries the images `state` (a StateBuilder
  // blob) written by the caller rather than captured (store/state.h): the state baseline
  // of a migrated workspace, the rows a repair could not restore. Rows this transaction
  // changed itself go on a later entry.
  Result<LedgerEntry> AppendImages(const NewEntry& entry, std::string state);
  // Time of this transaction (one Clock reading, shared by all its entries).
  int64_t now_us() const { return now_us_; }
  Workspace& workspace() { return *ws_; }
  // INTERNAL to src/store.
  sql::Db* db();
  // Runs `fn` after the transaction commits (not on rollback).
  void OnCommit(std::function<void()> fn) { on_commit_.push_back(std::move(fn)); }

 private:
  friend class Workspace;
  Txn(Workspace* ws, int64_t now_us) : ws_(ws), now_us_(now_us) {}
  // Writes the entry Append holds back; `with_images`: with the images of the rows changed
  // since the previous entry with images. No-op when none is held.
  Status Flush(bool with_images);
  Workspace* ws_;
  std::optional<LedgerEntry> pending_;
  int64_t now_us_;
  bool have_tail_ = false;
  int64_t appended_ = 0;  // entries appended by this transaction
  int64_t tail_seq_ = 0;
  Digest tail_hash_{};
  std::string scratch_;
  std::vector<std::function<void()>> on_commit_;
};

class Workspace {
 public:
  // Creates a workspace in `dir` (created if missing; must be empty of keel files): keel.yaml,
  // keel.db, artifacts/, snapshots/, keys/ and workflows/, owner-only whatever the umask
  // (folders 0700, files 0600; `dir` itself only when Init creates it).
  // AlreadyExists if `dir` already holds a workspace. FailedPrecondition, naming the
  // enclosing workspace, if `dir` lies inside another workspace (a parent folder holds
  // keel.yaml) and !opts.allow_nested.
  static Status Init(const std::string& dir, const InitOptions& opts, const Env& env);

  static Result<std::unique_ptr<Workspace>> Open(const std::string& dir,
                                                 const WorkspaceOpenOptions& opts, const Env& env);

  // Finds the workspace folder: `flag` if non-empty, else `env_value` (the face passes
  // $KEEL_WORKSPACE; the store reads no environment) if non-empty, else `cwd` and its
  // parents (the first holding keel.yaml). NotFound with a hint otherwise.
  static Result<std::string> Find(const std::string& flag, const std::string& env_value,
                                  const std::string& cwd);

  ~Workspace();

  // Runs `fn` in one transaction. If `fn` returns an error, nothing it did is kept.
  // Returns once the transaction is durable (it survives a power loss).
  // Not reentrant: `fn` must not call Write.
  Status Write(const std::function<Status(Txn&)>& fn);

  // Like Write, but returns once the transaction is committed and visible, before it is
  // durable; a thread of this Workspace fsyncs it right away, so the caller's next
  // transaction overlaps that fsync, and commits made meanwhile share the next one
  // (sql::Db::Durability::kPipelined). A power loss before that fsync loses a suffix of
  // pipelined commits, never an earlier one. For work whose result nobody outside this
  // process has been told of yet: the flow engine's rounds that start no I/O. Call
  // WaitDurable() before anything leaves the process on the strength of such a commit
  // (an external effect, a reply, an exit status, a signed checkpoint).
  Status WritePipelined(const std::function<Status(Txn&)>& fn);
  // Returns once every commit of this Workspace is durable: at once if none is pending.
  // DataLoss if the fsync failed; writes are then stopped, as after any failed fsync.
  // Thread-safe.
  Status WaitDurable();
  // Pipelined commits made, and made durable, so far (tests and benchmarks: an effect
  // must never start while the two differ). Thread-safe once a pipelined commit was made.
  uint64_t pipelined_commits();
  uint64_t durable_commits();
  uint64_t pipelined_syncs();  // fsyncs that made them durable (sql::Db::pipelined_syncs)

  // Makes durable everything a read may have seen, before it is shown to a person or a
  // client: this Workspace's pipelined commits (WaitDurable) and the commits other
  // processes made visible before their fsync (the WAL file is synced). Costs one fdatasync
  // (well under a millisecond on a quiet disk). DataLoss if a sync fails. Thread-safe.
  Status SyncReads();

  // Ledger reads.
  Result<std::vector<LedgerEntry>> QueryLedger(const LedgerQuery& q);
  // SQLite's plan for QueryLedger(q), one step per line ("SEARCH ledger USING INDEX ...").
  // Tests pin that filters by subject and run use their indexes.
  Result<std::string> ExplainLedgerQuery(const LedgerQuery& q);
  // Calls `fn` for each entry with seq >= from_seq in order; stops at the first error.
  Status ScanLedger(int64_t from_seq, const std::function<Status(const LedgerEntry&)>& fn);
  Result<int64_t> LedgerSize();

  const std::string& dir() const { return dir_; }
  std::string db_path() const;
  std::string artifacts_dir() const;
  std::string snapshots_dir() const;
  std::string keys_dir() const;
  std::string workflows_dir() const;  // <dir>/workflows (kWorkflowsDir)
  std::string config_path() const;
  const WorkspaceConfig& config() const { return config_; }
  const std::string& config_text() const { return config_text_; }
  const Env& env() const { return env_; }
  bool read_only() const { return read_only_; }

  // Stops all writes of this Workspace object: every later Write fails with DataLoss
  // naming `cause`, until the workspace is reopened. Any code whose durable write fails
  // (an fsync of a file or folder returned DataLoss) must call this: after a failed fsync
  // the kernel may have dropped the data, and a retry that then succeeds proves nothing
  // (docs/architecture.md, "Durability"). A failed fsync inside SQLite poisons the
  // connection itself, with the same effect. Thread-safe; the first cause is kept.
  void StopWrites(const Status& cause);
  // Ok, or the DataLoss status Write returns once writes were stopped.
  Status WriteState();

  // INTERNAL to src/store: folders this process created or found and fsynced into their
  // parent. A folder left by a crashed process may exist without its entry being durable,
  // so each process syncs the parent once before relying on it. Thread-safe.
  bool DirKnownDurable(const std::string& dir);
  void NoteDirDurable(const std::string& dir);

  // INTERNAL to src/store: the write connection, for repositories. Callers must hold mu().
  // Reads go through store::Reader instead.
  sql::Db* db() { return db_.get(); }
  std::recursive_mutex& mu() { return mu_; }
  // INTERNAL to src/store (Reader): true if this thread is inside this Workspace's Write.
  bool InWriteOnThisThread() const { return txn_thread_.load() == std::this_thread::get_id(); }
  // INTERNAL to src/store (Reader): a read-only connection from the pool (opened if none is
  // idle), and its return. Null when one cannot be opened (the caller reads on the write
  // connection instead). Thread-safe.
  std::unique_ptr<sql::Db> BorrowReader();
  void ReturnReader(std::unique_ptr<sql::Db> db);
  // INTERNAL to src/store (checkpoint.cc). Callers must hold mu().
  CheckpointState& checkpoint_state() { return *checkpoint_state_; }

  // The outcome of the last automatic checkpoint (store/checkpoint.h). A write whose
  // commit succeeded reports success even if the checkpoint after it failed; the failure is
  // kept here, retried after another ledger.checkpoint_every entries, and `keel verify`
  // shows the missing checkpoint.
  Status last_auto_checkpoint_status();

 private:
  Workspace(std::string dir, Env env);
  // After a commit that left the ledger with `size` entries: takes a checkpoint if one is
  // due. O(1) unless one is due.
  void MaybeAutoCheckpoint(int64_t size);
  Status WriteImpl(const std::function<Status(Txn&)>& fn, bool pipelined);
  std::string dir_;
  Env env_;
  WorkspaceConfig config_;
  std::string config_text_;
  bool read_only_ = false;
  std::recursive_mutex mu_;
  std::unique_ptr<sql::Db> db_;
  std::unique_ptr<sql::StateCapture> capture_;  // null when read-only
  Txn* txn_ = nullptr;                          // the open transaction (guarded by mu_)
  // Inside this thread's Write: writes the entry the transaction holds back, so that a
  // read of the ledger sees it. Callers must not hold a Reader on the write connection.
  Status FlushForRead();
  // After a migration to schema 9: the images of every row that existed before, in
  // state.baseline entries (docs/ledger-format.md, "State images").
  Status WriteStateBaseline();
  std::string sqlite_vfs_;                     // the readers open with the writer's VFS
  std::atomic<std::thread::id> txn_thread_{};  // the thread inside Write, if any
  std::atomic<bool> pipelined_once_{false};    // a pipelined commit has returned
  std::mutex readers_mu_;
  std::vector<std::unique_ptr<sql::Db>> idle_readers_;  // guarded by readers_mu_
  Status stopped_;                      // non-ok once StopWrites was called (guarded by mu_)
  std::set<std::string> durable_dirs_;  // guarded by mu_
  std::unique_ptr<CheckpointState> checkpoint_state_;
  friend class Txn;  // reads tail_cache_
  // The ledger's last entry as this connection committed it, and the database's data
  // version right after that commit (guarded by mu_). A transaction that finds the same
  // data version appends after it without reading the ledger (Txn::Append); any other
  // commit in between, from any connection or process, changes the version.
  struct TailCache {
    bool valid = false;
    uint32_t data_version = 0;
    int64_t seq = 0;
    Digest hash{};
  } tail_cache_;
};

// INTERNAL to src/store: the connection a repository reads with. Inside this thread's
// Workspace::Write it is the write connection (the transaction's own view), held under
// mu(); otherwise a read-only connection borrowed from the Workspace's pool for this
// object's lifetime, so the read never queues behind a write transaction. A read-only
// Workspace has one connection and reads on it. Not copyable; use on one thread.
class Reader {
 public:
  explicit Reader(Workspace& ws);
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  sql::Db* db() const { return db_; }

 private:
  Workspace& ws_;
  std::unique_lock<std::recursive_mutex> lock_;  // held when reading on the write connection
  std::unique_ptr<sql::Db> pooled_;
  sql::Db* db_ = nullptr;
};

// Syncs the WAL of the workspace in `dir` (Workspace::SyncReads without an open Workspace):
// what any process committed so far is durable after it. DataLoss if the sync fails.
Status SyncWorkspaceWal(const std::string& dir);

// Parses keel.yaml text. InvalidArgument names the line and key on error.
Result<WorkspaceConfig> ParseWorkspaceConfig(const std::string& yaml_text, const std::string& path);
// The documented keel.yaml written by `keel init`.
std::string DefaultConfigText(const std::string& id, const std::string& name);

}  // namespace keel::store
