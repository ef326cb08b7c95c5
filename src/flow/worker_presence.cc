#include "flow/worker_presence.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/json.h"
#include "store/leases.h"

namespace keel::flow {
namespace {

bool PlainName(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return id[0] != '.';
}

std::string LockPath(const std::string& dir, const std::string& id) {
  return dir + "/workers/" + id + ".lock";
}

}  // namespace

Result<std::unique_ptr<WorkerPresence>> WorkerPresence::Announce(const std::string& dir,
                                                                 const std::string& id) {
  if (!PlainName(id)) return InvalidArgument("worker id '" + id + "' is not a plain name");
  std::string folder = dir + "/workers";
  if (::mkdir(folder.c_str(), 0755) != 0 && errno != EEXIST) {
    return Unavailable("cannot create " + folder + ": " + std::strerror(errno));
  }
  std::string path = LockPath(dir, id);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Unavailable("cannot create " + path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    return Unavailable("cannot lock " + path + ": " + std::strerror(err));
  }
  return std::unique_ptr<WorkerPresence>(new WorkerPresence(path, fd));
}

WorkerPresence::~WorkerPresence() {
  ::unlink(path_.c_str());
  ::close(fd_);
}

bool WorkerPresence::IsGone(const std::string& dir, const std::string& id) {
  if (!PlainName(id)) return false;
  std::string path = LockPath(dir, id);
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;  // never announced here (or cleaned up): cannot tell
  bool gone = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
  if (gone) ::unlink(path.c_str());
  ::close(fd);
  return gone;
}

Result<int64_t> ReclaimLeasesOfGoneWorkers(store::Workspace& ws, const std::string& self) {
  int64_t now = ws.env().clock->NowMicros();
  KEEL_ASSIGN_OR_RETURN(auto owners, store::LiveLeaseOwners(ws, now));
  int64_t freed = 0;
  for (const auto& owner : owners) {
    if (owner == self || !WorkerPresence::IsGone(ws.dir(), owner)) continue;
    KEEL_RETURN_IF_ERROR(ws.Write([&](store::Txn& txn) -> Status {
      KEEL_ASSIGN_OR_RETURN(int64_t n, store::ReleaseLeasesOf(txn, owner));
      freed += n;
      store::NewEntry en;
      en.actor = "flow";
      en.kind = "lease.reclaimed";
      en.subject = owner;
      en.payload = CanonicalJson(nlohmann::json{{"worker", owner}, {"runs", n},
                                                {"by", self}, {"why", "worker process gone"}});
      return txn.Append(en).status();
    }));
  }
  return freed;
}

}  // namespace keel::flow
