#include "store/sqlite/fts.h"

#include "store/sqlite/sql.h"

namespace keel::store::sql {
namespace {

// A quoted FTS5 string: double quotes inside are doubled.
std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace

std::string FtsMatchExpression(const std::vector<SearchTerm>& terms, TermJoin join,
                               const std::string& subject) {
  const char* op = join == TermJoin::kAll ? " AND " : " OR ";
  std::string body;
  for (const auto& t : terms) {
    if (!body.empty()) body += op;
    body += Quote(t.word);
    if (t.prefix) body += '*';
  }
  std::string out = "text : (" + body + ")";
  if (!subject.empty()) out = "subject : " + Quote(subject) + " AND " + out;
  return out;
}

Status FtsIndexFact(Db* db, int64_t n, const std::string& subject, const std::string& text) {
  KEEL_ASSIGN_OR_RETURN(auto* st,
                        db->Cached("INSERT INTO facts_fts(rowid, subject, text) VALUES (?, ?, ?)"));
  st->Bind(1, n).Bind(2, subject).Bind(3, text);
  Status s = st->Run();
  st->Reset();
  return s;
}

Status FtsUnindexFact(Db* db, int64_t n, const std::string& subject, const std::string& text) {
  KEEL_ASSIGN_OR_RETURN(auto* st, db->Cached("INSERT INTO facts_fts(facts_fts, rowid, subject, "
                                             "text) VALUES ('delete', ?, ?, ?)"));
  st->Bind(1, n).Bind(2, subject).Bind(3, text);
  Status s = st->Run();
  st->Reset();
  return s;
}

Result<std::vector<int64_t>> FtsMatchFacts(Db* db, const std::vector<SearchTerm>& terms,
                                           TermJoin join, const std::string& subject, int limit,
                                           int64_t min_row) {
  if (terms.empty()) return std::vector<int64_t>();
  KEEL_ASSIGN_OR_RETURN(auto* st, db->Cached("SELECT rowid FROM facts_fts WHERE facts_fts MATCH ? "
                                             "AND rowid >= ? ORDER BY rowid LIMIT ?"));
  st->Bind(1, FtsMatchExpression(terms, join, subject))
      .Bind(2, min_row)
      .Bind(3, static_cast<int64_t>(limit));
  return CollectRows<int64_t>(st, [](const Stmt& s) { return s.Int(0); });
}

int64_t FtsIndexBytes(Db* db) {
  auto bytes =
      db->QueryInt("SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name LIKE 'facts_fts%'");
  return bytes.ok() ? *bytes : -1;
}

Status FtsRebuildFacts(Db* db, const std::string& schema) {
  KEEL_RETURN_IF_ERROR(
      db->Exec("INSERT INTO " + schema + ".facts_fts(facts_fts) VALUES ('rebuild')"));
  return db->Exec("INSERT INTO " + schema +
                  ".facts_fts(facts_fts, rowid, subject, text) SELECT 'delete', n, subject, "
                  "text FROM " +
                  schema + ".facts WHERE superseded_by IS NOT NULL");
}

Result<std::vector<std::pair<int64_t, std::string>>> FtsIndexedRowsMismatch(Db* db, int limit) {
  // facts_fts_docsize holds one row per indexed document (FTS5's shadow table).
  KEEL_ASSIGN_OR_RETURN(
      auto st,
      db->Prepare("SELECT id, 'indexed but not an active fact' FROM facts_fts_docsize WHERE id "
                  "NOT IN (SELECT n FROM facts WHERE superseded_by IS NULL) UNION ALL SELECT n, "
                  "'an active fact missing from the index' FROM facts WHERE superseded_by IS "
                  "NULL AND n NOT IN (SELECT id FROM facts_fts_docsize) LIMIT ?"));
  st->Bind(1, static_cast<int64_t>(limit));
  return CollectRows<std::pair<int64_t, std::string>>(
      st.get(), [](const Stmt& s) { return std::make_pair(s.Int(0), s.Text(1)); });
}

}  // namespace keel::store::sql
