#include "store/wal_vfs.h"

#include <sqlite3.h>

#include <mutex>
#include <new>
#include <vector>

#include "store/vfs_shim.h"

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

sqlite3_vfs g_vfs;

struct File {
  shim::File head;  // must be first
  bool wal;
  std::vector<char>* buf;  // pending bytes at [off, off + size)
  sqlite3_int64 off;
};

File* F(sqlite3_file* f) {
  return reinterpret_cast<File*>(f);
}
using shim::Real;

int Flush(sqlite3_file* f) {
  File* ff = F(f);
  if (ff->buf == nullptr || ff->buf->empty()) return SQLITE_OK;
  int rc = Real(f)->pMethods->xWrite(Real(f), ff->buf->data(), static_cast<int>(ff->buf->size()),
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
  if (!ff->wal) return Real(f)->pMethods->xWrite(Real(f), p, n, off);
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
int XFileControl(sqlite3_file* f, int op, void* arg) {
  if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  return Real(f)->pMethods->xFileControl(Real(f), op, arg);
}
int XFetch(sqlite3_file* f, sqlite3_int64 off, int n, void** pp) {
  if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  return Real(f)->pMethods->xFetch(Real(f), off, n, pp);
}

// Everything else (locks, shared memory, sizes) forwards as it is.
const shim::Methods& Methods() {
  static const shim::Methods m = [] {
    sqlite3_io_methods o{};
    o.xClose = XClose;
    o.xRead = XRead;
    o.xWrite = XWrite;
    o.xTruncate = XTruncate;
    o.xSync = XSync;
    o.xFileSize = XFileSize;
    o.xFileControl = XFileControl;
    o.xFetch = XFetch;
    return shim::BuildMethods(o);
  }();
  return m;
}

int VOpen(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  File* ff = F(f);
  ff->buf = nullptr;
  ff->off = 0;
  ff->wal = (flags & SQLITE_OPEN_WAL) != 0;
  int rc = shim::OpenReal(vfs, sizeof(File), Methods(), name, f, flags, out_flags);
  if (f->pMethods == nullptr) return rc;
  if (ff->wal) ff->buf = new (std::nothrow) std::vector<char>();
  if (ff->wal && ff->buf == nullptr) ff->wal = false;  // no memory: write through
  return rc;
}

}  // namespace

const char* WalVfsName() {
  static std::once_flag once;
  static int rc = SQLITE_ERROR;
  std::call_once(once, [] {
    if (shim::Init(&g_vfs, kWalVfsName, sizeof(File), VOpen)) {
      rc = sqlite3_vfs_register(&g_vfs, /*makeDflt=*/0);
    }
  });
  return rc == SQLITE_OK ? kWalVfsName : nullptr;
}

}  // namespace keel::store::sql
