#include "store/sqlite/wal_vfs.h"

#include <sqlite3.h>

#include <algorithm>
#include <mutex>
#include <new>
#include <vector>

#include "store/sqlite/vfs_shim.h"

namespace keel::store::sql {
namespace {

// Writes to a WAL file are collected while they extend one contiguous range and reach the
// real file in one write: when the commit frame is complete, at xSync, before any other
// operation on the file, or when the range would break or outgrow kMaxBuffer. SQLite
// writes a commit's frames (a 24-byte header and a page each, two writes per frame), then
// syncs unless synchronous=NORMAL, then publishes them in the wal-index, with no call to
// this file in between when it does not sync. So the last write of a commit, the page of
// its commit frame (the one whose header names the database size), is where the buffer
// goes to the file: before SQLite publishes anything, and with its error returned to
// SQLite, which then fails the commit (a full disk stays a clean error). Anything but a
// plain write flushes first, so the file seen through this layer is always the file SQLite
// wrote.
// SQLite's unix VFS writes at most 128 KiB - 1 per call (it masks larger sizes and then
// reports a short write as a full disk): stay under that.
constexpr size_t kMaxBuffer = 120u << 10;

// A WAL grows in steps of this many bytes, each written as zeros before SQLite's frames land
// in it. Why: a write that extends a file allocates blocks and changes its size, so the
// commit's fdatasync must also commit file-system metadata (on ext4 a journal commit: on
// this project's VM an appending 4 KiB write + fdatasync took 4-10x longer than an
// overwrite). Written zeros make the blocks ordinary data, so every later commit into
// them is an overwrite (PostgreSQL's wal_init_zero does the same for its WAL segments);
// fallocate would not do, since its unwritten extents are converted on the first write,
// which is again a metadata change. 1 MiB is about one WAL generation at 1 KiB pages
// (kCheckpointPages in sql.cc): a new workspace pays one slow sync per MiB instead of one
// per block, and a WAL that restarts in place never grows again.
//
// Zeros past the last valid frame are what SQLite expects there anyway: it reads frames
// only up to the first whose salt or cumulative checksum does not match, and a restarted
// WAL leaves older frames behind it in the same way.
constexpr sqlite3_int64 kGrowStep = 1 << 20;

sqlite3_vfs g_vfs;

struct File {
  shim::File head;  // must be first
  bool wal;
  std::vector<char>* buf;  // pending bytes at [off, off + size)
  sqlite3_int64 off;
  bool commit_frame;  // the last write was the header of a commit frame
  // The WAL's size as last seen through this layer (0: not known). Only a hint: another
  // connection may have grown or truncated the file since, so it is asked again before
  // anything is zeroed.
  sqlite3_int64 size_seen;
};

// A WAL frame header: page number, then (for the frame that commits a transaction) the
// database size in pages after the commit, else 0; both big-endian (SQLite's wal.c).
constexpr int kFrameHeaderBytes = 24;
bool IsCommitFrameHeader(const void* p, int n) {
  if (n != kFrameHeaderBytes) return false;
  const unsigned char* b = static_cast<const unsigned char*>(p);
  return (b[4] | b[5] | b[6] | b[7]) != 0;
}

File* F(sqlite3_file* f) {
  return reinterpret_cast<File*>(f);
}
using shim::Real;

// Before a write that ends at `end` past the file's end: zeros from the end of the file to
// the next kGrowStep boundary. Only a WAL's writer writes to it (SQLite holds the WAL write
// lock for every frame and header it writes), and the size is read from the file right
// here, so the zeros land only where no byte of the file was: never over a frame, whoever
// wrote it. Best effort: on any error (a full disk) the write goes ahead as a plain
// append, which reports its own error; zeros already written are harmless.
void GrowWithZeros(sqlite3_file* f, sqlite3_int64 end) {
  File* ff = F(f);
  if (end <= ff->size_seen) return;
  sqlite3_file* r = Real(f);
  sqlite3_int64 size = 0;
  if (r->pMethods->xFileSize(r, &size) != SQLITE_OK) return;
  ff->size_seen = size;
  if (end <= size) return;
  static const std::vector<char> zeros(64u << 10, 0);
  sqlite3_int64 target = (end + kGrowStep - 1) / kGrowStep * kGrowStep;
  for (sqlite3_int64 at = size; at < target;) {
    int n = static_cast<int>(std::min<sqlite3_int64>(target - at, zeros.size()));
    if (r->pMethods->xWrite(r, zeros.data(), n, at) != SQLITE_OK) return;
    at += n;
    ff->size_seen = at;
  }
}

int Flush(sqlite3_file* f) {
  File* ff = F(f);
  if (ff->buf == nullptr || ff->buf->empty()) return SQLITE_OK;
  sqlite3_int64 end = ff->off + static_cast<sqlite3_int64>(ff->buf->size());
  GrowWithZeros(f, end);
  int rc = Real(f)->pMethods->xWrite(Real(f), ff->buf->data(), static_cast<int>(ff->buf->size()),
                                     ff->off);
  ff->buf->clear();
  if (rc == SQLITE_OK && end > ff->size_seen) ff->size_seen = end;
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
  // The page after a commit frame's header ends the transaction's frames.
  bool ends_commit = ff->commit_frame;
  ff->commit_frame = IsCommitFrameHeader(p, n);
  return ends_commit ? Flush(f) : SQLITE_OK;
}
int XTruncate(sqlite3_file* f, sqlite3_int64 size) {
  if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  F(f)->size_seen = 0;
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
  ff->commit_frame = false;
  ff->size_seen = 0;
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
