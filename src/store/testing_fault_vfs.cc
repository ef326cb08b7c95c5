#include "store/testing_fault_vfs.h"

#include <sqlite3.h>

#include <atomic>
#include <cstring>
#include <mutex>

namespace keel::store::testing {
namespace {

// Knobs. -1 = disarmed. "Limits" are absolute counter values.
std::atomic<int64_t> g_writes{0};
std::atomic<int64_t> g_bytes{0};
std::atomic<int64_t> g_syncs{0};
std::atomic<int64_t> g_injected{0};
std::atomic<int64_t> g_write_limit{-1};
std::atomic<int64_t> g_byte_limit{-1};
std::atomic<int64_t> g_sync_fail_at{-1};
std::atomic<bool> g_sync_sticky{false};
std::atomic<bool> g_real_syncs{true};

sqlite3_vfs* g_base = nullptr;
sqlite3_vfs g_vfs;

struct FaultFile {
  sqlite3_file base;   // must be first: SQLite sees this
  sqlite3_file* real;  // the base VFS's file, allocated right after this struct
};

sqlite3_file* Real(sqlite3_file* f) {
  return reinterpret_cast<FaultFile*>(f)->real;
}

int FClose(sqlite3_file* f) {
  sqlite3_file* r = Real(f);
  return r->pMethods ? r->pMethods->xClose(r) : SQLITE_OK;
}
int FRead(sqlite3_file* f, void* p, int n, sqlite3_int64 off) {
  return Real(f)->pMethods->xRead(Real(f), p, n, off);
}
int FWrite(sqlite3_file* f, const void* p, int n, sqlite3_int64 off) {
  int64_t w = g_writes.load() + 1;
  int64_t b = g_bytes.load() + n;
  int64_t wl = g_write_limit.load(), bl = g_byte_limit.load();
  if ((wl >= 0 && w > wl) || (bl >= 0 && b > bl)) {
    ++g_injected;
    return SQLITE_FULL;
  }
  g_writes = w;
  g_bytes = b;
  return Real(f)->pMethods->xWrite(Real(f), p, n, off);
}
int FTruncate(sqlite3_file* f, sqlite3_int64 size) {
  return Real(f)->pMethods->xTruncate(Real(f), size);
}
int FSync(sqlite3_file* f, int flags) {
  int64_t n = ++g_syncs;
  int64_t at = g_sync_fail_at.load();
  if (at >= 0 && (n == at || (g_sync_sticky.load() && n > at))) {
    ++g_injected;
    return SQLITE_IOERR_FSYNC;
  }
  if (!g_real_syncs.load()) return SQLITE_OK;
  return Real(f)->pMethods->xSync(Real(f), flags);
}
int FFileSize(sqlite3_file* f, sqlite3_int64* size) {
  return Real(f)->pMethods->xFileSize(Real(f), size);
}
int FLock(sqlite3_file* f, int l) {
  return Real(f)->pMethods->xLock(Real(f), l);
}
int FUnlock(sqlite3_file* f, int l) {
  return Real(f)->pMethods->xUnlock(Real(f), l);
}
int FCheckReserved(sqlite3_file* f, int* out) {
  return Real(f)->pMethods->xCheckReservedLock(Real(f), out);
}
int FFileControl(sqlite3_file* f, int op, void* arg) {
  return Real(f)->pMethods->xFileControl(Real(f), op, arg);
}
int FSectorSize(sqlite3_file* f) {
  return Real(f)->pMethods->xSectorSize(Real(f));
}
int FDeviceChar(sqlite3_file* f) {
  return Real(f)->pMethods->xDeviceCharacteristics(Real(f));
}
int FShmMap(sqlite3_file* f, int pg, int sz, int extend, void volatile** pp) {
  return Real(f)->pMethods->xShmMap(Real(f), pg, sz, extend, pp);
}
int FShmLock(sqlite3_file* f, int off, int n, int flags) {
  return Real(f)->pMethods->xShmLock(Real(f), off, n, flags);
}
void FShmBarrier(sqlite3_file* f) {
  Real(f)->pMethods->xShmBarrier(Real(f));
}
int FShmUnmap(sqlite3_file* f, int del) {
  return Real(f)->pMethods->xShmUnmap(Real(f), del);
}
int FFetch(sqlite3_file* f, sqlite3_int64 off, int n, void** pp) {
  return Real(f)->pMethods->xFetch(Real(f), off, n, pp);
}
int FUnfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
  return Real(f)->pMethods->xUnfetch(Real(f), off, p);
}

// Version 1 (no shared memory, no mmap) for files whose real methods are version 1, and
// version 3 for the rest; SQLite checks iVersion before calling the later methods.
const sqlite3_io_methods kMethodsV1 = {
    1,       FClose,  FRead,          FWrite,       FTruncate,   FSync,       FFileSize,
    FLock,   FUnlock, FCheckReserved, FFileControl, FSectorSize, FDeviceChar, nullptr,
    nullptr, nullptr, nullptr,        nullptr,      nullptr};
const sqlite3_io_methods kMethodsV3 = {
    3,        FClose,      FRead,          FWrite,       FTruncate,   FSync,       FFileSize,
    FLock,    FUnlock,     FCheckReserved, FFileControl, FSectorSize, FDeviceChar, FShmMap,
    FShmLock, FShmBarrier, FShmUnmap,      FFetch,       FUnfetch};

int VOpen(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  auto* ff = reinterpret_cast<FaultFile*>(f);
  ff->real = reinterpret_cast<sqlite3_file*>(ff + 1);
  std::memset(ff->real, 0, static_cast<size_t>(g_base->szOsFile));
  int rc = g_base->xOpen(g_base, name, ff->real, flags, out_flags);
  if (ff->real->pMethods == nullptr) {
    f->pMethods = nullptr;
    return rc;
  }
  f->pMethods = ff->real->pMethods->iVersion >= 3 ? &kMethodsV3 : &kMethodsV1;
  return rc;
}
int VDelete(sqlite3_vfs*, const char* name, int sync_dir) {
  return g_base->xDelete(g_base, name, sync_dir);
}
int VAccess(sqlite3_vfs*, const char* name, int flags, int* out) {
  return g_base->xAccess(g_base, name, flags, out);
}
int VFullPathname(sqlite3_vfs*, const char* name, int n, char* out) {
  return g_base->xFullPathname(g_base, name, n, out);
}
void* VDlOpen(sqlite3_vfs*, const char* name) {
  return g_base->xDlOpen(g_base, name);
}
void VDlError(sqlite3_vfs*, int n, char* msg) {
  g_base->xDlError(g_base, n, msg);
}
void (*VDlSym(sqlite3_vfs*, void* h, const char* sym))(void) {
  return g_base->xDlSym(g_base, h, sym);
}
void VDlClose(sqlite3_vfs*, void* h) {
  g_base->xDlClose(g_base, h);
}
int VRandomness(sqlite3_vfs*, int n, char* out) {
  return g_base->xRandomness(g_base, n, out);
}
int VSleep(sqlite3_vfs*, int us) {
  return g_base->xSleep(g_base, us);
}
int VCurrentTime(sqlite3_vfs*, double* out) {
  return g_base->xCurrentTime(g_base, out);
}
int VGetLastError(sqlite3_vfs*, int n, char* out) {
  return g_base->xGetLastError ? g_base->xGetLastError(g_base, n, out) : 0;
}
int VCurrentTimeInt64(sqlite3_vfs*, sqlite3_int64* out) {
  return g_base->xCurrentTimeInt64(g_base, out);
}

}  // namespace

