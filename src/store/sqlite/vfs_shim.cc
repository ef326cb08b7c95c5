#include "store/sqlite/vfs_shim.h"

#include <cstring>

namespace keel::store::sql::shim {
namespace {

sqlite3_vfs* Below(sqlite3_vfs* vfs) {
  return static_cast<sqlite3_vfs*>(vfs->pAppData);
}

int Close(sqlite3_file* f) {
  sqlite3_file* r = Real(f);
  return r->pMethods ? r->pMethods->xClose(r) : SQLITE_OK;
}
int Read(sqlite3_file* f, void* p, int n, sqlite3_int64 off) {
  return Real(f)->pMethods->xRead(Real(f), p, n, off);
}
int Write(sqlite3_file* f, const void* p, int n, sqlite3_int64 off) {
  return Real(f)->pMethods->xWrite(Real(f), p, n, off);
}
int Truncate(sqlite3_file* f, sqlite3_int64 size) {
  return Real(f)->pMethods->xTruncate(Real(f), size);
}
int Sync(sqlite3_file* f, int flags) {
  return Real(f)->pMethods->xSync(Real(f), flags);
}
int FileSize(sqlite3_file* f, sqlite3_int64* size) {
  return Real(f)->pMethods->xFileSize(Real(f), size);
}
int Lock(sqlite3_file* f, int l) {
  return Real(f)->pMethods->xLock(Real(f), l);
}
int Unlock(sqlite3_file* f, int l) {
  return Real(f)->pMethods->xUnlock(Real(f), l);
}
int CheckReserved(sqlite3_file* f, int* out) {
  return Real(f)->pMethods->xCheckReservedLock(Real(f), out);
}
int FileControl(sqlite3_file* f, int op, void* arg) {
  return Real(f)->pMethods->xFileControl(Real(f), op, arg);
}
int SectorSize(sqlite3_file* f) {
  return Real(f)->pMethods->xSectorSize(Real(f));
}
int DeviceChar(sqlite3_file* f) {
  return Real(f)->pMethods->xDeviceCharacteristics(Real(f));
}
int ShmMap(sqlite3_file* f, int pg, int sz, int extend, void volatile** pp) {
  return Real(f)->pMethods->xShmMap(Real(f), pg, sz, extend, pp);
}
int ShmLock(sqlite3_file* f, int off, int n, int flags) {
  return Real(f)->pMethods->xShmLock(Real(f), off, n, flags);
}
void ShmBarrier(sqlite3_file* f) {
  Real(f)->pMethods->xShmBarrier(Real(f));
}
int ShmUnmap(sqlite3_file* f, int del) {
  return Real(f)->pMethods->xShmUnmap(Real(f), del);
}
int Fetch(sqlite3_file* f, sqlite3_int64 off, int n, void** pp) {
  return Real(f)->pMethods->xFetch(Real(f), off, n, pp);
}
int Unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
  return Real(f)->pMethods->xUnfetch(Real(f), off, p);
}

int VDelete(sqlite3_vfs* v, const char* name, int sync_dir) {
  return Below(v)->xDelete(Below(v), name, sync_dir);
}
int VAccess(sqlite3_vfs* v, const char* name, int flags, int* out) {
  return Below(v)->xAccess(Below(v), name, flags, out);
}
int VFullPathname(sqlite3_vfs* v, const char* name, int n, char* out) {
  return Below(v)->xFullPathname(Below(v), name, n, out);
}
void* VDlOpen(sqlite3_vfs* v, const char* name) {
  return Below(v)->xDlOpen(Below(v), name);
}
void VDlError(sqlite3_vfs* v, int n, char* out) {
  Below(v)->xDlError(Below(v), n, out);
}
void (*VDlSym(sqlite3_vfs* v, void* h, const char* sym))(void) {
  return Below(v)->xDlSym(Below(v), h, sym);
}
void VDlClose(sqlite3_vfs* v, void* h) {
  Below(v)->xDlClose(Below(v), h);
}
int VRandomness(sqlite3_vfs* v, int n, char* out) {
  return Below(v)->xRandomness(Below(v), n, out);
}
int VSleep(sqlite3_vfs* v, int us) {
  return Below(v)->xSleep(Below(v), us);
}
int VCurrentTime(sqlite3_vfs* v, double* out) {
  return Below(v)->xCurrentTime(Below(v), out);
}
int VGetLastError(sqlite3_vfs* v, int n, char* out) {
  return Below(v)->xGetLastError ? Below(v)->xGetLastError(Below(v), n, out) : 0;
}
int VCurrentTimeInt64(sqlite3_vfs* v, sqlite3_int64* out) {
  return Below(v)->xCurrentTimeInt64(Below(v), out);
}

template <typename T>
void Fill(T*& slot, T* fallback) {
  if (slot == nullptr) slot = fallback;
}

}  // namespace

