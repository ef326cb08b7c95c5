#include "store/workspace.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "core/crash_point.h"
#include "core/json.h"
#include "store/checkpoint.h"
#include "store/sqlite/database.h"
#include "store/sqlite/schema.h"
#include "store/sqlite/sql.h"
#include "store/sqlite/state_capture.h"
#include "store/state.h"

namespace keel::store {
namespace {

constexpr char kConfigFile[] = "keel.yaml";
constexpr char kDbFile[] = "keel.db";

bool ValidText(const std::string& s) {
  return s.find('\0') == std::string::npos;
}

}  // namespace

std::string DefaultConfigText(const std::string& id, const std::string& name) {
  nlohmann::json quoted = name;
  return "# keel workspace configuration.\n"
         "# Precedence: command-line flags > KEEL_* environment variables > this file >\n"
         "# defaults. Secrets never go here: use `keel secret set NAME`.\n"
         "workspace:\n"
         "  # Fixed at creation; names this workspace in signed ledger checkpoints.\n"
         "  id: " +
         id +
         "\n"
         "  name: " +
         quoted.dump() +
         "\n"
         "\n"
         "# sandbox: every adapter records what it would send, with the same idempotency\n"
         "# tokens and ledger entries, and sends nothing. live: adapters act for real\n"
         "# (each adapter must also be switched live on its own).\n"
         "mode: sandbox\n"
         "\n"
         "# Each adapter's own switch (`keel adapter list`); a switch made with `keel adapter\n"
         "# live|sandbox NAME` is on the ledger and wins over this section.\n"
         "# adapters:\n"
         "#   NAME: {mode: live, concurrency: 2}   # concurrency: its actions at once\n"
         "# Agent calls and adapter actions the worker runs at once (docs/workflows.md).\n"
         "# effects:\n"
         "#   concurrency: 16\n"
         "#   per_adapter: 8\n"
         "\n"
         "ledger:\n"
         "  # A signed Merkle checkpoint is taken after this many new entries.\n"
         "  checkpoint_every: 1000\n"
         "\n"
         "snapshots:\n"
         "  # `keel snapshot` keeps this many snapshots and prunes older ones.\n"
         "  keep: 7\n"
         "\n"
         "vault:\n"
         "  # The key that seals secrets (docs/vault.md): file = keys/vault.key (32 random\n"
         "  # bytes, mode 0600, made by the first `keel secret set`); passphrase = derived\n"
         "  # with Argon2id from $KEEL_VAULT_PASSPHRASE. Fixed once the first secret is set.\n"
         "  key: file\n"
         "\n"
         "# Model providers for agents (docs/agents.md). Without this section agents use the\n"
         "# offline provider: no network, no key. Keys are secret NAMES, never values.\n"
         "# models:\n"
         "#   default: offline\n"
         "#   providers:\n"
         "#     openai: {kind: openai, model: gpt-4o-mini, api_key_secret: OPENAI_API_KEY}\n"
         "#     local: {kind: openai, base_url: \"http://127.0.0.1:11434/v1\", model: llama3.1}\n"
         "#     claude: {kind: anthropic, model: claude-sonnet-4-5, api_key_secret: "
         "ANTHROPIC_API_KEY}\n"
         "#   prices:  # USD per million tokens, for `keel cost`\n"
         "#     gpt-4o-mini: {input_per_mtok: 0.15, output_per_mtok: 0.60}\n";
}

Result<WorkspaceConfig> ParseWorkspaceConfig(const std::string& text, const std::string& path) {
  WorkspaceConfig c;
  try {
    YAML::Node root = YAML::Load(text);
    if (!root.IsMap()) return InvalidArgument(path + ": the top level must be a mapping");
    auto ws = root["workspace"];
    if (!ws || !ws.IsMap() || !ws["id"]) {
      return InvalidArgument(path + ": missing workspace.id (is this a keel workspace?)");
    }
    c.id = ws["id"].as<std::string>();
    if (ws["name"]) c.name = ws["name"].as<std::string>();
    if (root["mode"]) {
      c.mode = root["mode"].as<std::string>();
      if (c.mode != "sandbox" && c.mode != "live") {
        return InvalidArgument(path + " line " + std::to_string(root["mode"].Mark().line + 1) +
                               ": mode must be sandbox or live, not '" + c.mode + "'");
      }
    }
    if (auto l = root["ledger"]; l && l["checkpoint_every"]) {
      c.checkpoint_every = l["checkpoint_every"].as<int64_t>();
      if (c.checkpoint_every < 1) {
        return InvalidArgument(path + " line " +
                               std::to_string(l["checkpoint_every"].Mark().line + 1) +
                               ": ledger.checkpoint_every must be at least 1");
      }
    }
    if (auto s = root["snapshots"]; s && s["keep"]) {
      c.snapshot_keep = s["keep"].as<int>();
      if (c.snapshot_keep < 1) {
        return InvalidArgument(path + " line " + std::to_string(s["keep"].Mark().line + 1) +
                               ": snapshots.keep must be at least 1");
      }
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgument(path + " line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  return c;
}

Status Workspace::Init(const std::string& dir_in, const InitOptions& opts, const Env& env) {
  std::string dir = AbsolutePath(dir_in);
  FileSystem* fs = env.fs;
  if (fs->Exists(JoinPath(dir, kConfigFile)) || fs->Exists(JoinPath(dir, kDbFile))) {
    return AlreadyExists(dir + " already holds a keel workspace");
  }
  if (!opts.allow_nested) {
    // A workspace inside another is almost always a mistake (`keel init` typed in the
    // wrong folder): the outer one's folder would then carry the inner one's data, and a
    // command run in a subfolder acts on whichever of the two is nearer.
    for (std::string d = DirName(dir);; d = DirName(d)) {
      if (fs->Exists(JoinPath(d, kConfigFile))) {
        return FailedPrecondition(dir + " is inside the keel workspace " + d +
                                  "; choose a folder outside it, or pass --allow-nested to "
                                  "create a workspace within another on purpose");
      }
      if (d == "/" || d == "." || DirName(d) == d) break;
    }
  }
  // Owner-only folders (docs/architecture.md, "Permissions"). A folder that already exists
  // keeps its bits: the operator chose them (FileSystem::CreateDirs).
  KEEL_RETURN_IF_ERROR(fs->CreateDirs(dir, kPrivateDirMode));
  for (const char* sub : {"artifacts", "snapshots", "keys", kWorkflowsDir}) {
    KEEL_RETURN_IF_ERROR(fs->CreateDirs(JoinPath(dir, sub), kPrivateDirMode));
  }

  std::string id = NewId("ws", env.clock->NowMicros(), env.random);
  {
    sql::OpenOptions o;
    o.create = true;
    KEEL_ASSIGN_OR_RETURN(auto db, sql::Db::Open(JoinPath(dir, kDbFile), o));
    // Page size and auto_vacuum must be chosen before the first table exists.
    // 4 KiB pages (SQLite's default). A durable commit writes every page it touches to the
    // WAL and waits for the fsync. Before the ledger carried row images, a workflow step
    // touched four small rows and 1 KiB pages made its commit about 30 % faster. A step's
    // entry now carries the images of the rows it changed, and a batch's last entry all of
    // them (several KiB): with 1 KiB pages those spill into chains of overflow pages, and
    // 4 KiB pages made W2 about 18 % and W1 about 12 % faster, bulk appends and memory
    // ingest faster too (docs/benchmarks.md, "Page size"). Workspaces created with 1 KiB
    // pages keep them (SQLite fixes the page size per file).
    KEEL_RETURN_IF_ERROR(sql::InitNewDatabase(db.get(), kPageSize));
    KEEL_RETURN_IF_ERROR(sql::ApplyConnectionSettings(db.get(), false));
    KEEL_RETURN_IF_ERROR(Migrate(db.get()));
    KEEL_RETURN_IF_ERROR(db->Begin());
    // A new workspace has no rows to attest: the images start with its first entry.
    auto st = db->Prepare("INSERT INTO meta(key, value) VALUES ('workspace_id', ?), ('" +
                          std::string(kStateImagesSinceKey) + "', '1')");
    if (!st.ok()) return st.status();
    (*st)->Bind(1, id);
    Status s = (*st)->Run();
    if (s.ok()) s = db->Commit();
    if (!s.ok()) return s;
  }
  // The config is written last: its presence marks a complete workspace.
  KEEL_RETURN_IF_ERROR(
      WriteFileAtomic(fs, JoinPath(dir, kConfigFile), DefaultConfigText(id, opts.name)));
  // That synced the workspace folder (its entries: keel.db, artifacts/, ...); the folder's
  // own entry in its parent must be durable too.
  KEEL_RETURN_IF_ERROR(fs->SyncDir(DirName(dir)));

  KEEL_ASSIGN_OR_RETURN(auto ws, Open(dir, WorkspaceOpenOptions{}, env));
  nlohmann::json payload = {
      {"name", opts.name}, {"schema_version", CurrentSchemaVersion()}, {"workspace_id", id}};
  return ws->Write([&](Txn& txn) {
    return txn.Append({"operator", "workspace.created", id, "", "", CanonicalJson(payload), {}})
        .status();
  });
}

Result<std::unique_ptr<Workspace>> Workspace::Open(const std::string& dir_in,
                                                   const WorkspaceOpenOptions& opts,
                                                   const Env& env) {
  std::string dir = AbsolutePath(dir_in);
  FileSystem* fs = env.fs;
  std::string cfg_path = JoinPath(dir, kConfigFile);
  if (!fs->Exists(dir)) return NotFound("workspace folder " + dir + " does not exist");
  if (!fs->Exists(cfg_path)) {
    return NotFound(dir + " is not a keel workspace (no keel.yaml); create one with `keel init " +
                    dir + "`");
  }
  // The application layer reads keel.yaml once and hands it over (opts.config_text);
  // tests and tools that open a workspace directly let the store read it.
  Result<std::string> text =
      opts.config_text ? Result<std::string>(*opts.config_text) : fs->ReadFile(cfg_path, 1 << 20);
  if (!text.ok()) return text.status();
  KEEL_ASSIGN_OR_RETURN(WorkspaceConfig cfg, ParseWorkspaceConfig(*text, cfg_path));
  std::string db_path = JoinPath(dir, kDbFile);
  if (!fs->Exists(db_path)) {
    return NotFound(dir + " has keel.yaml but no keel.db; restore it with `keel restore`");
  }

  std::unique_ptr<Workspace> ws(new Workspace(dir, env));
  ws->config_ = cfg;
  ws->config_text_ = std::move(*text);
  ws->read_only_ = opts.read_only;
  sql::OpenOptions o;
  o.read_only = opts.read_only;
  o.vfs = opts.sqlite_vfs;
  o.background_checkpoint = opts.background_checkpoint;
  ws->sqlite_vfs_ = opts.sqlite_vfs;
  auto db = sql::Db::Open(db_path, o);
  if (!db.ok()) return db.status().WithContext("opening workspace " + dir);
  ws->db_ = std::move(*db);
  // Reading the schema catches a file that is not a database before anything else runs.
  auto version = StoredSchemaVersion(ws->db_.get());
  if (!version.ok()) return version.status().WithContext("opening workspace " + dir);
  if (*version == 0) {
    // Init writes keel.yaml only after the schema committed: a workspace's database without
    // one is empty or cut short, never new. Migrating it would hide the loss.
    return DataLoss("opening workspace " + dir + ": " + db_path +
                    " holds no keel schema (empty or truncated); restore a snapshot with "
                    "`keel restore`");
  }
  KEEL_RETURN_IF_ERROR(sql::ApplyConnectionSettings(ws->db_.get(), opts.read_only));
  if (opts.read_only) {
    if (*version > CurrentSchemaVersion()) {
      return FailedPrecondition("workspace " + dir + " has schema version " +
                                std::to_string(*version) + ", newer than this keel knows (" +
                                std::to_string(CurrentSchemaVersion()) + "); upgrade keel");
    }
    if (*version < CurrentSchemaVersion()) {
      return FailedPrecondition("workspace " + dir +
                                " needs a schema upgrade; open it once "
                                "without read-only access (any keel write command)");
    }
  } else {
    auto m = Migrate(ws->db_.get());
    if (!m.ok()) return m.WithContext("opening workspace " + dir);
    // A test holding the schema at an older version (ScopedSchemaVersionLimit) writes as
    // the keel of that version did: without images.
    if (CurrentSchemaVersion() < kFirstStateImageSchema) return ws;
    auto capture = sql::StateCapture::Install(ws->db_.get());
    if (!capture.ok()) return capture.status().WithContext("opening workspace " + dir);
    ws->capture_ = std::move(*capture);
    auto since = ws->db_->QueryInt("SELECT COUNT(*) FROM meta WHERE key = '" +
                                   std::string(kStateImagesSinceKey) + "'");
    if (!since.ok()) return since.status().WithContext("opening workspace " + dir);
    if (*since == 0) {
      Status b = ws->WriteStateBaseline();
      if (!b.ok()) return b.WithContext("opening workspace " + dir + ": attesting its state");
    }
  }
  return ws;
}

Result<std::string> Workspace::Find(const std::string& flag, const std::string& env_value,
                                    const std::string& cwd) {
  if (!flag.empty()) return AbsolutePath(flag);
  if (!env_value.empty()) return AbsolutePath(env_value);
  std::string dir = AbsolutePath(cwd);
  for (;;) {
    if (DefaultFileSystem()->Exists(JoinPath(dir, kConfigFile))) return dir;
    if (dir == "/" || dir.empty()) break;
    dir = DirName(dir);
  }
  return NotFound("no keel workspace in " + AbsolutePath(cwd) +
                  " or its parents; pass --workspace DIR, set KEEL_WORKSPACE, or run "
                  "`keel init DIR`");
}

Workspace::Workspace(std::string dir, Env env)
    : dir_(std::move(dir)), env_(env), checkpoint_state_(std::make_unique<CheckpointState>()) {}
Workspace::~Workspace() {
  std::lock_guard<std::mutex> l(readers_mu_);
  idle_readers_.clear();  // before the write connection, which may checkpoint on close
}

std::unique_ptr<sql::Db> Workspace::BorrowReader() {
  {
    std::lock_guard<std::mutex> l(readers_mu_);
    if (!idle_readers_.empty()) {
      auto db = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return db;
    }
  }
  sql::OpenOptions o;
  o.read_only = true;
  o.vfs = sqlite_vfs_;
  auto db = sql::Db::Open(db_path(), o);
  if (!db.ok() || !sql::ApplyConnectionSettings(db->get(), true).ok()) return nullptr;
  return std::move(*db);
}

void Workspace::ReturnReader(std::unique_ptr<sql::Db> db) {
  // A connection that failed mid-read (an I/O error) is not kept.
  if (db->poisoned()) return;
  db->ResetStatements();
  std::lock_guard<std::mutex> l(readers_mu_);
  // As many as threads have read at once; a burst beyond 8 does not keep its connections.
  if (idle_readers_.size() < 8) idle_readers_.push_back(std::move(db));
}

Status Workspace::SyncReads() {
  if (read_only_) return sql::SyncWal(db_path());
  // Without mu_: a reply must not queue behind a write transaction. The syncer exists, and
  // may be waited for from any thread, once a pipelined commit has returned (sql.h).
  if (pipelined_once_.load()) {
    Status s = db_->WaitDurable();
    if (!s.ok()) {
      StopWrites(s);
      return s;
    }
  }
  return sql::SyncWal(db_path());
}

Status SyncWorkspaceWal(const std::string& dir) {
  return sql::SyncWal(JoinPath(AbsolutePath(dir), kDbFile));
}

Reader::Reader(Workspace& ws) : ws_(ws) {
  if (!ws.read_only() && !ws.InWriteOnThisThread()) pooled_ = ws.BorrowReader();
  if (pooled_) {
    db_ = pooled_.get();
  } else {
    lock_ = std::unique_lock<std::recursive_mutex>(ws.mu());
    db_ = ws.db();
  }
}

Reader::~Reader() {
  if (pooled_) ws_.ReturnReader(std::move(pooled_));
}

std::string Workspace::db_path() const {
  return JoinPath(dir_, kDbFile);
}
std::string Workspace::artifacts_dir() const {
  return JoinPath(dir_, "artifacts");
}
std::string Workspace::snapshots_dir() const {
  return JoinPath(dir_, "snapshots");
}
std::string Workspace::keys_dir() const {
  return JoinPath(dir_, "keys");
}
std::string Workspace::workflows_dir() const {
  return JoinPath(dir_, kWorkflowsDir);
}
std::string Workspace::config_path() const {
  return JoinPath(dir_, kConfigFile);
}

sql::Db* Txn::db() {
  return ws_->db();
}

void Workspace::StopWrites(const Status& cause) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  if (!stopped_.ok()) return;
  stopped_ =
      DataLoss("writes to workspace " + dir_ + " are stopped after a failed disk write (" +
               cause.message() + "); nothing more is written until keel restarts and reopens it");
}

Status Workspace::WriteState() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return stopped_;
}

bool Workspace::DirKnownDurable(const std::string& dir) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return durable_dirs_.count(dir) != 0;
}

void Workspace::NoteDirDurable(const std::string& dir) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  durable_dirs_.insert(dir);
}

