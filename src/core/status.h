// Status and Result<T>: the one error type of keel.
//
// Every fallible function returns a [[nodiscard]] Status or Result<T>. Errors from errno,
// SQLite, libcurl, providers and parsers are converted where they enter keel, with context
// (path, endpoint, line) in the message. Exceptions from third-party libraries (nlohmann-json,
// yaml-cpp) are caught at their boundary and never cross a keel API.
//
// Thread-safety: values; safe to copy and move between threads.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace keel {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument,     // the caller's input is wrong (user data, flags, file contents)
  kNotFound,            // a named thing does not exist
  kAlreadyExists,       // a thing with that identity exists (duplicate record, name)
  kFailedPrecondition,  // the system is not in a state that allows this (paused, newer schema)
  kPermissionDenied,    // file rights, a refused policy
  kUnavailable,         // transient: disk full, peer down, database busy; may succeed later
  kDeadlineExceeded,    // a timeout; the outcome of the operation may be unknown
  kDataLoss,            // corruption or tampering detected; an fsync failed
  kInternal,            // a bug or an unexpected library failure
  kCancelled,           // the operation was stopped on request
};

// Returns a short lowercase name ("not_found") for messages and JSON.
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "not_found: workspace not found in /tmp/x or its parents"
  std::string ToString() const;

  // Returns a copy with `context` prepended ("opening keel.db: ...").
  Status WithContext(std::string_view context) const;

  // Explicitly drops a status where ignoring it is the right thing (best-effort cleanup).
  void IgnoreError() const {}

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status OkStatus() {
  return Status();
}
inline Status InvalidArgument(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status NotFound(std::string m) {
  return {StatusCode::kNotFound, std::move(m)};
}
inline Status AlreadyExists(std::string m) {
  return {StatusCode::kAlreadyExists, std::move(m)};
}
inline Status FailedPrecondition(std::string m) {
  return {StatusCode::kFailedPrecondition, std::move(m)};
}
inline Status PermissionDenied(std::string m) {
  return {StatusCode::kPermissionDenied, std::move(m)};
}
inline Status Unavailable(std::string m) {
  return {StatusCode::kUnavailable, std::move(m)};
}
inline Status DeadlineExceeded(std::string m) {
  return {StatusCode::kDeadlineExceeded, std::move(m)};
}
inline Status DataLoss(std::string m) {
  return {StatusCode::kDataLoss, std::move(m)};
}
inline Status Internal(std::string m) {
  return {StatusCode::kInternal, std::move(m)};
}
inline Status Cancelled(std::string m) {
  return {StatusCode::kCancelled, std::move(m)};
}

// Converts an errno value to a Status: ENOSPC/EDQUOT/EAGAIN/EINTR/EBUSY -> Unavailable,
// ENOENT/ENOTDIR -> NotFound, EACCES/EPERM/EROFS -> PermissionDenied, EEXIST ->
// AlreadyExists, EIO -> DataLoss, EINVAL/ENAMETOOLONG/ELOOP/EISDIR -> InvalidArgument,
// others -> Internal. The message is `context: strerror(err)`.
Status ErrnoStatus(int err, std::string_view context);

// Result<T>: a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    if (std::get<Status>(v_).ok()) v_ = Status(StatusCode::kInternal, "Result built from OK");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace keel

#define KEEL_CONCAT_INNER_(a, b) a##b
#define KEEL_CONCAT_(a, b) KEEL_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (a Status) is not ok.
#define KEEL_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::keel::Status keel_status_ = (expr);        \
    if (!keel_status_.ok()) return keel_status_; \
  } while (0)

// KEEL_ASSIGN_OR_RETURN(auto x, MakeX()); returns the error if MakeX() failed. `lhs` is a
// declaration or an lvalue and `tmp` a name: neither can be parenthesized.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define KEEL_ASSIGN_OR_RETURN(lhs, expr) \
  KEEL_ASSIGN_OR_RETURN_IMPL_(KEEL_CONCAT_(keel_result_, __LINE__), lhs, expr)
#define KEEL_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)