void RegisterFaultVfs() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_base = sqlite3_vfs_find(nullptr);
    std::memset(&g_vfs, 0, sizeof g_vfs);
    g_vfs.iVersion = 2;
    g_vfs.szOsFile = static_cast<int>(sizeof(FaultFile)) + g_base->szOsFile;
    g_vfs.mxPathname = g_base->mxPathname;
    g_vfs.zName = kFaultVfsName;
    g_vfs.xOpen = VOpen;
    g_vfs.xDelete = VDelete;
    g_vfs.xAccess = VAccess;
    g_vfs.xFullPathname = VFullPathname;
    g_vfs.xDlOpen = VDlOpen;
    g_vfs.xDlError = VDlError;
    g_vfs.xDlSym = VDlSym;
    g_vfs.xDlClose = VDlClose;
    g_vfs.xRandomness = VRandomness;
    g_vfs.xSleep = VSleep;
    g_vfs.xCurrentTime = VCurrentTime;
    g_vfs.xGetLastError = VGetLastError;
    g_vfs.xCurrentTimeInt64 = VCurrentTimeInt64;
    sqlite3_vfs_register(&g_vfs, 0);
  });
}

void FaultVfsFullAfterWrites(int64_t n) {
  g_write_limit = g_writes.load() + n;
}
void FaultVfsFullAfterBytes(int64_t bytes) {
  g_byte_limit = g_bytes.load() + bytes;
}
void FaultVfsFreeSpace() {
  g_write_limit = -1;
  g_byte_limit = -1;
}
void FaultVfsFailSyncAt(int64_t n, bool sticky) {
  g_sync_sticky = sticky;
  g_sync_fail_at = g_syncs.load() + n;
}
void FaultVfsClear() {
  FaultVfsFreeSpace();
  g_sync_fail_at = -1;
  g_sync_sticky = false;
}
void FaultVfsSetRealSyncs(bool on) {
  g_real_syncs = on;
}

int64_t FaultVfsWrites() {
  return g_writes.load();
}
int64_t FaultVfsSyncs() {
  return g_syncs.load();
}
int64_t FaultVfsInjectedFaults() {
  return g_injected.load();
}

}  // namespace keel::store::testing
