#include "core/status.h"

#include <cerrno>
#include <cstring>

namespace keel {

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "ok";
    case StatusCode::kInvalidArgument:
      return "invalid_argument";
    case StatusCode::kNotFound:
      return "not_found";
    case StatusCode::kAlreadyExists:
      return "already_exists";
    case StatusCode::kFailedPrecondition:
      return "failed_precondition";
    case StatusCode::kPermissionDenied:
      return "permission_denied";
    case StatusCode::kUnavailable:
      return "unavailable";
    case StatusCode::kDeadlineExceeded:
      return "deadline_exceeded";
    case StatusCode::kDataLoss:
      return "data_loss";
    case StatusCode::kInternal:
      return "internal";
    case StatusCode::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string s(StatusCodeName(code_));
  s += ": ";
  s += message_;
  return s;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string m(context);
  m += ": ";
  m += message_;
  return Status(code_, std::move(m));
}

Status ErrnoStatus(int err, std::string_view context) {
  std::string m(context);
  m += ": ";
  m += std::strerror(err);
  switch (err) {
    case ENOSPC:
    case EDQUOT:
      return Unavailable(m + " (disk full: free space, then retry)");
    case EAGAIN:
    case EINTR:
    case EBUSY:
      return Unavailable(std::move(m));
    case ENOENT:
    case ENOTDIR:
      return NotFound(std::move(m));
    case EACCES:
    case EPERM:
    case EROFS:
      return PermissionDenied(std::move(m));
    case EEXIST:
      return AlreadyExists(std::move(m));
    case EIO:
      return DataLoss(std::move(m));
    case EINVAL:
    case ENAMETOOLONG:
    case ELOOP:
    case EISDIR:  // a folder where a file was meant: almost always a path the user gave
      return InvalidArgument(std::move(m));
    default:
      return Internal(std::move(m));
  }
}

}  // namespace keel
