#include "cli/cli.h"

#include <unistd.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "app/workspace.h"

namespace keel::cli {

Result<std::string> Context::WorkspaceDir() const {
  char buf[4096];
  std::string cwd = ::getcwd(buf, sizeof buf) ? buf : ".";
  return app::LocateWorkspace(workspace_flag, workspace_env, cwd);
}

Result<std::unique_ptr<app::Runtime>> Context::OpenRuntime(bool read_only) {
  app::RuntimeOptions o;
  KEEL_ASSIGN_OR_RETURN(o.workspace_dir, WorkspaceDir());
  o.read_only = read_only;
  o.env = env;
  o.vault_passphrase = passphrase;
  o.test_adapters = test_adapters;
  std::string dir = o.workspace_dir;
  before_output = [dir] { return app::MakeReadsDurable(dir); };
  return app::Runtime::Open(std::move(o));
}

void PrintJson(const nlohmann::json& j) {
  std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

int ExitCodeFor(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return 0;
    case StatusCode::kInvalidArgument:
    case StatusCode::kAlreadyExists:
      return 65;
    case StatusCode::kNotFound:
      return 66;
    case StatusCode::kUnavailable:
    case StatusCode::kDeadlineExceeded:
      return 75;
    case StatusCode::kPermissionDenied:
      return 77;
    case StatusCode::kInternal:
      return 70;
    case StatusCode::kFailedPrecondition:
    case StatusCode::kDataLoss:
    case StatusCode::kCancelled:
      return 1;
  }
  return 1;
}

int Fail(const Status& s) {
  std::string msg = s.message();
  for (char& c : msg) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  std::cerr << "keel: error: " << msg << "\n";
  return ExitCodeFor(s);
}

std::function<void()> Run(Context* ctx, std::function<Status()> body) {
  return [ctx, body = std::move(body)]() {
    Status s = body();
    if (!s.ok()) ctx->exit_code = Fail(s);
  };
}

Result<std::string> ReadStdin(uint64_t max_bytes) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(0, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "reading standard input");
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) {
      return InvalidArgument("standard input is larger than the limit of " +
                             std::to_string(max_bytes) + " bytes");
    }
  }
  return out;
}

Result<std::string> ReadInput(const std::string& path, uint64_t max_bytes) {
  if (path == "-") return ReadStdin(max_bytes);
  return DefaultFileSystem()->ReadFile(path, max_bytes);
}

Result<std::string> TextOrFile(const std::string& arg, uint64_t max_bytes) {
  if (arg == "-") return ReadStdin(max_bytes);
  if (!arg.empty() && arg[0] == '@') return ReadInput(arg.substr(1), max_bytes);
  return arg;
}

}  // namespace keel::cli