Status Workspace::Write(const std::function<Status(Txn&)>& fn) {
  return WriteImpl(fn, /*pipelined=*/false);
}

Status Workspace::WritePipelined(const std::function<Status(Txn&)>& fn) {
  return WriteImpl(fn, /*pipelined=*/true);
}

Status Workspace::WaitDurable() {
  if (read_only_) return OkStatus();
  std::lock_guard<std::recursive_mutex> lock(mu_);
  Status s = db_->WaitDurable();
  if (!s.ok()) StopWrites(s);
  return s;
}

uint64_t Workspace::pipelined_commits() {
  return read_only_ ? 0 : db_->pipelined_commits();
}

uint64_t Workspace::durable_commits() {
  return read_only_ ? 0 : db_->durable_commits();
}

uint64_t Workspace::pipelined_syncs() {
  return read_only_ ? 0 : db_->pipelined_syncs();
}

Status Workspace::WriteImpl(const std::function<Status(Txn&)>& fn, bool pipelined) {
  if (read_only_) return FailedPrecondition("workspace " + dir_ + " is open read-only");
  std::lock_guard<std::recursive_mutex> lock(mu_);
  if (db_->in_transaction()) return Internal("Workspace::Write is not reentrant");
  if (!stopped_.ok()) return stopped_;
  KEEL_RETURN_IF_ERROR(
      db_->Begin(pipelined ? sql::Db::Durability::kPipelined : sql::Db::Durability::kSync));
  Txn txn(this, env_.clock->NowMicros());
  // Reads inside `fn` on this thread see the transaction (store::Reader).
  txn_thread_.store(std::this_thread::get_id());
  txn_ = &txn;
  Status s = fn(txn);
  if (s.ok()) s = txn.Flush(/*with_images=*/true);
  if (s.ok() && capture_ && !capture_->empty()) {
    // Nothing happens off the ledger: a change to a state table with no entry after it is
    // a bug in the code that made it, refused before it can commit.
    s = Internal("a write changed " + capture_->TouchedTables() +
                 " without a ledger entry after the change");
  }
  txn_ = nullptr;
  txn_thread_.store(std::thread::id());
  tail_cache_.valid = false;  // until this transaction's outcome is known
  if (!s.ok()) {
    if (capture_) capture_->Clear();
    db_->Rollback();
    if (db_->poisoned()) StopWrites(s);
    return s;
  }
  KEEL_CRASH_POINT("txn.before_commit");
  s = db_->Commit();
  if (!s.ok()) {
    if (db_->poisoned()) StopWrites(s);
    return s;
  }
  if (pipelined) pipelined_once_.store(true);
  if (txn.have_tail_) tail_cache_ = {true, db_->DataVersion(), txn.tail_seq_, txn.tail_hash_};
  for (auto& f : txn.on_commit_) f();
  if (txn.appended_ > 0) MaybeAutoCheckpoint(txn.tail_seq_);
  return OkStatus();
}

