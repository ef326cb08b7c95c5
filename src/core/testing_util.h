// Test helpers (linked only into test binaries): temporary folders and running the real
// `keel` binary as a child process.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace keel::testing {

// A fresh folder under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct ProcessResult {
  int exit_code = -1;  // -signal when killed by a signal
  std::string out;
  std::string err;
};

// Runs `binary` with `args`, optional stdin, extra environment variables, and waits.
ProcessResult RunProcess(const std::string& binary, const std::vector<std::string>& args,
                         const std::string& stdin_data = "",
                         const std::map<std::string, std::string>& env = {});

// Runs the keel binary built with the tests (KEEL_BINARY).
ProcessResult RunKeel(const std::vector<std::string>& args, const std::string& stdin_data = "",
                      const std::map<std::string, std::string>& env = {});

// The path of the keel binary under test.
std::string KeelBinary();
// The repository's source folder (for fixtures).
std::string SourceDir();

void WriteFile(const std::string& path, const std::string& content);
std::string ReadFileOrDie(const std::string& path);

// Sets the process umask for its lifetime and restores the previous one. The umask is
// process-wide: use it only in a test whose threads create no files meanwhile.
class ScopedUmask {
 public:
  explicit ScopedUmask(unsigned mask);
  ~ScopedUmask();
  ScopedUmask(const ScopedUmask&) = delete;
  ScopedUmask& operator=(const ScopedUmask&) = delete;

 private:
  unsigned old_;
};

// The permission bits (st_mode & 07777) of every file and folder under `dir`, `dir` itself
// excluded, keyed by the path relative to `dir` ("keys/vault.key"). Symlinks are not
// followed. Empty if `dir` cannot be read.
std::map<std::string, int> ModesUnder(const std::string& dir);

}  // namespace keel::testing