Methods BuildMethods(const sqlite3_io_methods& overrides) {
  sqlite3_io_methods m = overrides;
  Fill(m.xClose, &Close);
  Fill(m.xRead, &Read);
  Fill(m.xWrite, &Write);
  Fill(m.xTruncate, &Truncate);
  Fill(m.xSync, &Sync);
  Fill(m.xFileSize, &FileSize);
  Fill(m.xLock, &Lock);
  Fill(m.xUnlock, &Unlock);
  Fill(m.xCheckReservedLock, &CheckReserved);
  Fill(m.xFileControl, &FileControl);
  Fill(m.xSectorSize, &SectorSize);
  Fill(m.xDeviceCharacteristics, &DeviceChar);
  Fill(m.xShmMap, &ShmMap);
  Fill(m.xShmLock, &ShmLock);
  Fill(m.xShmBarrier, &ShmBarrier);
  Fill(m.xShmUnmap, &ShmUnmap);
  Fill(m.xFetch, &Fetch);
  Fill(m.xUnfetch, &Unfetch);
  Methods out{m, m};
  out.v3.iVersion = 3;
  out.v1.iVersion = 1;
  out.v1.xShmMap = nullptr;
  out.v1.xShmLock = nullptr;
  out.v1.xShmBarrier = nullptr;
  out.v1.xShmUnmap = nullptr;
  out.v1.xFetch = nullptr;
  out.v1.xUnfetch = nullptr;
  return out;
}

int OpenReal(sqlite3_vfs* shim, size_t head_bytes, const Methods& methods, sqlite3_filename name,
             sqlite3_file* f, int flags, int* out_flags) {
  sqlite3_vfs* below = Below(shim);
  File* head = reinterpret_cast<File*>(f);
  head->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(f) + head_bytes);
  std::memset(head->real, 0, static_cast<size_t>(below->szOsFile));
  int rc = below->xOpen(below, name, head->real, flags, out_flags);
  if (head->real->pMethods == nullptr) {
    f->pMethods = nullptr;
    return rc;
  }
  f->pMethods = head->real->pMethods->iVersion >= 3 ? &methods.v3 : &methods.v1;
  return rc;
}

bool Init(sqlite3_vfs* vfs, const char* name, size_t head_bytes, OpenFn open) {
  sqlite3_vfs* below = sqlite3_vfs_find(nullptr);
  if (below == nullptr) return false;
  std::memset(vfs, 0, sizeof *vfs);
  vfs->iVersion = 2;
  vfs->szOsFile = static_cast<int>(head_bytes) + below->szOsFile;
  vfs->mxPathname = below->mxPathname;
  vfs->zName = name;
  vfs->pAppData = below;
  vfs->xOpen = open;
  vfs->xDelete = VDelete;
  vfs->xAccess = VAccess;
  vfs->xFullPathname = VFullPathname;
  vfs->xDlOpen = VDlOpen;
  vfs->xDlError = VDlError;
  vfs->xDlSym = VDlSym;
  vfs->xDlClose = VDlClose;
  vfs->xRandomness = VRandomness;
  vfs->xSleep = VSleep;
  vfs->xCurrentTime = VCurrentTime;
  vfs->xGetLastError = VGetLastError;
  vfs->xCurrentTimeInt64 = VCurrentTimeInt64;
  return true;
}

}  // namespace keel::store::sql::shim