void Workspace::MaybeAutoCheckpoint(int64_t size) {
  CheckpointState& st = *checkpoint_state_;
  if (!st.loaded) {
    auto last = db_->QueryInt("SELECT COALESCE(MAX(tree_size), 0) FROM checkpoints");
    if (!last.ok()) {
      st.last_error = last.status();
      return;
    }
    st.loaded = true;
    st.next_due = *last + config_.checkpoint_every;
  }
  if (size < st.next_due) return;
  // CheckpointIfDue re-reads the last checkpoint inside its transaction: another process
  // may have taken one since.
  auto r = CheckpointIfDue(*this);
  if (r.ok()) {
    st.last_error = OkStatus();
  } else {
    st.last_error = r.status().WithContext("automatic ledger checkpoint");
    st.next_due = size + config_.checkpoint_every;  // do not retry on every commit
  }
}

Status Workspace::last_auto_checkpoint_status() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return checkpoint_state_->last_error;
}

Result<LedgerEntry> Txn::Append(const NewEntry& in) {
  if (in.actor.empty()) return InvalidArgument("ledger entry needs an actor");
  if (in.kind.empty()) return InvalidArgument("ledger entry needs a kind");
  const std::string& payload = in.payload.empty() ? std::string("{}") : in.payload;
  if (payload.size() > kMaxPayloadBytes) {
    return InvalidArgument("ledger payload of " + std::to_string(payload.size()) +
                           " bytes exceeds " + std::to_string(kMaxPayloadBytes) +
                           "; store large content as an artifact and reference it");
  }
  if (!ValidText(in.actor) || !ValidText(in.kind) || !ValidText(in.subject) ||
      !ValidText(in.run_id) || !ValidText(in.step_id)) {
    return InvalidArgument("ledger text fields must not contain NUL");
  }
  if (payload.front() != '{' || !IsJsonObjectText(payload)) {
    return InvalidArgument("ledger payload must be a JSON object");
  }
  LedgerEntry e;
  e.artifacts.reserve(in.artifacts.size());
  for (const std::string& a : in.artifacts) {
    Digest d;
    if (!IsDigestHex(a) || !ParseDigestHex(a, &d)) {
      return InvalidArgument("artifact reference '" + a + "' is not a SHA-256 hex digest");
    }
    e.artifacts.push_back(d);
  }
  e.time_us = now_us_;
  e.actor = in.actor;
  e.kind = in.kind;
  e.subject = in.subject;
  e.run_id = in.run_id;
  e.step_id = in.step_id;
  e.payload = payload;
  KEEL_RETURN_IF_ERROR(Flush(/*with_images=*/false));
  sql::Db* db = ws_->db();
  const Workspace::TailCache& cached = ws_->tail_cache_;
  if (!have_tail_ && cached.valid && cached.data_version == db->DataVersion()) {
    tail_seq_ = cached.seq;
    tail_hash_ = cached.hash;
    have_tail_ = true;
  }
  if (!have_tail_) {
    KEEL_ASSIGN_OR_RETURN(auto* st, db->Cached("SELECT seq, hash FROM ledger ORDER BY seq DESC "
                                               "LIMIT 1"));
    KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
    if (row) {
      tail_seq_ = st->Int(0);
      auto h = st->BlobView(1);
      if (h.size() != 32)
        return DataLoss("ledger entry " + std::to_string(tail_seq_) + " has a damaged hash");
      std::copy(h.begin(), h.end(), tail_hash_.begin());
    } else {
      tail_seq_ = 0;
      tail_hash_.fill(0);
    }
    st->Reset();
    have_tail_ = true;
  }
  e.seq = tail_seq_ + 1;
  pending_ = std::move(e);
  return *pending_;
}

