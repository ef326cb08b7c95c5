// Child processes for crash tests (tests only): start a program without waiting for it,
// read its standard output as it arrives, and kill it at a chosen moment.
//
// Ownership: a ChildProcess owns its pipes and reaps the child; destroying a running one
// SIGKILLs and reaps it. Thread-safety: one thread per ChildProcess.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace keel::testing {

class ChildProcess {
 public:
  // Starts `binary` with `args` and extra environment variables; stdin is /dev/null.
  // Throws std::runtime_error if the process cannot be started.
  ChildProcess(const std::string& binary, const std::vector<std::string>& args,
               const std::map<std::string, std::string>& env = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Reads whatever stdout/stderr have ready, waiting at most `timeout_ms` for the first
  // bytes. Returns false once both pipes are closed (the child exited or was killed).
  bool Pump(int timeout_ms);
  // Pumps for `duration_ms`, or until the pipes close.
  void PumpFor(int duration_ms);
  // Sends `sig` (SIGKILL by default).
  void Kill(int sig = 9);
  // Drains the pipes and reaps the child. Returns the exit code, or -signal.
  int Wait();

  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }
  // The complete lines of stdout so far (a trailing partial line is left out).
  std::vector<std::string> CompleteLines() const;

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  bool reaped_ = false;
  int exit_code_ = 0;
  std::string out_;
  std::string err_;
};

}  // namespace keel::testing
