#include "store/wal_vfs.h"

#include <sqlite3.h>

#include <cstring>
#include <mutex>
#include <new>
#include <vector>

namespace keel::store::sql {
namespace {

// Writes to a WAL file are collected while they extend one contiguous range and reach the
// real file in one write: at xSync, before any other operation on the file, or when the
// range would break or outgrow kMaxBuffer. SQLite writes a commit's frames (a 24-byte
// header and a page each, two writes per frame) and then syncs; readers learn of frames
// only from the wal-index, which SQLite updates after that sync, so no reader can miss a
// buffered write. Anything but a plain write flushes first, so the file seen through
// this layer is always the file SQLite wrote.
// SQLite's unix VFS writes at most 128 KiB - 1 per call (it masks larger sizes and then
// reports a short write as a full disk): stay under that.
constexpr size_t kMaxBuffer = 120u << 10;

sqlite3_vfs* g_base = nullptr;
sqlite3_vfs g_vfs;

struct File {
  sqlite3_file base;  // must be first: SQLite sees this
  sqlite3_file* real;
  bool wal;
  std::vector<char>* buf;  // pending bytes at [off, off + size)
  sqlite3_int64 off;
};

File* F(sqlite3_file* f) {
  return reinterpret_cast<File*>(f);
}
sqlite3_file* Real(sqlite3_file* f) {
  return F(f)->real;
}

int Flush(sqlite3_file* f) {
  File* ff = F(f);
  if (ff->buf == nullptr || ff->buf->empty()) return SQLITE_OK;
  int rc = ff->real->pMethods->xWrite(ff->real, ff->buf->data(), static_cast<int>(ff->buf->size()),
                                      ff->off);
  ff->buf->clear();
  return rc;
}

int XClose(sqlite3_file* f) {
  int flush_rc = Flush(f);
  delete F(f)->buf;
  F(f)->buf = nullptr;
  sqlite3_file* r = Real(f);
  int rc = r->pMethods ? r->pMethods->xClose(r) : SQLITE_OK;
  return flush_rc != SQLITE_OK ? flush_rc : rc;
}
int XRead(sqlite3_file* f, void* p, int n, sqlite3_int64 off) {
  if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  return Real(f)->pMethods->xRead(Real(f), p, n, off);
}
int XWrite(sqlite3_file* f, const void* p, int n, sqlite3_int64 off) {
  File* ff = F(f);
  if (!ff->wal) return ff->real->pMethods->xWrite(ff->real, p, n, off);
  std::vector<char>& b = *ff->buf;
  bool extends = !b.empty() && off == ff->off + static_cast<sqlite3_int64>(b.size());
  if (!extends || b.size() + static_cast<size_t>(n) > kMaxBuffer) {
    if (int rc = Flush(f); rc != SQLITE_OK) return rc;
    ff->off = off;
  }
  const char* c = static_cast<const char*>(p);
  b.insert(b.end(), c, c + n);
  return SQLITE_OK;
}
int XTruncate(sqlite3_file* f, sqlite3_int64 size) {
  if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  return Real(f)->pMethods->xTruncate(Real(f), size);
}
int XSync(sqlite3_file* f, int flags) {
  if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  return Real(f)->pMethods->xSync(Real(f), flags);
}
int XFileSize(sqlite3_file* f, sqlite3_int64* size) {
  if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  return Real(f)->pMethods->xFileSize(Real(f), size);
}
int XLock(sqlite3_file* f, int l) {
  return Real(f)->pMethods->xLock(Real(f), l);
}
int XUnlock(sqlite3_file* f, int l) {
  return Real(f)->pMethods->xUnlock(Real(f), l);
}
int XCheckReserved(sqlite3_file* f, int* out) {
  return Real(f)->pMethods->xCheckReservedLock(Real(f), out);
}
int XFileControl(sqlite3_file* f, int op, void* arg) {
  if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  return Real(f)->pMethods->xFileControl(Real(f), op, arg);
}
int XSectorSize(sqlite3_file* f) {
  return Real(f)->pMethods->xSectorSize(Real(f));
}
int XDeviceChar(sqlite3_file* f) {
  return Real(f)->pMethods->xDeviceCharacteristics(Real(f));
}
int XShmMap(sqlite3_file* f, int pg, int sz, int extend, void volatile** pp) {
  return Real(f)->pMethods->xShmMap(Real(f), pg, sz, extend, pp);
}
int XShmLock(sqlite3_file* f, int off, int n, int flags) {
  return Real(f)->pMethods->xShmLock(Real(f), off, n, flags);
}
void XShmBarrier(sqlite3_file* f) {
  Real(f)->pMethods->xShmBarrier(Real(f));
}
int XShmUnmap(sqlite3_file* f, int del) {
  return Real(f)->pMethods->xShmUnmap(Real(f), del);
}
int XFetch(sqlite3_file* f, sqlite3_int64 off, int n, void** pp) {
  if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  return Real(f)->pMethods->xFetch(Real(f), off, n, pp);
}
int XUnfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
  return Real(f)->pMethods->xUnfetch(Real(f), off, p);
}

const sqlite3_io_methods kMethodsV1 = {
    1,       XClose,  XRead,          XWrite,       XTruncate,   XSync,       XFileSize,
    XLock,   XUnlock, XCheckReserved, XFileControl, XSectorSize, XDeviceChar, nullptr,
    nullptr, nullptr, nullptr,        nullptr,      nullptr};
const sqlite3_io_methods kMethodsV3 = {
    3,        XClose,      XRead,          XWrite,       XTruncate,   XSync,       XFileSize,
    XLock,    XUnlock,     XCheckReserved, XFileControl, XSectorSize, XDeviceChar, XShmMap,
    XShmLock, XShmBarrier, XShmUnmap,      XFetch,       XUnfetch};

int VOpen(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  File* ff = F(f);
  ff->real = reinterpret_cast<sqlite3_file*>(ff + 1);
  ff->buf = nullptr;
  ff->off = 0;
  ff->wal = (flags & SQLITE_OPEN_WAL) != 0;
  std::memset(ff->real, 0, static_cast<size_t>(g_base->szOsFile));
  int rc = g_base->xOpen(g_base, name, ff->real, flags, out_flags);
  if (ff->real->pMethods == nullptr) {
    f->pMethods = nullptr;
    return rc;
  }
  if (ff->wal) ff->buf = new (std::nothrow) std::vector<char>();
  if (ff->wal && ff->buf == nullptr) ff->wal = false;  // no memory: write through
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
void VDlError(sqlite3_vfs*, int n, char* out) {
  g_base->xDlError(g_base, n, out);
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

const char* WalVfsName() {
  static std::once_flag once;
  static int rc = SQLITE_ERROR;
  std::call_once(once, [] {
    g_base = sqlite3_vfs_find(nullptr);
    if (g_base == nullptr) return;
    std::memset(&g_vfs, 0, sizeof g_vfs);
    g_vfs.iVersion = 2;
    g_vfs.szOsFile = static_cast<int>(sizeof(File)) + g_base->szOsFile;
    g_vfs.mxPathname = g_base->mxPathname;
    g_vfs.zName = kWalVfsName;
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
    rc = sqlite3_vfs_register(&g_vfs, /*makeDflt=*/0);
  });
  return rc == SQLITE_OK ? kWalVfsName : nullptr;
}

}  // namespace keel::store::sql