Result<LedgerEntry> Txn::AppendImages(const NewEntry& entry, std::string state) {
  KEEL_RETURN_IF_ERROR(Append(entry).status());
  pending_->state = std::move(state);
  LedgerEntry e = *pending_;
  // Written now: rows changed by this transaction go on a later entry, not these images.
  KEEL_RETURN_IF_ERROR(Flush(/*with_images=*/false));
  return e;
}

Status Txn::Flush(bool with_images) {
  if (!pending_) return OkStatus();
  LedgerEntry& e = *pending_;
  sql::StateCapture* capture = ws_->capture_.get();
  if (with_images && capture != nullptr && !capture->empty()) {
    StateBuilder images;
    KEEL_RETURN_IF_ERROR(capture->Take(&images));
    e.state = images.Finish();
  }
  e.prev_hash = tail_hash_;
  e.hash = ComputeEntryHash(e, &scratch_);
  std::string arts;
  arts.reserve(32 * e.artifacts.size());
  for (const Digest& d : e.artifacts) arts.append(reinterpret_cast<const char*>(d.data()), 32);
  // Without images the column keeps its default: a database held at an older schema by a
  // test has no state column.
  KEEL_ASSIGN_OR_RETURN(
      auto* ins,
      ws_->db()->Cached(e.state.empty() ? "INSERT INTO ledger(seq, time_us, actor, kind, subject, "
                                          "run_id, step_id, payload, artifacts, prev_hash, hash) "
                                          "VALUES (?,?,?,?,?,?,?,?,?,?,?)"
                                        : "INSERT INTO ledger(seq, time_us, actor, kind, subject, "
                                          "run_id, step_id, payload, artifacts, prev_hash, hash, "
                                          "state) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"));
  ins->Bind(1, e.seq)
      .Bind(2, e.time_us)
      .Bind(3, e.actor)
      .Bind(4, e.kind)
      .Bind(5, e.subject)
      .Bind(6, e.run_id)
      .Bind(7, e.step_id)
      .Bind(8, e.payload)
      .BindBlob(9, arts)
      .BindBlob(10, e.prev_hash.data(), 32)
      .BindBlob(11, e.hash.data(), 32);
  if (!e.state.empty()) ins->BindBlob(12, e.state);
  Status s = ins->Run();
  ins->Reset();
  KEEL_RETURN_IF_ERROR(s);
  tail_seq_ = e.seq;
  tail_hash_ = e.hash;
  ++appended_;
  pending_.reset();
  return OkStatus();
}

