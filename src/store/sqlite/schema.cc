#include "store/sqlite/schema.h"

#include <string>
#include <vector>

#include "store/sqlite/sql.h"

namespace keel::store {
namespace {

struct Migration {
  int version;
  const char* sql;
};

// Append only. A released migration is never edited: add a new one instead.
const std::vector<Migration>& Migrations() {
  static const std::vector<Migration> m = {
      {1, R"sql(
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

-- The ledger: see docs/ledger-format.md. Never updated, never deleted.
CREATE TABLE ledger (
  seq       INTEGER PRIMARY KEY,
  time_us   INTEGER NOT NULL,
  actor     TEXT NOT NULL,
  kind      TEXT NOT NULL,
  subject   TEXT NOT NULL DEFAULT '',
  run_id    TEXT NOT NULL DEFAULT '',
  step_id   TEXT NOT NULL DEFAULT '',
  payload   TEXT NOT NULL,
  artifacts BLOB NOT NULL DEFAULT x'',
  prev_hash BLOB NOT NULL,
  hash      BLOB NOT NULL
) STRICT;
CREATE INDEX ledger_subject ON ledger(subject) WHERE subject <> '';
CREATE INDEX ledger_run ON ledger(run_id) WHERE run_id <> '';
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: entries are never updated'); END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: entries are never deleted'); END;

-- Signed Merkle checkpoints over the ledger (also in checkpoints.log).
CREATE TABLE checkpoints (
  tree_size  INTEGER PRIMARY KEY,
  root       BLOB NOT NULL,
  time_us    INTEGER NOT NULL,
  public_key BLOB NOT NULL,
  signature  BLOB NOT NULL
) STRICT;
CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are never updated'); END;
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are never deleted'); END;

-- Artifact metadata; the content lives in artifacts/<aa>/<hash>.
CREATE TABLE artifacts (
  hash       TEXT PRIMARY KEY,
  size       INTEGER NOT NULL,
  media_type TEXT NOT NULL,
  parent     TEXT REFERENCES artifacts(hash),
  name       TEXT NOT NULL DEFAULT '',
  created_us INTEGER NOT NULL,
  ledger_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX artifacts_parent ON artifacts(parent) WHERE parent IS NOT NULL;

-- Typed business records (current state; every change is a ledger entry).
CREATE TABLE records (
  id         TEXT PRIMARY KEY,
  type       TEXT NOT NULL,
  data       TEXT NOT NULL,
  email      TEXT,
  version    INTEGER NOT NULL,
  created_us INTEGER NOT NULL,
  updated_us INTEGER NOT NULL
) STRICT;
CREATE INDEX records_type ON records(type, created_us);
CREATE UNIQUE INDEX records_type_email ON records(type, email) WHERE email IS NOT NULL;

-- The encrypted vault: values are sealed with the vault key; names are not secret.
CREATE TABLE secrets (
  name       TEXT PRIMARY KEY,
  nonce      BLOB NOT NULL,
  ciphertext BLOB NOT NULL,
  updated_us INTEGER NOT NULL
) STRICT;
)sql"},
      {2, R"sql(
-- Workflow engine (docs/workflows.md). Every change to these tables is made in the same
-- transaction as its ledger entry.

-- The exact text of every workflow version a run was started with, by content hash.
CREATE TABLE workflow_versions (
  hash       TEXT PRIMARY KEY,
  name       TEXT NOT NULL,
  path       TEXT NOT NULL,
  content    TEXT NOT NULL,
  created_us INTEGER NOT NULL
) STRICT;

-- One row per run: its status, its cursor (state: program counter, loop frames, step
-- outputs, vars) and when the worker must look at it next (due_us; 4e18 = never).
CREATE TABLE runs (
  id             TEXT PRIMARY KEY,
  workflow       TEXT NOT NULL,
  version        TEXT NOT NULL REFERENCES workflow_versions(hash),
  status         TEXT NOT NULL CHECK (status IN ('running','waiting','completed','failed','canceled')),
  wait_kind      TEXT NOT NULL DEFAULT '',
  due_us         INTEGER NOT NULL,
  mono_due_us    INTEGER NOT NULL DEFAULT 0,
  epoch          TEXT NOT NULL DEFAULT '',
  wait_type      TEXT NOT NULL DEFAULT '',
  wait_key       TEXT NOT NULL DEFAULT '',
  state          TEXT NOT NULL,
  input          TEXT NOT NULL,
  output         TEXT NOT NULL DEFAULT 'null',
  error          TEXT NOT NULL DEFAULT '',
  parent_run     TEXT NOT NULL DEFAULT '',
  parent_step    TEXT NOT NULL DEFAULT '',
  lease_owner    TEXT NOT NULL DEFAULT '',
  lease_until_us INTEGER NOT NULL DEFAULT 0,
  created_us     INTEGER NOT NULL,
  updated_us     INTEGER NOT NULL
) STRICT;
CREATE INDEX runs_ready ON runs(due_us);
CREATE INDEX runs_status ON runs(status, created_us);
CREATE INDEX runs_event_wait ON runs(wait_type, wait_key) WHERE wait_type <> '';
CREATE INDEX runs_parent ON runs(parent_run) WHERE parent_run <> '';

-- The step journal: one row per completed (or finally failed, compensated) step instance.
-- A completed step_key is never executed again; its output is reused.
CREATE TABLE steps (
  run_id      TEXT NOT NULL,
  step_key    TEXT NOT NULL,
  step_id     TEXT NOT NULL,
  kind        TEXT NOT NULL,
  status      TEXT NOT NULL,
  attempts    INTEGER NOT NULL,
  output      TEXT NOT NULL,
  error       TEXT NOT NULL DEFAULT '',
  finished_us INTEGER NOT NULL,
  seq         INTEGER NOT NULL,
  PRIMARY KEY (run_id, step_key)
) STRICT, WITHOUT ROWID;

-- External actions, written before they are attempted.
CREATE TABLE outbox (
  token      TEXT PRIMARY KEY,
  run_id     TEXT NOT NULL,
  step_key   TEXT NOT NULL,
  adapter    TEXT NOT NULL,
  action     TEXT NOT NULL,
  params     TEXT NOT NULL,
  state      TEXT NOT NULL CHECK (state IN ('pending','sending','done','failed','uncertain')),
  attempts   INTEGER NOT NULL,
  result     TEXT NOT NULL DEFAULT 'null',
  error      TEXT NOT NULL DEFAULT '',
  honours_key INTEGER NOT NULL,
  created_us INTEGER NOT NULL,
  updated_us INTEGER NOT NULL
) STRICT;
CREATE INDEX outbox_run ON outbox(run_id);
CREATE INDEX outbox_state ON outbox(state) WHERE state IN ('pending','sending','uncertain');

-- Items for the operator: approval gates, uncertain actions, failures that need a human.
CREATE TABLE approvals (
  id          TEXT PRIMARY KEY,
  run_id      TEXT NOT NULL,
  step_key    TEXT NOT NULL,
  kind        TEXT NOT NULL CHECK (kind IN ('approval','uncertain','needs_human')),
  status      TEXT NOT NULL CHECK (status IN ('pending','approved','rejected','expired','canceled')),
  summary     TEXT NOT NULL,
  recommend   TEXT NOT NULL,
  context     TEXT NOT NULL,
  decision    TEXT NOT NULL DEFAULT 'null',
  deadline_us INTEGER NOT NULL DEFAULT 0,
  remind_us   INTEGER NOT NULL DEFAULT 0,
  reminded    INTEGER NOT NULL DEFAULT 0,
  created_us  INTEGER NOT NULL,
  decided_us  INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX approvals_status ON approvals(status, created_us);
CREATE UNIQUE INDEX approvals_step ON approvals(run_id, step_key, kind);

-- Inbound events, deduplicated by id.
CREATE TABLE events (
  id          TEXT PRIMARY KEY,
  type        TEXT NOT NULL,
  key         TEXT NOT NULL,
  data        TEXT NOT NULL,
  received_us INTEGER NOT NULL,
  delivered   INTEGER NOT NULL
) STRICT;

-- Pause switches: scope global (name ''), workflow, agent, adapter.
CREATE TABLE pauses (
  scope    TEXT NOT NULL CHECK (scope IN ('global','workflow','agent','adapter')),
  name     TEXT NOT NULL,
  since_us INTEGER NOT NULL,
  PRIMARY KEY (scope, name)
) STRICT;

-- Cron schedules of workflows (from their `schedule:`), fired by the worker.
CREATE TABLE schedules (
  workflow TEXT PRIMARY KEY,
  path     TEXT NOT NULL,
  cron     TEXT NOT NULL,
  tz       TEXT NOT NULL,
  next_us  INTEGER NOT NULL,
  last_us  INTEGER NOT NULL DEFAULT 0
) STRICT;
)sql"},
      // 3: the context engine (src/memory, docs/memory.md). Facts are indexed rows kept apart
      // from the raw text (artifacts) they came from; superseded facts stay, with a pointer.
      {3, R"sql(
CREATE TABLE facts (
  n               INTEGER PRIMARY KEY,
  id              TEXT NOT NULL UNIQUE,
  subject         TEXT NOT NULL,
  text            TEXT NOT NULL,
  key             TEXT NOT NULL DEFAULT '',
  value           TEXT NOT NULL DEFAULT '',
  norm            TEXT NOT NULL,
  confidence      REAL NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
  scope           TEXT NOT NULL CHECK (scope IN ('long', 'short')),
  expires_us      INTEGER NOT NULL DEFAULT 0,
  valid_from_us   INTEGER NOT NULL,
  valid_to_us     INTEGER NOT NULL DEFAULT 0,
  superseded_by   TEXT,
  supersedes      TEXT,
  source_artifact TEXT NOT NULL DEFAULT '',
  span_begin      INTEGER NOT NULL DEFAULT -1,
  span_end        INTEGER NOT NULL DEFAULT -1,
  agent           TEXT NOT NULL,
  run_id          TEXT NOT NULL DEFAULT '',
  step_id         TEXT NOT NULL DEFAULT '',
  created_us      INTEGER NOT NULL,
  ledger_seq      INTEGER NOT NULL
) STRICT;
CREATE INDEX facts_subject ON facts(subject, created_us);
CREATE INDEX facts_norm ON facts(subject, norm) WHERE superseded_by IS NULL;
CREATE INDEX facts_expiry ON facts(expires_us) WHERE expires_us > 0;

-- Further sources of a merged fact (the first source is on the facts row).
CREATE TABLE fact_sources (
  fact_n     INTEGER NOT NULL REFERENCES facts(n) ON DELETE CASCADE,
  artifact   TEXT NOT NULL DEFAULT '',
  span_begin INTEGER NOT NULL DEFAULT -1,
  span_end   INTEGER NOT NULL DEFAULT -1,
  agent      TEXT NOT NULL,
  run_id     TEXT NOT NULL DEFAULT '',
  step_id    TEXT NOT NULL DEFAULT '',
  confidence REAL NOT NULL,
  added_us   INTEGER NOT NULL,
  ledger_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX fact_sources_fact ON fact_sources(fact_n);

-- Full-text index over active facts (superseded and purged facts are removed from it).
-- External content: the text lives once, in facts. '_' is a token character so that record
-- ids ("rec_01…") are single tokens in the subject column.
CREATE VIRTUAL TABLE facts_fts USING fts5(
  subject, text, content='facts', content_rowid='n',
  tokenize="porter unicode61 tokenchars '_'");

-- Long-term summaries: each version is an artifact naming its parent.
CREATE TABLE memory_summaries (
  subject    TEXT NOT NULL,
  version    INTEGER NOT NULL,
  artifact   TEXT NOT NULL REFERENCES artifacts(hash),
  parent     TEXT,
  agent      TEXT NOT NULL,
  run_id     TEXT NOT NULL DEFAULT '',
  step_id    TEXT NOT NULL DEFAULT '',
  created_us INTEGER NOT NULL,
  ledger_seq INTEGER NOT NULL,
  PRIMARY KEY (subject, version)
) STRICT;

CREATE TABLE memory_decisions (
  id         TEXT PRIMARY KEY,
  subject    TEXT NOT NULL,
  decision   TEXT NOT NULL,
  decided_by TEXT NOT NULL,
  reason     TEXT NOT NULL,
  fact_ids   TEXT NOT NULL,
  run_id     TEXT NOT NULL DEFAULT '',
  step_id    TEXT NOT NULL DEFAULT '',
  time_us    INTEGER NOT NULL,
  ledger_seq INTEGER NOT NULL
) STRICT;
CREATE INDEX memory_decisions_subject ON memory_decisions(subject, time_us);

-- Every recall: what was returned and, once marked, what was used.
CREATE TABLE memory_retrievals (
  id             TEXT PRIMARY KEY,
  time_us        INTEGER NOT NULL,
  query          TEXT NOT NULL,
  subject        TEXT NOT NULL DEFAULT '',
  agent          TEXT NOT NULL DEFAULT '',
  workflow       TEXT NOT NULL DEFAULT '',
  run_id         TEXT NOT NULL DEFAULT '',
  step_id        TEXT NOT NULL DEFAULT '',
  budget_tokens  INTEGER NOT NULL,
  tokens_used    INTEGER NOT NULL,
  returned       TEXT NOT NULL,
  returned_count INTEGER NOT NULL,
  used           TEXT,
  used_count     INTEGER NOT NULL DEFAULT 0,
  marked_us      INTEGER NOT NULL DEFAULT 0,
  ledger_seq     INTEGER NOT NULL
) STRICT;
CREATE INDEX memory_retrievals_agent ON memory_retrievals(agent);
CREATE INDEX memory_retrievals_workflow ON memory_retrievals(workflow);

-- Artifacts holding text keel generated or recalled: never a source of new facts.
CREATE TABLE artifact_origins (
  artifact   TEXT PRIMARY KEY,
  origin     TEXT NOT NULL,
  time_us    INTEGER NOT NULL,
  ledger_seq INTEGER NOT NULL
) STRICT;
)sql"},
      // 4: model calls and the response cache (src/agents, docs/agents.md).
      {4, R"sql(
-- Model calls (agents layer): tokens and cost attributed to the run, the agent and the
-- customer record. Each row has a model.call ledger entry (ledger_seq). Costs in 1e-9 USD.
CREATE TABLE model_calls (
  id                TEXT PRIMARY KEY,
  time_us           INTEGER NOT NULL,
  run_id            TEXT NOT NULL DEFAULT '',
  step_id           TEXT NOT NULL DEFAULT '',
  agent             TEXT NOT NULL DEFAULT '',
  record_id         TEXT NOT NULL DEFAULT '',
  provider          TEXT NOT NULL,
  model             TEXT NOT NULL,
  operation         TEXT NOT NULL,
  input_tokens      INTEGER NOT NULL,
  output_tokens     INTEGER NOT NULL,
  cost_nanousd      INTEGER NOT NULL,
  cached            INTEGER NOT NULL,
  finish_reason     TEXT NOT NULL DEFAULT '',
  prompt_hash       TEXT NOT NULL,
  prompt_artifact   TEXT NOT NULL,
  response_artifact TEXT NOT NULL,
  ledger_seq        INTEGER NOT NULL
) STRICT;
CREATE INDEX model_calls_record ON model_calls(record_id, time_us) WHERE record_id <> '';
CREATE INDEX model_calls_run ON model_calls(run_id) WHERE run_id <> '';
CREATE INDEX model_calls_time ON model_calls(time_us);

-- Responses to temperature-0 requests, keyed by the SHA-256 of the canonical request.
CREATE TABLE model_response_cache (
  prompt_hash       TEXT PRIMARY KEY,
  response_artifact TEXT NOT NULL,
  provider          TEXT NOT NULL,
  model             TEXT NOT NULL,
  input_tokens      INTEGER NOT NULL,
  output_tokens     INTEGER NOT NULL,
  created_us        INTEGER NOT NULL,
  hits              INTEGER NOT NULL DEFAULT 0
) STRICT;
)sql"},
      // 5: buffered events and cancel sagas (src/flow, docs/workflows.md "Events").
      {5, R"sql(
-- Which run consumed which event (a run takes each event at most once; an event may reach
-- several runs). Rows go when their event is purged after the retention.
CREATE TABLE event_deliveries (
  event_id     TEXT NOT NULL,
  run_id       TEXT NOT NULL,
  step_key     TEXT NOT NULL,
  delivered_us INTEGER NOT NULL,
  PRIMARY KEY (event_id, run_id)
) STRICT;
CREATE INDEX event_deliveries_run ON event_deliveries(run_id);
-- A run reaching wait_event looks for the earliest event of its (type, key).
CREATE INDEX events_match ON events(type, key, received_us);
-- The worker purges events older than the retention.
CREATE INDEX events_received ON events(received_us);
)sql"},
      // 6: a run's own entries (subject = run_id, most of the engine's) are found through
      // ledger_subject; indexing them twice cost a b-tree insert and a WAL page per step.
      {6, R"sql(
DROP INDEX ledger_run;
CREATE INDEX ledger_run ON ledger(run_id) WHERE run_id <> '' AND run_id <> subject;
)sql"},
      // 7: an explicit integer key for the tables read in insertion order. They had only
      // SQLite's implicit rowid, which SQL shared with PostgreSQL cannot name and VACUUM may
      // renumber. Each is rebuilt with `n INTEGER PRIMARY KEY` holding its old rowid, so
      // existing rows keep their order; `id` stays unique.
      {7, R"sql(
CREATE TABLE records_v7 (
  n          INTEGER PRIMARY KEY,
  id         TEXT NOT NULL UNIQUE,
  type       TEXT NOT NULL,
  data       TEXT NOT NULL,
  email      TEXT,
  version    INTEGER NOT NULL,
  created_us INTEGER NOT NULL,
  updated_us INTEGER NOT NULL
) STRICT;
INSERT INTO records_v7(n, id, type, data, email, version, created_us, updated_us)
  SELECT rowid, id, type, data, email, version, created_us, updated_us FROM records;
DROP TABLE records;
ALTER TABLE records_v7 RENAME TO records;
CREATE INDEX records_type ON records(type, created_us);
CREATE UNIQUE INDEX records_type_email ON records(type, email) WHERE email IS NOT NULL;

CREATE TABLE fact_sources_v7 (
  n          INTEGER PRIMARY KEY,
  fact_n     INTEGER NOT NULL REFERENCES facts(n) ON DELETE CASCADE,
  artifact   TEXT NOT NULL DEFAULT '',
  span_begin INTEGER NOT NULL DEFAULT -1,
  span_end   INTEGER NOT NULL DEFAULT -1,
  agent      TEXT NOT NULL,
  run_id     TEXT NOT NULL DEFAULT '',
  step_id    TEXT NOT NULL DEFAULT '',
  confidence REAL NOT NULL,
  added_us   INTEGER NOT NULL,
  ledger_seq INTEGER NOT NULL
) STRICT;
INSERT INTO fact_sources_v7(n, fact_n, artifact, span_begin, span_end, agent, run_id, step_id,
                            confidence, added_us, ledger_seq)
  SELECT rowid, fact_n, artifact, span_begin, span_end, agent, run_id, step_id, confidence,
         added_us, ledger_seq FROM fact_sources;
DROP TABLE fact_sources;
ALTER TABLE fact_sources_v7 RENAME TO fact_sources;
CREATE INDEX fact_sources_fact ON fact_sources(fact_n);

CREATE TABLE memory_decisions_v7 (
  n          INTEGER PRIMARY KEY,
  id         TEXT NOT NULL UNIQUE,
  subject    TEXT NOT NULL,
  decision   TEXT NOT NULL,
  decided_by TEXT NOT NULL,
  reason     TEXT NOT NULL,
  fact_ids   TEXT NOT NULL,
  run_id     TEXT NOT NULL DEFAULT '',
  step_id    TEXT NOT NULL DEFAULT '',
  time_us    INTEGER NOT NULL,
  ledger_seq INTEGER NOT NULL
) STRICT;
INSERT INTO memory_decisions_v7(n, id, subject, decision, decided_by, reason, fact_ids, run_id,
                                step_id, time_us, ledger_seq)
  SELECT rowid, id, subject, decision, decided_by, reason, fact_ids, run_id, step_id, time_us,
         ledger_seq FROM memory_decisions;
DROP TABLE memory_decisions;
ALTER TABLE memory_decisions_v7 RENAME TO memory_decisions;
CREATE INDEX memory_decisions_subject ON memory_decisions(subject, time_us);
)sql"},
      // 8: `keel runs` without a status filter (the API's run list) walks 20 entries of an
      // index in (created_us, id) order instead of scanning and sorting every run.
      {8, R"sql(
CREATE INDEX runs_created ON runs(created_us, id);
)sql"},
      // 9: each entry carries the images of the state rows its transaction changed
      // (docs/ledger-format.md, "State images"); empty for entries that changed none and for
      // every entry before this version. Opening a migrated workspace attests the rows it
      // already holds in state.baseline entries.
      {9, R"sql(
ALTER TABLE ledger ADD COLUMN state BLOB NOT NULL DEFAULT x'';
)sql"},
  };
  return m;
}

// 0: none (the normal case). Set only by ScopedSchemaVersionLimit, in tests.
int g_version_limit = 0;

}  // namespace

int CurrentSchemaVersion() {
  int newest = Migrations().back().version;
  return g_version_limit > 0 && g_version_limit < newest ? g_version_limit : newest;
}

ScopedSchemaVersionLimit::ScopedSchemaVersionLimit(int version) : previous_(g_version_limit) {
  g_version_limit = version;
}
ScopedSchemaVersionLimit::~ScopedSchemaVersionLimit() {
  g_version_limit = previous_;
}

Result<int64_t> StoredSchemaVersion(sql::Db* db) {
  return db->QueryInt("PRAGMA user_version");
}

Status Migrate(sql::Db* db) {
  KEEL_ASSIGN_OR_RETURN(int64_t have, StoredSchemaVersion(db));
  int want = CurrentSchemaVersion();
  if (have > want) {
    return FailedPrecondition("the workspace database has schema version " + std::to_string(have) +
                              ", newer than this keel knows (" + std::to_string(want) +
                              "); upgrade keel");
  }
  for (const Migration& m : Migrations()) {
    if (m.version <= have) continue;
    if (m.version > want) break;
    KEEL_RETURN_IF_ERROR(db->Begin());
    Status s = db->Exec(m.sql);
    if (s.ok()) s = db->Exec("PRAGMA user_version = " + std::to_string(m.version));
    if (s.ok()) s = db->Commit();
    if (!s.ok()) {
      db->Rollback();
      return s.WithContext("migrating the database to schema version " + std::to_string(m.version));
    }
  }
  return OkStatus();
}

}  // namespace keel::store
