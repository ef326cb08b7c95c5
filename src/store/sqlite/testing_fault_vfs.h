// A fault-injecting SQLite VFS for tests (INTERNAL to src/store tests).
//
// RegisterFaultVfs() registers a VFS named kFaultVfsName ("keelfault") that forwards to the
// default (unix) VFS and, when armed, fails:
//  - writes: after `n` more xWrite calls or `bytes` more bytes, every xWrite returns
//    SQLITE_FULL (a full disk stays full) until FreeSpace();
//  - syncs: the n-th xSync from now returns SQLITE_IOERR_FSYNC (optionally every later one).
// Open a workspace through it with WorkspaceOpenOptions::sqlite_vfs = kFaultVfsName.
//
// The knobs are process-wide (a VFS is a process-wide object) and affect only files
// opened through "keelfault". Thread-safety: the counters are atomics; arm and disarm from
// the test thread while no other thread writes.
#pragma once

#include <cstdint>

namespace keel::store::testing {

inline constexpr char kFaultVfsName[] = "keelfault";

// Idempotent.
void RegisterFaultVfs();

// Every xWrite after `n` more calls fails with SQLITE_FULL.
void FaultVfsFullAfterWrites(int64_t n);
// Every xWrite that would take the bytes written past `bytes` more fails with SQLITE_FULL.
void FaultVfsFullAfterBytes(int64_t bytes);
void FaultVfsFreeSpace();
// The n-th xSync from now (1-based) fails with SQLITE_IOERR_FSYNC; `sticky`: and all later.
void FaultVfsFailSyncAt(int64_t n, bool sticky = false);
// Disarms every fault.
void FaultVfsClear();
// Whether xSync reaches the real disk (default true). Tests that simulate no power loss of
// the database turn it off to avoid waiting for the disk; the sync is still counted and
// can still be failed.
void FaultVfsSetRealSyncs(bool on);

// Counters since registration.
int64_t FaultVfsWrites();
int64_t FaultVfsSyncs();
int64_t FaultVfsInjectedFaults();

}  // namespace keel::store::testing