Status Workspace::FlushForRead() {
  if (!InWriteOnThisThread()) return OkStatus();
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return txn_ != nullptr ? txn_->Flush(/*with_images=*/true) : OkStatus();
}

Status Workspace::WriteStateBaseline() {
  return Write([&](Txn& txn) {
    // Rows are grouped into entries of at most kRows images (about 1 MB for typical rows).
    constexpr int kRows = 1000;
    int64_t first = 0, total = 0;
    StateBuilder images;
    int in_chunk = 0;
    auto emit = [&]() -> Status {
      if (images.empty()) return OkStatus();
      nlohmann::json payload = {{"rows", in_chunk}};
      KEEL_ASSIGN_OR_RETURN(
          LedgerEntry e,
          txn.AppendImages({"system", "state.baseline", "", "", "", CanonicalJson(payload), {}},
                           images.Finish()));
      if (first == 0) first = e.seq;
      in_chunk = 0;
      return OkStatus();
    };
    for (const StateTable& t : StateTables()) {
      std::string order = "ORDER BY ";
      for (int k = 0; k < t.key_cols; ++k) (order += k ? ", " : "") += t.cols[k].name;
      KEEL_ASSIGN_OR_RETURN(auto st, db_->Prepare(SelectCoveredSql(t, order)));
      for (;;) {
        KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
        if (!row) break;
        images.Begin(t.name, true, t.key_cols, static_cast<int>(t.cols.size()));
        PutRowValues(t, *st, images.values());
        images.End();
        ++total;
        if (++in_chunk == kRows) KEEL_RETURN_IF_ERROR(emit());
      }
    }
    KEEL_RETURN_IF_ERROR(emit());
    if (first == 0) {
      // Nothing to attest: the images start with the next entry.
      KEEL_ASSIGN_OR_RETURN(first, db_->QueryInt("SELECT COALESCE(MAX(seq), 0) + 1 FROM ledger"));
    }
    KEEL_ASSIGN_OR_RETURN(auto* m, db_->Cached("INSERT INTO meta(key, value) VALUES (?, ?)"));
    m->Bind(1, std::string(kStateImagesSinceKey)).Bind(2, std::to_string(first));
    Status s = m->Run();
    m->Reset();
    return s;
  });
}

