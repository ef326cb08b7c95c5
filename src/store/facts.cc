#include "store/facts.h"

#include "store/sqlite/database.h"
#include "store/sqlite/fts.h"
#include "store/sqlite/sql.h"

namespace keel::store {
namespace {

constexpr char kFactColumns[] =
    "f.n, f.id, f.subject, f.text, f.key, f.value, f.norm, f.confidence, f.scope, f.expires_us, "
    "f.valid_from_us, f.valid_to_us, f.superseded_by, f.supersedes, f.source_artifact, "
    "f.span_begin, f.span_end, f.agent, f.run_id, f.step_id, f.created_us, f.ledger_seq";
constexpr int kFactColumnCount = 22;

double Real(const sql::Stmt& st, int col) {
  // The Stmt layer exposes integers and text; REAL columns are read through their text form,
  // which SQLite renders with full precision.
  return std::strtod(st.Text(col).c_str(), nullptr);
}

// The fact columns (kFactColumns) from column `c` on.
FactRow ReadFact(const sql::Stmt& st, int c = 0) {
  FactRow r;
  r.n = st.Int(c);
  r.id = st.Text(c + 1);
  r.subject = st.Text(c + 2);
  r.text = st.Text(c + 3);
  r.key = st.Text(c + 4);
  r.value = st.Text(c + 5);
  r.norm = st.Text(c + 6);
  r.confidence = Real(st, c + 7);
  r.scope = st.Text(c + 8);
  r.expires_us = st.Int(c + 9);
  r.valid_from_us = st.Int(c + 10);
  r.valid_to_us = st.Int(c + 11);
  r.superseded_by = st.IsNull(c + 12) ? "" : st.Text(c + 12);
  r.supersedes = st.IsNull(c + 13) ? "" : st.Text(c + 13);
  r.source_artifact = st.Text(c + 14);
  r.span_begin = st.Int(c + 15);
  r.span_end = st.Int(c + 16);
  r.agent = st.Text(c + 17);
  r.run_id = st.Text(c + 18);
  r.step_id = st.Text(c + 19);
  r.created_us = st.Int(c + 20);
  r.ledger_seq = st.Int(c + 21);
  return r;
}

// Confidence is bound as text so that the Stmt layer needs no REAL binding; the column's
// REAL affinity under STRICT converts it ('0.75' -> 0.75).
std::string RealText(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

Result<std::vector<FactRow>> Rows(sql::Stmt* st) {
  return sql::CollectRows<FactRow>(st, [](const sql::Stmt& s) { return ReadFact(s); });
}

Result<std::optional<FactRow>> FindFactDb(sql::Db* db, const std::string& id) {
  static const std::string kSql =
      std::string("SELECT ") + kFactColumns + " FROM facts f WHERE f.id = ?";
  KEEL_ASSIGN_OR_RETURN(auto* st, db->Cached(kSql.c_str()));
  st->Bind(1, id);
  KEEL_ASSIGN_OR_RETURN(auto rows, Rows(st));
  if (rows.empty()) return std::optional<FactRow>();
  return std::optional<FactRow>(std::move(rows[0]));
}

Result<std::vector<FactSourceRow>> FactSourcesDb(sql::Db* db, int64_t fact_n) {
  KEEL_ASSIGN_OR_RETURN(auto* st,
                        db->Cached("SELECT fact_n, artifact, span_begin, span_end, agent, "
                                   "run_id, step_id, confidence, added_us, ledger_seq FROM "
                                   "fact_sources WHERE fact_n = ? ORDER BY n"));
  st->Bind(1, fact_n);
  std::vector<FactSourceRow> out;
  for (;;) {
    KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    FactSourceRow s;
    s.fact_n = st->Int(0);
    s.artifact = st->Text(1);
    s.span_begin = st->Int(2);
    s.span_end = st->Int(3);
    s.agent = st->Text(4);
    s.run_id = st->Text(5);
    s.step_id = st->Text(6);
    s.confidence = Real(*st, 7);
    s.added_us = st->Int(8);
    s.ledger_seq = st->Int(9);
    out.push_back(std::move(s));
  }
  st->Reset();
  return out;
}

constexpr char kLatestSql[] =
    "SELECT 0.0, f.n, f.id, f.subject, f.text, f.key, f.value, f.norm, f.confidence, f.scope, "
    "f.expires_us, f.valid_from_us, f.valid_to_us, f.superseded_by, f.supersedes, "
    "f.source_artifact, f.span_begin, f.span_end, f.agent, f.run_id, f.step_id, f.created_us, "
    "f.ledger_seq FROM facts f WHERE f.subject = ?3 AND f.superseded_by IS NULL "
    "AND (f.expires_us = 0 OR f.expires_us > ?4) AND (f.valid_to_us = 0 OR f.valid_to_us > ?4) "
    "AND (?5 = 1 OR f.scope = 'long') ORDER BY f.created_us DESC, f.n DESC LIMIT ?2";

Result<std::vector<FactHit>> RunSearch(sql::Db* db, const char* sql_text, const FactSearch& q) {
  KEEL_ASSIGN_OR_RETURN(auto* st, db->Cached(sql_text));
  st->Bind(1, "")
      .Bind(2, static_cast<int64_t>(q.limit))
      .Bind(3, q.subject)
      .Bind(4, q.now_us)
      .Bind(5, static_cast<int64_t>(q.include_short ? 1 : 0));
  return sql::CollectRows<FactHit>(st, [](const sql::Stmt& s) {
    FactHit h;
    h.bm25 = Real(s, 0);
    h.row = ReadFact(s, 1);  // the fact columns follow the score
    return h;
  });
}

Result<std::optional<std::string>> FindOriginDb(sql::Db* db, const std::string& artifact) {
  KEEL_ASSIGN_OR_RETURN(auto* st,
                        db->Cached("SELECT origin FROM artifact_origins WHERE artifact = ?"));
  st->Bind(1, artifact);
  KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
  std::optional<std::string> out;
  if (row) out = st->Text(0);
  st->Reset();
  return out;
}

Status DeleteFromIndex(sql::Db* db, const FactRow& r) {
  return sql::FtsUnindexFact(db, r.n, r.subject, r.text);
}

}  // namespace

static_assert(kFactColumnCount == 22);

Status InsertFact(Txn& txn, FactRow* r) {
  sql::Db* db = txn.db();
  KEEL_ASSIGN_OR_RETURN(
      auto* st,
      db->Cached("INSERT INTO facts(id, subject, text, key, value, norm, confidence, scope, "
                 "expires_us, valid_from_us, valid_to_us, superseded_by, supersedes, "
                 "source_artifact, span_begin, span_end, agent, run_id, step_id, created_us, "
                 "ledger_seq) VALUES (?,?,?,?,?,?,?,?,?,?,?,NULL,?,?,?,?,?,?,?,?,?) RETURNING n"));
  st->Bind(1, r->id)
      .Bind(2, r->subject)
      .Bind(3, r->text)
      .Bind(4, r->key)
      .Bind(5, r->value)
      .Bind(6, r->norm)
      .Bind(7, RealText(r->confidence))
      .Bind(8, r->scope)
      .Bind(9, r->expires_us)
      .Bind(10, r->valid_from_us)
      .Bind(11, r->valid_to_us);
  if (r->supersedes.empty()) {
    st->BindNull(12);
  } else {
    st->Bind(12, r->supersedes);
  }
  st->Bind(13, r->source_artifact)
      .Bind(14, r->span_begin)
      .Bind(15, r->span_end)
      .Bind(16, r->agent)
      .Bind(17, r->run_id)
      .Bind(18, r->step_id)
      .Bind(19, r->created_us)
      .Bind(20, r->ledger_seq);
  KEEL_ASSIGN_OR_RETURN(auto n,
                        sql::FirstRow<int64_t>(st, [](const sql::Stmt& s) { return s.Int(0); }));
  if (!n) return Internal("no number returned for the inserted fact");
  r->n = *n;
  return sql::FtsIndexFact(db, r->n, r->subject, r->text);
}

Status InsertFactSource(Txn& txn, const FactSourceRow& src) {
  KEEL_ASSIGN_OR_RETURN(auto* st,
                        txn.db()->Cached("INSERT INTO fact_sources(fact_n, artifact, span_begin, "
                                         "span_end, agent, run_id, step_id, confidence, added_us, "
                                         "ledger_seq) VALUES (?,?,?,?,?,?,?,?,?,?)"));
  st->Bind(1, src.fact_n)
      .Bind(2, src.artifact)
      .Bind(3, src.span_begin)
      .Bind(4, src.span_end)
      .Bind(5, src.agent)
      .Bind(6, src.run_id)
      .Bind(7, src.step_id)
      .Bind(8, RealText(src.confidence))
      .Bind(9, src.added_us)
      .Bind(10, src.ledger_seq);
  Status s = st->Run();
  st->Reset();
  return s;
}

Status SetFactConfidence(Txn& txn, int64_t n, double confidence) {
  KEEL_ASSIGN_OR_RETURN(auto* st, txn.db()->Cached("UPDATE facts SET confidence = ? WHERE n = ?"));
  st->Bind(1, RealText(confidence)).Bind(2, n);
  Status s = st->Run();
  st->Reset();
  return s;
}

Status SupersedeFact(Txn& txn, const FactRow& old, const std::string& new_id, int64_t valid_to_us) {
  sql::Db* db = txn.db();
  KEEL_RETURN_IF_ERROR(DeleteFromIndex(db, old));
  KEEL_ASSIGN_OR_RETURN(auto* st, db->Cached("UPDATE facts SET superseded_by = ?, valid_to_us = "
                                             "? WHERE n = ? AND superseded_by IS NULL"));
  st->Bind(1, new_id).Bind(2, valid_to_us).Bind(3, old.n);
  Status s = st->Run();
  st->Reset();
  return s;
}

Status DeleteFacts(Txn& txn, const std::vector<FactRow>& rows) {
  sql::Db* db = txn.db();
  for (const FactRow& r : rows) {
    if (r.superseded_by.empty()) KEEL_RETURN_IF_ERROR(DeleteFromIndex(db, r));
    KEEL_ASSIGN_OR_RETURN(auto* src, db->Cached("DELETE FROM fact_sources WHERE fact_n = ?"));
    src->Bind(1, r.n);
    Status s = src->Run();
    src->Reset();
    KEEL_RETURN_IF_ERROR(s);
    KEEL_ASSIGN_OR_RETURN(auto* st, db->Cached("DELETE FROM facts WHERE n = ?"));
    st->Bind(1, r.n);
    s = st->Run();
    st->Reset();
    KEEL_RETURN_IF_ERROR(s);
  }
  return OkStatus();
}

Result<std::optional<FactRow>> FindFact(Txn& txn, const std::string& id) {
  return FindFactDb(txn.db(), id);
}

Result<std::optional<FactRow>> FindFact(Workspace& ws, const std::string& id) {
  Reader rd(ws);
  return FindFactDb(rd.db(), id);
}

Result<std::vector<FactRow>> FindFactsByNorm(Txn& txn, const std::string& subject,
                                             const std::string& norm) {
  static const std::string kSql = std::string("SELECT ") + kFactColumns +
                                  " FROM facts f WHERE f.subject = ? AND f.norm = ? AND "
                                  "f.superseded_by IS NULL ORDER BY f.n LIMIT 50";
  KEEL_ASSIGN_OR_RETURN(auto* st, txn.db()->Cached(kSql.c_str()));
  st->Bind(1, subject).Bind(2, norm);
  return Rows(st);
}

Result<std::vector<FactRow>> FindFactsByKeyValue(Txn& txn, const std::string& subject,
                                                 const std::string& key, const std::string& value) {
  static const std::string kSql = std::string("SELECT ") + kFactColumns +
                                  " FROM facts f WHERE f.subject = ? AND f.key = ? AND "
                                  "f.value = ? AND f.superseded_by IS NULL ORDER BY f.n LIMIT 50";
  KEEL_ASSIGN_OR_RETURN(auto* st, txn.db()->Cached(kSql.c_str()));
  st->Bind(1, subject).Bind(2, key).Bind(3, value);
  return Rows(st);
}

Result<std::vector<FactSourceRow>> FactSources(Workspace& ws, int64_t fact_n) {
  Reader rd(ws);
  return FactSourcesDb(rd.db(), fact_n);
}

Result<std::vector<FactSourceRow>> FactSources(Txn& txn, int64_t fact_n) {
  return FactSourcesDb(txn.db(), fact_n);
}

Result<std::vector<FactRow>> FactsBySubject(Workspace& ws, const std::string& subject) {
  static const std::string kSql = std::string("SELECT ") + kFactColumns +
                                  " FROM facts f WHERE f.subject = ? ORDER BY f.created_us DESC, "
                                  "f.n DESC";
  Reader rd(ws);
  KEEL_ASSIGN_OR_RETURN(auto* st, rd.db()->Cached(kSql.c_str()));
  st->Bind(1, subject);
  return Rows(st);
}

Result<std::vector<FactRow>> ExpiredFacts(Txn& txn, int64_t now_us) {
  static const std::string kSql = std::string("SELECT ") + kFactColumns +
                                  " FROM facts f WHERE f.expires_us > 0 AND f.expires_us <= ? "
                                  "ORDER BY f.n";
  KEEL_ASSIGN_OR_RETURN(auto* st, txn.db()->Cached(kSql.c_str()));
  st->Bind(1, now_us);
  return Rows(st);
}

namespace {
Result<std::optional<FactRow>> FactByRowDb(sql::Db* db, int64_t n) {
  static const std::string kSql =
      std::string("SELECT ") + kFactColumns + " FROM facts f WHERE f.n = ?";
  KEEL_ASSIGN_OR_RETURN(auto* st, db->Cached(kSql.c_str()));
  st->Bind(1, n);
  KEEL_ASSIGN_OR_RETURN(auto rows, Rows(st));
  if (rows.empty()) return std::optional<FactRow>();
  return std::optional<FactRow>(std::move(rows[0]));
}
}  // namespace

Result<std::vector<int64_t>> SearchFactRows(Workspace& ws, const FactTextSearch& search, int limit,
                                            int64_t min_row) {
  Reader rd(ws);
  return sql::FtsMatchFacts(rd.db(), search.terms, search.join, search.subject, limit, min_row);
}

Result<std::vector<int64_t>> SearchFactRows(Txn& txn, const FactTextSearch& search, int limit,
                                            int64_t min_row) {
  return sql::FtsMatchFacts(txn.db(), search.terms, search.join, search.subject, limit, min_row);
}

namespace {
Result<int64_t> MaxRowDb(sql::Db* db) {
  KEEL_ASSIGN_OR_RETURN(auto* st, db->Cached("SELECT COALESCE(MAX(n), 0) FROM facts"));
  KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
  int64_t v = row ? st->Int(0) : 0;
  st->Reset();
  return v;
}
}  // namespace

Result<int64_t> MaxFactRow(Workspace& ws) {
  Reader rd(ws);
  return MaxRowDb(rd.db());
}

Result<int64_t> MaxFactRow(Txn& txn) {
  return MaxRowDb(txn.db());
}

Status ReadSnapshot(Workspace& ws, const std::function<Status()>& fn) {
  Reader rd(ws);
  sql::Db* db = rd.db();
  if (db->in_transaction()) return fn();
  KEEL_RETURN_IF_ERROR(db->Exec("BEGIN"));
  Status s = fn();
  Status c = db->Exec("COMMIT");
  if (!c.ok()) db->Rollback();
  return s.ok() ? c : s;
}

Result<std::optional<FactRow>> FactByRow(Workspace& ws, int64_t n) {
  Reader rd(ws);
  return FactByRowDb(rd.db(), n);
}

Result<std::optional<FactRow>> FactByRow(Txn& txn, int64_t n) {
  return FactByRowDb(txn.db(), n);
}

Result<std::vector<std::pair<int64_t, std::string>>> ActiveNorms(Txn& txn,
                                                                 const std::string& subject,
                                                                 int limit) {
  KEEL_ASSIGN_OR_RETURN(auto* st, txn.db()->Cached("SELECT n, norm FROM facts INDEXED BY "
                                                   "facts_norm WHERE subject = ? AND "
                                                   "superseded_by IS NULL LIMIT ?"));
  st->Bind(1, subject).Bind(2, static_cast<int64_t>(limit));
  std::vector<std::pair<int64_t, std::string>> out;
  for (;;) {
    KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    out.emplace_back(st->Int(0), st->Text(1));
  }
  st->Reset();
  return out;
}

Result<std::vector<FactHit>> LatestFacts(Workspace& ws, const FactSearch& q) {
  Reader rd(ws);
  return RunSearch(rd.db(), kLatestSql, q);
}

Result<FactCounts> CountFacts(Workspace& ws, int64_t now_us) {
  Reader rd(ws);
  sql::Db* db = rd.db();
  FactCounts c;
  KEEL_ASSIGN_OR_RETURN(auto st,
                        db->Prepare("SELECT "
                                    "COALESCE(SUM(superseded_by IS NULL AND (expires_us = 0 OR "
                                    "expires_us > ?1)), 0), "
                                    "COALESCE(SUM(superseded_by IS NOT NULL), 0), "
                                    "COALESCE(SUM(superseded_by IS NULL AND expires_us > 0 AND "
                                    "expires_us <= ?1), 0) FROM facts"));
  st->Bind(1, now_us);
  KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
  if (row) {
    c.active = st->Int(0);
    c.superseded = st->Int(1);
    c.expired = st->Int(2);
  }
  KEEL_ASSIGN_OR_RETURN(c.sources, db->QueryInt("SELECT COUNT(*) FROM fact_sources"));
  KEEL_ASSIGN_OR_RETURN(c.merged, db->QueryInt("SELECT COUNT(DISTINCT fact_n) FROM fact_sources"));
  KEEL_ASSIGN_OR_RETURN(c.summaries, db->QueryInt("SELECT COUNT(*) FROM memory_summaries"));
  KEEL_ASSIGN_OR_RETURN(c.decisions, db->QueryInt("SELECT COUNT(*) FROM memory_decisions"));
  return c;
}

Status InsertSummary(Txn& txn, const SummaryRow& r) {
  KEEL_ASSIGN_OR_RETURN(auto* st,
                        txn.db()->Cached("INSERT INTO memory_summaries(subject, version, artifact, "
                                         "parent, agent, run_id, step_id, created_us, ledger_seq) "
                                         "VALUES (?,?,?,?,?,?,?,?,?)"));
  st->Bind(1, r.subject).Bind(2, r.version).Bind(3, r.artifact);
  if (r.parent.empty()) {
    st->BindNull(4);
  } else {
    st->Bind(4, r.parent);
  }
  st->Bind(5, r.agent)
      .Bind(6, r.run_id)
      .Bind(7, r.step_id)
      .Bind(8, r.created_us)
      .Bind(9, r.ledger_seq);
  Status s = st->Run();
  st->Reset();
  return s;
}

namespace {
constexpr char kSummarySql[] =
    "SELECT subject, version, artifact, parent, agent, run_id, step_id, created_us, ledger_seq "
    "FROM memory_summaries WHERE subject = ? ORDER BY version DESC";
Result<std::vector<SummaryRow>> SummaryRowsDb(sql::Db* db, const std::string& subject,
                                              bool latest_only) {
  KEEL_ASSIGN_OR_RETURN(auto* st, db->Cached(kSummarySql));
  st->Bind(1, subject);
  std::vector<SummaryRow> out;
  for (;;) {
    KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    SummaryRow r;
    r.subject = st->Text(0);
    r.version = st->Int(1);
    r.artifact = st->Text(2);
    r.parent = st->IsNull(3) ? "" : st->Text(3);
    r.agent = st->Text(4);
    r.run_id = st->Text(5);
    r.step_id = st->Text(6);
    r.created_us = st->Int(7);
    r.ledger_seq = st->Int(8);
    out.push_back(std::move(r));
    if (latest_only) break;
  }
  st->Reset();
  return out;
}
}  // namespace

Result<std::optional<SummaryRow>> LatestSummaryRow(Txn& txn, const std::string& subject) {
  KEEL_ASSIGN_OR_RETURN(auto rows, SummaryRowsDb(txn.db(), subject, true));
  if (rows.empty()) return std::optional<SummaryRow>();
  return std::optional<SummaryRow>(std::move(rows[0]));
}

Result<std::vector<SummaryRow>> SummaryRows(Workspace& ws, const std::string& subject) {
  Reader rd(ws);
  return SummaryRowsDb(rd.db(), subject, false);
}

Status InsertDecision(Txn& txn, const DecisionRow& r) {
  KEEL_ASSIGN_OR_RETURN(auto* st,
                        txn.db()->Cached("INSERT INTO memory_decisions(id, subject, decision, "
                                         "decided_by, reason, fact_ids, run_id, step_id, time_us, "
                                         "ledger_seq) VALUES (?,?,?,?,?,?,?,?,?,?)"));
  st->Bind(1, r.id)
      .Bind(2, r.subject)
      .Bind(3, r.decision)
      .Bind(4, r.decided_by)
      .Bind(5, r.reason)
      .Bind(6, r.fact_ids_json)
      .Bind(7, r.run_id)
      .Bind(8, r.step_id)
      .Bind(9, r.time_us)
      .Bind(10, r.ledger_seq);
  Status s = st->Run();
  st->Reset();
  return s;
}

Result<std::vector<DecisionRow>> DecisionRows(Workspace& ws, const std::string& subject) {
  Reader rd(ws);
  KEEL_ASSIGN_OR_RETURN(auto* st,
                        rd.db()->Cached("SELECT id, subject, decision, decided_by, reason, "
                                        "fact_ids, run_id, step_id, time_us, ledger_seq FROM "
                                        "memory_decisions WHERE subject = ? ORDER BY time_us, n"));
  st->Bind(1, subject);
  std::vector<DecisionRow> out;
  for (;;) {
    KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    DecisionRow r;
    r.id = st->Text(0);
    r.subject = st->Text(1);
    r.decision = st->Text(2);
    r.decided_by = st->Text(3);
    r.reason = st->Text(4);
    r.fact_ids_json = st->Text(5);
    r.run_id = st->Text(6);
    r.step_id = st->Text(7);
    r.time_us = st->Int(8);
    r.ledger_seq = st->Int(9);
    out.push_back(std::move(r));
  }
  st->Reset();
  return out;
}

Status InsertRetrieval(Txn& txn, const RetrievalRow& r) {
  KEEL_ASSIGN_OR_RETURN(
      auto* st, txn.db()->Cached("INSERT INTO memory_retrievals(id, time_us, query, subject, "
                                 "agent, workflow, run_id, step_id, budget_tokens, "
                                 "tokens_used, returned, returned_count, used, used_count, "
                                 "marked_us, ledger_seq) VALUES "
                                 "(?,?,?,?,?,?,?,?,?,?,?,?,NULL,0,0,?)"));
  st->Bind(1, r.id)
      .Bind(2, r.time_us)
      .Bind(3, r.query)
      .Bind(4, r.subject)
      .Bind(5, r.agent)
      .Bind(6, r.workflow)
      .Bind(7, r.run_id)
      .Bind(8, r.step_id)
      .Bind(9, r.budget_tokens)
      .Bind(10, r.tokens_used)
      .Bind(11, r.returned_json)
      .Bind(12, r.returned_count)
      .Bind(13, r.ledger_seq);
  Status s = st->Run();
  st->Reset();
  return s;
}

Result<std::optional<RetrievalRow>> FindRetrieval(Txn& txn, const std::string& id) {
  KEEL_ASSIGN_OR_RETURN(auto* st,
                        txn.db()->Cached("SELECT id, time_us, query, subject, agent, workflow, "
                                         "run_id, step_id, budget_tokens, tokens_used, returned, "
                                         "returned_count, used, used_count, marked_us, ledger_seq "
                                         "FROM memory_retrievals WHERE id = ?"));
  st->Bind(1, id);
  KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
  std::optional<RetrievalRow> out;
  if (row) {
    RetrievalRow r;
    r.id = st->Text(0);
    r.time_us = st->Int(1);
    r.query = st->Text(2);
    r.subject = st->Text(3);
    r.agent = st->Text(4);
    r.workflow = st->Text(5);
    r.run_id = st->Text(6);
    r.step_id = st->Text(7);
    r.budget_tokens = st->Int(8);
    r.tokens_used = st->Int(9);
    r.returned_json = st->Text(10);
    r.returned_count = st->Int(11);
    if (!st->IsNull(12)) r.used_json = st->Text(12);
    r.used_count = st->Int(13);
    r.marked_us = st->Int(14);
    r.ledger_seq = st->Int(15);
    out = std::move(r);
  }
  st->Reset();
  return out;
}

Status SetRetrievalUsed(Txn& txn, const std::string& id, const std::string& used_json,
                        int64_t used_count, int64_t marked_us) {
  KEEL_ASSIGN_OR_RETURN(auto* st, txn.db()->Cached("UPDATE memory_retrievals SET used = ?, "
                                                   "used_count = ?, marked_us = ? WHERE id = ?"));
  st->Bind(1, used_json).Bind(2, used_count).Bind(3, marked_us).Bind(4, id);
  Status s = st->Run();
  st->Reset();
  return s;
}

Result<std::vector<RetrievalAggregate>> AggregateRetrievals(Workspace& ws,
                                                            const std::string& group_by) {
  std::string col;
  if (group_by.empty()) {
    col = "''";
  } else if (group_by == "agent" || group_by == "workflow") {
    col = group_by;
  } else {
    return InvalidArgument("retrievals can be grouped by agent or workflow, not '" + group_by +
                           "'");
  }
  // hit: some returned fact was used; miss: marked with none used, or nothing was returned;
  // pending: facts returned, not marked yet (docs/memory.md, "Telemetry").
  std::string sql = "SELECT " + col +
                    " AS g, COUNT(*), "
                    "COALESCE(SUM(used_count > 0), 0), "
                    "COALESCE(SUM((used IS NOT NULL AND used_count = 0) OR (used IS NULL AND "
                    "returned_count = 0)), 0), "
                    "COALESCE(SUM(used IS NULL AND returned_count > 0), 0), "
                    "COALESCE(SUM(returned_count), 0), COALESCE(SUM(used_count), 0) "
                    "FROM memory_retrievals GROUP BY g ORDER BY g";
  Reader rd(ws);
  KEEL_ASSIGN_OR_RETURN(auto st, rd.db()->Prepare(sql));
  std::vector<RetrievalAggregate> out;
  for (;;) {
    KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    RetrievalAggregate a;
    a.name = st->Text(0);
    a.retrievals = st->Int(1);
    a.hits = st->Int(2);
    a.misses = st->Int(3);
    a.pending = st->Int(4);
    a.returned = st->Int(5);
    a.used = st->Int(6);
    out.push_back(std::move(a));
  }
  return out;
}

Status InsertArtifactOrigin(Txn& txn, const std::string& artifact, const std::string& origin,
                            int64_t time_us, int64_t ledger_seq) {
  KEEL_ASSIGN_OR_RETURN(auto* st,
                        txn.db()->Cached("INSERT INTO artifact_origins(artifact, origin, time_us, "
                                         "ledger_seq) VALUES (?,?,?,?) ON CONFLICT(artifact) DO "
                                         "NOTHING"));
  st->Bind(1, artifact).Bind(2, origin).Bind(3, time_us).Bind(4, ledger_seq);
  Status s = st->Run();
  st->Reset();
  return s;
}

Result<std::optional<std::string>> FindArtifactOrigin(Workspace& ws, const std::string& artifact) {
  Reader rd(ws);
  return FindOriginDb(rd.db(), artifact);
}

Result<std::optional<std::string>> FindArtifactOrigin(Txn& txn, const std::string& artifact) {
  return FindOriginDb(txn.db(), artifact);
}

Result<MemoryFootprint> MeasureFootprint(Workspace& ws) {
  Reader rd(ws);
  MemoryFootprint f;
  KEEL_ASSIGN_OR_RETURN(f.db_bytes, sql::DatabaseBytes(rd.db()));
  f.fts_bytes = sql::FtsIndexBytes(rd.db());
  return f;
}

}  // namespace keel::store
