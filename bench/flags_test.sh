#!/usr/bin/env bash
# Checks one bench driver's flag parsing (bench/bench_flags.h) through the real binary:
# every bad flag is refused with exit 2 and a message naming it, --help exits 0, and none
# of them starts a measurement. Usage: bench/flags_test.sh BINARY [NUMBER_FLAG]
set -uo pipefail
bin="$1" flag="${2:-}"
fail=0
expect() {  # expect RC PATTERN ARGS...
  local rc="$1" pat="$2"
  shift 2
  out=$("$bin" "$@" 2>&1)
  got=$?
  if [ "$got" != "$rc" ] || ! grep -qF -- "$pat" <<<"$out"; then
    echo "FAIL: $bin $*: exit $got (want $rc), output:"
    echo "$out" | head -5
    fail=1
  fi
}
expect 2 "unknown option '--no-such-flag'" --no-such-flag 1
expect 2 "unknown option 'stray'" stray
if [ -n "$flag" ]; then
  expect 2 "$flag needs a value" "$flag"
  for bad in abc 12x 99999999999999999999 -1 ""; do
    expect 2 "$flag: expected a whole number" "$flag" "$bad"
  done
fi
expect 0 "usage: scripts/bench" --help
exit $fail