namespace {
LedgerEntry ReadEntry(const sql::Stmt& st) {
  LedgerEntry e;
  e.seq = st.Int(0);
  e.time_us = st.Int(1);
  e.actor = st.Text(2);
  e.kind = st.Text(3);
  e.subject = st.Text(4);
  e.run_id = st.Text(5);
  e.step_id = st.Text(6);
  e.payload = st.Text(7);
  auto arts = st.BlobView(8);
  for (size_t i = 0; i + 32 <= arts.size(); i += 32) {
    Digest d;
    std::copy(arts.begin() + i, arts.begin() + i + 32, d.begin());
    e.artifacts.push_back(d);
  }
  auto prev = st.BlobView(9);
  if (prev.size() == 32) std::copy(prev.begin(), prev.end(), e.prev_hash.begin());
  auto h = st.BlobView(10);
  if (h.size() == 32) std::copy(h.begin(), h.end(), e.hash.begin());
  if (st.Type(11) == sql::ColType::kBlob) e.state = std::string(st.BlobView(11));
  return e;
}
// The ledger's columns in ReadEntry's order; a database held at a schema before images
// (tests) reads an empty state.
const char* EntryColumns() {
  return CurrentSchemaVersion() >= kFirstStateImageSchema
             ? "SELECT seq, time_us, actor, kind, subject, run_id, step_id, payload, artifacts, "
               "prev_hash, hash, state FROM ledger"
             : "SELECT seq, time_us, actor, kind, subject, run_id, step_id, payload, artifacts, "
               "prev_hash, hash, x'' FROM ledger";
}
}  // namespace

