// INTERNAL to src/store: the full-text index over facts (the FTS5 table `facts_fts`, schema
// migration 3), kept here because its query syntax and maintenance statements are SQLite's.
// Repositories (store/facts.cc) call these with plain search terms; nothing above
// src/store/sqlite/ builds or sees an FTS5 expression.
//
// The index is external-content: the text lives once, in `facts`, and the index row of a
// fact has the fact's number `n`. So an index row must be removed with the exact subject and
// text it was added with (FTS5 looks the tokens up to delete them).
//
// Errors: those of the statement wrapper (sql.h). A search with no terms matches nothing and
// runs no statement. Terms are quoted: their bytes never act as FTS5 operators.
//
// Thread-safety: as the Db passed in (one thread at a time).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "store/search_terms.h"

namespace keel::store::sql {

class Db;

// The FTS5 MATCH expression for `terms` joined by `join` in the text column, restricted to
// `subject` when it is not empty: `text : ("a" OR "b"*)`, `subject : "s" AND text : (...)`.
// Double quotes inside a word are doubled. Precondition: `terms` is not empty.
std::string FtsMatchExpression(const std::vector<SearchTerm>& terms, TermJoin join,
                               const std::string& subject);

// Adds fact `n`'s subject and text to the index.
Status FtsIndexFact(Db* db, int64_t n, const std::string& subject, const std::string& text);
// Removes fact `n` from the index; `subject` and `text` are what FtsIndexFact was given.
Status FtsUnindexFact(Db* db, int64_t n, const std::string& subject, const std::string& text);

// Numbers (FactRow::n) of indexed facts matching the terms, ascending, at most `limit`,
// only those >= `min_row`. Ascending order lets FTS5 stop after `limit` rows instead of
// ranking every match; `min_row` lets it seek in each doclist.
Result<std::vector<int64_t>> FtsMatchFacts(Db* db, const std::vector<SearchTerm>& terms,
                                           TermJoin join, const std::string& subject, int limit,
                                           int64_t min_row);

// Rebuilds the index of `schema`'s facts from the facts themselves (repair): every fact
// that is not superseded, as keel keeps it.
Status FtsRebuildFacts(Db* db, const std::string& schema);

// Up to `limit` differences between the index's rows and the facts that are not superseded,
// as (fact number, "indexed but not an active fact" | "an active fact missing from the
// index"). The index's tokens are not compared.
Result<std::vector<std::pair<int64_t, std::string>>> FtsIndexedRowsMismatch(Db* db, int limit);

// Bytes of the index's shadow tables (dbstat), or -1 when SQLite was built without dbstat.
int64_t FtsIndexBytes(Db* db);

}  // namespace keel::store::sql
