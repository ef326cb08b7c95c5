#include "core/testing_util.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace keel::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/keel-test-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  // Artifacts are read-only files; make them removable first.
  for (auto it = std::filesystem::recursive_directory_iterator(path_, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::filesystem::permissions(it->path(), std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::add, ec);
  }
  std::filesystem::remove_all(path_, ec);
}

std::string KeelBinary() {
  return KEEL_BINARY;
}
std::string SourceDir() {
  return KEEL_SOURCE_DIR;
}

ProcessResult RunProcess(const std::string& binary, const std::vector<std::string>& args,
                         const std::string& stdin_data,
                         const std::map<std::string, std::string>& env) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC)) {
    throw std::runtime_error("pipe failed");
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(binary.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  ProcessResult r;
  size_t written = 0;
  if (stdin_data.empty()) {
    ::close(in[1]);
    in[1] = -1;
  }
  struct pollfd fds[3];
  bool out_open = true, err_open = true;
  ::signal(SIGPIPE, SIG_IGN);
  while (out_open || err_open || in[1] >= 0) {
    int n = 0;
    int idx_out = -1, idx_err = -1, idx_in = -1;
    if (out_open) {
      fds[n] = {out[0], POLLIN, 0};
      idx_out = n++;
    }
    if (err_open) {
      fds[n] = {err[0], POLLIN, 0};
      idx_err = n++;
    }
    if (in[1] >= 0) {
      fds[n] = {in[1], POLLOUT, 0};
      idx_in = n++;
    }
    if (::poll(fds, n, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    char buf[65536];
    if (idx_out >= 0 && fds[idx_out].revents) {
      ssize_t k = ::read(out[0], buf, sizeof buf);
      if (k <= 0)
        out_open = false;
      else
        r.out.append(buf, k);
    }
    if (idx_err >= 0 && fds[idx_err].revents) {
      ssize_t k = ::read(err[0], buf, sizeof buf);
      if (k <= 0)
        err_open = false;
      else
        r.err.append(buf, k);
    }
    if (idx_in >= 0 && fds[idx_in].revents) {
      ssize_t k = ::write(in[1], stdin_data.data() + written, stdin_data.size() - written);
      if (k > 0) written += k;
      if (k <= 0 || written == stdin_data.size()) {
        ::close(in[1]);
        in[1] = -1;
      }
    }
  }
  ::close(out[0]);
  ::close(err[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  return r;
}

ProcessResult RunKeel(const std::vector<std::string>& args, const std::string& stdin_data,
                      const std::map<std::string, std::string>& env) {
  return RunProcess(KeelBinary(), args, stdin_data, env);
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream f(path, std::ios::binary);
  f << content;
  if (!f) throw std::runtime_error("cannot write " + path);
}

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

ScopedUmask::ScopedUmask(unsigned mask) : old_(::umask(static_cast<mode_t>(mask))) {}
ScopedUmask::~ScopedUmask() {
  ::umask(static_cast<mode_t>(old_));
}

std::map<std::string, int> ModesUnder(const std::string& dir) {
  std::map<std::string, int> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st;
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    out[std::filesystem::relative(it->path(), dir).string()] = static_cast<int>(st.st_mode & 07777);
  }
  return out;
}

}  // namespace keel::testing