namespace {
// The statement for `q`, bound, optionally prefixed ("EXPLAIN QUERY PLAN ").
Result<std::unique_ptr<sql::Stmt>> PrepareLedgerQuery(sql::Db* db, const LedgerQuery& q,
                                                      const char* prefix) {
  std::string sql = prefix;
  sql += EntryColumns();
  sql += " WHERE seq > ?";
  // The indexes on subject and run_id are partial (non-empty values; a run's entries about
  // itself only under subject, see schema.cc): SQLite uses a partial index only when the
  // query repeats its condition, hence the redundant-looking terms.
  if (!q.subject.empty()) sql += " AND subject = ? AND subject <> ''";
  bool kind_prefix = !q.kind.empty() && q.kind.back() == '*';
  if (!q.kind.empty()) sql += kind_prefix ? " AND substr(kind, 1, ?) = ?" : " AND kind = ?";
  if (!q.actor.empty()) sql += " AND actor = ?";
  if (!q.run_id.empty()) {
    sql +=
        " AND ((subject = ? AND subject <> '' AND run_id = ?) OR "
        "(run_id = ? AND run_id <> '' AND run_id <> subject))";
  }
  if (q.since_us != 0) sql += " AND time_us >= ?";
  if (q.until_us != 0) sql += " AND time_us < ?";
  sql += q.newest_first ? " ORDER BY seq DESC" : " ORDER BY seq";
  if (q.limit > 0) sql += " LIMIT ?";

  KEEL_ASSIGN_OR_RETURN(auto st, db->Prepare(sql));
  int i = 1;
  st->Bind(i++, q.after_seq);
  if (!q.subject.empty()) st->Bind(i++, q.subject);
  if (!q.kind.empty()) {
    if (kind_prefix) {
      std::string kp = q.kind.substr(0, q.kind.size() - 1);
      st->Bind(i++, static_cast<int64_t>(kp.size()));
      st->Bind(i++, kp);
    } else {
      st->Bind(i++, q.kind);
    }
  }
  if (!q.actor.empty()) st->Bind(i++, q.actor);
  if (!q.run_id.empty()) {
    for (int k = 0; k < 3; ++k) st->Bind(i++, q.run_id);
  }
  if (q.since_us != 0) st->Bind(i++, q.since_us);
  if (q.until_us != 0) st->Bind(i++, q.until_us);
  if (q.limit > 0) st->Bind(i++, q.limit);
  return st;
}
}  // namespace

