// INTERNAL to src/store: a SQLite VFS layered over the default one that hands a
// transaction's WAL writes to the kernel in one write at commit instead of two per page.
//
// Why: a durable commit costs one fsync, and on a virtual machine every system call costs
// microseconds; SQLite writes each WAL frame as a 24-byte header and a page, so a commit
// of eight pages made sixteen pwrite calls before its fsync. The data written and the
// order of write, sync and wal-index update are unchanged (wal_vfs.cc explains why no
// reader can see a buffered frame), so durability is exactly SQLite's.
//
// Only files SQLite opens as WAL are buffered; the database file, journals and shared
// memory go straight through. A write error surfaces at the next sync, read or close of
// the WAL instead of at the write; SQLite treats either as a failed commit.
//
// Thread-safety: registration is once per process and thread-safe; a file is used by one
// connection at a time, as SQLite guarantees.
#pragma once

namespace keel::store::sql {

inline constexpr char kWalVfsName[] = "keel-wal";

// Registers the VFS on first use and returns its name, or nullptr if SQLite has no default
// VFS to layer over (then callers use the default).
const char* WalVfsName();

}  // namespace keel::store::sql
