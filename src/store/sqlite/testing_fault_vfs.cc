#include "store/sqlite/testing_fault_vfs.h"

#include <sqlite3.h>

#include <atomic>
#include <cstring>
#include <mutex>

#include "store/sqlite/vfs_shim.h"

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

sqlite3_vfs g_vfs;

using sql::shim::Real;

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

const sql::shim::Methods& Methods() {
  static const sql::shim::Methods m = [] {
    sqlite3_io_methods o{};
    o.xWrite = FWrite;
    o.xSync = FSync;
    return sql::shim::BuildMethods(o);
  }();
  return m;
}

int VOpen(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  return sql::shim::OpenReal(vfs, sizeof(sql::shim::File), Methods(), name, f, flags, out_flags);
}

}  // namespace

void RegisterFaultVfs() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sql::shim::Init(&g_vfs, kFaultVfsName, sizeof(sql::shim::File), VOpen)) {
      sqlite3_vfs_register(&g_vfs, 0);
    }
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