Result<std::vector<LedgerEntry>> Workspace::QueryLedger(const LedgerQuery& q) {
  KEEL_RETURN_IF_ERROR(FlushForRead());
  Reader rd(*this);
  KEEL_ASSIGN_OR_RETURN(auto st, PrepareLedgerQuery(rd.db(), q, ""));
  std::vector<LedgerEntry> out;
  for (;;) {
    KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    out.push_back(ReadEntry(*st));
  }
  return out;
}

Result<std::string> Workspace::ExplainLedgerQuery(const LedgerQuery& q) {
  Reader rd(*this);
  KEEL_ASSIGN_OR_RETURN(auto st, PrepareLedgerQuery(rd.db(), q, "EXPLAIN QUERY PLAN "));
  return sql::QueryPlanText(st.get());
}

Status Workspace::ScanLedger(int64_t from_seq,
                             const std::function<Status(const LedgerEntry&)>& fn) {
  KEEL_RETURN_IF_ERROR(FlushForRead());
  Reader rd(*this);
  KEEL_ASSIGN_OR_RETURN(
      auto st, rd.db()->Prepare(std::string(EntryColumns()) + " WHERE seq >= ? ORDER BY seq"));
  st->Bind(1, from_seq);
  for (;;) {
    KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    KEEL_RETURN_IF_ERROR(fn(ReadEntry(*st)));
  }
  return OkStatus();
}

Result<int64_t> Workspace::LedgerSize() {
  KEEL_RETURN_IF_ERROR(FlushForRead());
  Reader rd(*this);
  return rd.db()->QueryInt("SELECT COALESCE(MAX(seq), 0) FROM ledger");
}

}  // namespace keel::store
