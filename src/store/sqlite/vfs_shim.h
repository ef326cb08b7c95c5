// INTERNAL to src/store: the common part of SQLite VFSes layered over the default one (the
// WAL-write buffering VFS in wal_vfs.cc and the tests' fault-injecting VFS): every method
// forwards to the layer below unless the shim overrides it.
//
// A shim's file object starts with shim::File; the real file of the VFS below is placed
// right after the shim's own struct (head_bytes), inside the one allocation SQLite makes
// of the VFS's szOsFile bytes.
//
// Thread-safety: Init and BuildMethods run once per shim (under the shim's once_flag); the
// forwarders are as thread-safe as the methods they call, which SQLite serialises per file.
#pragma once

#include <sqlite3.h>

#include <cstddef>

namespace keel::store::sql::shim {

struct File {
  sqlite3_file base;   // must be first: SQLite sees this
  sqlite3_file* real;  // the file of the VFS below
};

inline sqlite3_file* Real(sqlite3_file* f) {
  return reinterpret_cast<File*>(f)->real;
}

// The method tables of a shim: `overrides` with every null method forwarding to the file
// below, in a version 1 table (no shared memory or mmap) and a version 3 one. SQLite checks
// iVersion before calling the later methods.
struct Methods {
  sqlite3_io_methods v1, v3;
};
Methods BuildMethods(const sqlite3_io_methods& overrides);

// Opens `name` on the VFS below into the real file placed head_bytes into `f`, and points
// f->pMethods at the table matching the real file's version (none if the open failed, so
// that SQLite does not call xClose). Returns SQLite's result code.
int OpenReal(sqlite3_vfs* shim, size_t head_bytes, const Methods& methods, sqlite3_filename name,
             sqlite3_file* f, int flags, int* out_flags);

// Fills `vfs` as a VFS named `name` over the default VFS, forwarding every method except
// xOpen. Returns false when SQLite has no default VFS. Register it with
// sqlite3_vfs_register afterwards.
using OpenFn = int (*)(sqlite3_vfs*, sqlite3_filename, sqlite3_file*, int, int*);
bool Init(sqlite3_vfs* vfs, const char* name, size_t head_bytes, OpenFn open);

}  // namespace keel::store::sql::shim
