#!/usr/bin/env bash
# Proves tests/check_portable_sql.sh can fail: a tree with one violation of each kind must
# fail and list every one as file:line; the same tree without them, and SQLite code kept
# in store/sqlite/, must pass.
set -euo pipefail
lint="${1:?usage: check_portable_sql_test.sh <repo>/tests/check_portable_sql.sh}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src/store/sqlite" "$tmp/src/memory"

cat >"$tmp/src/store/sqlite/sql.cc" <<'CC'
#include <sqlite3.h>
// PRAGMA journal_mode = WAL; INSERT OR IGNORE; ORDER BY rowid; GLOB
CC
cat >"$tmp/src/store/clean.h" <<'CC'
#pragma once
// A global lock: INSERT ... ON CONFLICT DO NOTHING, ORDER BY n.
CC
"$lint" "$tmp/src" >/dev/null || { echo "FAIL: a clean tree was refused"; exit 1; }

cat >"$tmp/src/store/bad.cc" <<'CC'
const char* a = "INSERT OR REPLACE INTO t VALUES (1)";
const char* b = "insert  or ignore into t values (1)";
const char* c = "SELECT last_insert_rowid()";
const char* d = "SELECT x FROM t ORDER BY ROWID";
const char* e = "pragma user_version";
const char* f = "SELECT x FROM t WHERE y GLOB 'a*'";
#include <sqlite3.h>
CC
if out=$("$lint" "$tmp/src" 2>&1); then
  echo "FAIL: violations passed the lint"
  exit 1
fi
for line in 1 2 3 4 5 6 7; do
  grep -q "^store/bad.cc:$line:" <<<"$out" || { echo "FAIL: store/bad.cc:$line not listed"; echo "$out"; exit 1; }
done
if grep -q 'clean.h\|sqlite/sql.cc' <<<"$out"; then
  echo "FAIL: allowed lines were listed"
  echo "$out"
  exit 1
fi
echo "check_portable_sql_test: the lint fails on each kind of violation and lists it"
