#!/usr/bin/env bash
# Fails when SQLite-only SQL or the SQLite API appears in src/ outside src/store/sqlite/
# (docs/architecture.md, "Store"; docs/testing.md, "Lints"): the repositories above that
# folder keep to the SQL subset PostgreSQL shares. Lists file:line of every hit.
#
# Usage: check_portable_sql.sh <repo>/src
#
# Flagged, case-insensitive: `INSERT OR <conflict clause>` (use ON CONFLICT), `rowid` and
# `last_insert_rowid` (use an explicit key and RETURNING), `PRAGMA` (C++ `#pragma` lines
# excepted), `GLOB` as a word (use LIKE or compare in C++) and `sqlite3` (the C API,
# headers, the sqlite3 shell). Comments count too: a comment that needs one of these words
# belongs in src/store/sqlite/.
set -euo pipefail

src="${1:?usage: check_portable_sql.sh <repo>/src}"
cd "$src"

# Files outside src/store/sqlite/ allowed to name SQLite, each with the reason. Keep short;
# prefer moving SQLite-specific code and tests into src/store/sqlite/.
allowed=(
  # The help text of `keel verify --no-integrity` tells users which SQLite check it skips.
  "cli/commands_integrity.cc"
  # Durability tests of the statement wrapper (fsync errors poison the Db) open bare
  # databases on the fault VFS and set their journal mode and synchronous level.
  "store/durability_test.cc"
  # Pins the SQLite settings a workspace connection runs with (WAL, synchronous=FULL,
  # foreign keys, page size) and forges a newer schema version.
  "store/workspace_test.cc"
)

pattern='\binsert[[:space:]]+or[[:space:]]+(ignore|replace|abort|fail|rollback)\b|rowid|\bpragma\b|\bglob\b|sqlite3'

hits=$(grep -rnEi --include='*.h' --include='*.cc' "$pattern" . |
       grep -Eiv '^[^:]+:[0-9]+:[[:space:]]*#[[:space:]]*pragma\b' |
       sed 's#^\./##' | grep -v '^store/sqlite/' || true)
for f in "${allowed[@]}"; do
  hits=$(printf '%s\n' "$hits" | grep -v "^$f:" || true)
done
hits=$(printf '%s\n' "$hits" | sed '/^$/d')
if [ -n "$hits" ]; then
  printf '%s\n' "$hits"
  echo "check_portable_sql: $(printf '%s\n' "$hits" | wc -l) line(s) use SQLite outside" \
       "src/store/sqlite/ (INSERT OR, rowid, PRAGMA, GLOB, sqlite3); move the code there or" \
       "write portable SQL (docs/architecture.md, \"Store\")" >&2
  exit 1
fi
echo "check_portable_sql: no SQLite-only SQL outside src/store/sqlite/"
