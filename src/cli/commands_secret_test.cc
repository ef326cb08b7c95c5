// The canary test: a recognisable random value is set as a secret, then every output of
// every secret command (including the error paths), the ledger, the artifacts, keel.db and
// its WAL, snapshots and a restored copy are scanned: the value must appear nowhere.
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/hash.h"
#include "core/random.h"
#include "core/testing_util.h"
#include "store/vault.h"
#include "store/workspace.h"

namespace keel {
namespace {

using keel::testing::ProcessResult;
using keel::testing::ReadFileOrDie;
using keel::testing::RunKeel;
using keel::testing::TempDir;
using keel::testing::WriteFile;

std::string RandomCanary() {
  uint8_t b[16];
  SystemRandom()->Fill(b, sizeof b);
  return "CANARY-" + ToHex(b, sizeof b) + "-VALUE";
}

class CanaryScan {
 public:
  explicit CanaryScan(std::string canary) : canary_(std::move(canary)) {
    hex_ = ToHex(reinterpret_cast<const uint8_t*>(canary_.data()), canary_.size());
  }
  // Runs keel and remembers what it printed.
  ProcessResult Run(const std::vector<std::string>& args, const std::string& in = "",
                    const std::map<std::string, std::string>& env = {}) {
    ProcessResult r = RunKeel(args, in, env);
    outputs_.push_back(r.out);
    outputs_.push_back(r.err);
    return r;
  }
  void ExpectAbsentIn(const std::string& text, const std::string& where) {
    EXPECT_EQ(text.find(canary_), std::string::npos) << "canary in " << where;
    EXPECT_EQ(text.find(hex_), std::string::npos) << "hex canary in " << where;
    // Also a prefix long enough to be unmistakable (a truncated copy is still a leak).
    EXPECT_EQ(text.find(canary_.substr(0, 24)), std::string::npos) << "canary prefix in " << where;
  }
  void ExpectNowhere(const std::string& root, size_t min_files) {
    for (size_t i = 0; i < outputs_.size(); ++i) {
      ExpectAbsentIn(outputs_[i], "command output #" + std::to_string(i));
    }
    size_t files = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
      if (!e.is_regular_file()) continue;
      ExpectAbsentIn(ReadFileOrDie(e.path().string()), e.path().string());
      ++files;
    }
    EXPECT_GE(files, min_files);
  }

 private:
  std::string canary_, hex_;
  std::vector<std::string> outputs_;
};

TEST(SecretCli, CanaryNeverLeaves) {
  TempDir tmp;
  const std::string canary = RandomCanary();
  CanaryScan scan(canary);
  const std::string ws = tmp.Sub("ws");
  ASSERT_EQ(scan.Run({"init", ws}).exit_code, 0);
  auto w = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"-w", ws});
    return args;
  };

  ProcessResult r = scan.Run(w({"secret", "set", "smtp.password"}), canary + "\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "secret smtp.password set\n");
  ASSERT_EQ(scan.Run(w({"secret", "set", "smtp.password"}), canary + "\r\n").exit_code, 0);
  ASSERT_EQ(scan.Run(w({"secret", "set", "api.key"}), "two\n\n").exit_code, 0);
  r = scan.Run(w({"secret", "list"}));
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("smtp.password"), std::string::npos);
  r = scan.Run(w({"secret", "list", "--json"}));
  ASSERT_EQ(r.exit_code, 0);
  auto list = nlohmann::json::parse(r.out);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[1]["name"], "smtp.password");

  // Error paths, each fed the canary on standard input.
  EXPECT_EQ(scan.Run(w({"secret", "set", "bad name"}), canary).exit_code, 65);
  EXPECT_EQ(scan.Run(w({"secret", "set", canary + "!"}), canary).exit_code, 65);
  EXPECT_EQ(scan.Run(w({"secret", "set", "empty"}), "").exit_code, 65);
  EXPECT_EQ(scan.Run(w({"secret", "set", "empty"}), "\n").exit_code, 65);
  r = scan.Run(w({"secret", "set", "big"}), canary + std::string(70000, 'x'));
  EXPECT_EQ(r.exit_code, 65);
  EXPECT_NE(r.err.find("65536"), std::string::npos) << r.err;
  EXPECT_EQ(scan.Run({"-w", tmp.Sub("nowhere"), "secret", "set", "x"}, canary).exit_code, 66);
  EXPECT_EQ(scan.Run(w({"secret", "rm", "never.set"})).exit_code, 66);
  EXPECT_EQ(scan.Run(w({"secret"})).exit_code, 64);
  EXPECT_EQ(scan.Run(w({"secret", "set"}), canary).exit_code, 64);
  // A value on the command line is refused, and not echoed back.
  r = scan.Run(w({"secret", "set", "a", canary}));
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_NE(r.err.find("standard input"), std::string::npos) << r.err;

  // The key file readable by others: refused with a clear message.
  const std::string key = ws + "/keys/vault.key";
  ASSERT_EQ(::chmod(key.c_str(), 0644), 0);
  r = scan.Run(w({"secret", "set", "other"}), canary);
  EXPECT_EQ(r.exit_code, 77);
  EXPECT_NE(r.err.find("chmod 600"), std::string::npos) << r.err;
  ASSERT_EQ(::chmod(key.c_str(), 0600), 0);

  // The stored value is really there (so the scans below are not vacuous), and its use is
  // recorded.
  {
    Env env;
    auto wsp = std::move(store::Workspace::Open(ws, {}, env)).value();
    store::Vault vault(wsp.get(), {});
    auto v = vault.GetSecret("smtp.password", {"adapter:smtp", "login", "", ""});
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(v->Reveal(), canary);
    EXPECT_EQ(vault.GetSecret("api.key", {})->Reveal(), "two\n");
  }
  ASSERT_EQ(scan.Run(w({"secret", "set", "temp"}), "temp-value").exit_code, 0);
  ASSERT_EQ(scan.Run(w({"secret", "rm", "temp"})).exit_code, 0);
  r = scan.Run(w({"ledger", "--json"}));
  ASSERT_EQ(r.exit_code, 0);
  auto ledger = nlohmann::json::parse(r.out);
  std::vector<std::string> kinds;
  for (const auto& e : ledger) kinds.push_back(e["kind"]);
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "secret.used"), kinds.end());
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "secret.removed"), kinds.end());
  ASSERT_EQ(scan.Run(w({"artifact", "put", "-"}), "an artifact\n").exit_code, 0);

  // Snapshots and a restored copy carry ciphertext only.
  r = scan.Run(w({"snapshot"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = scan.Run(w({"snapshot", "--list", "--json"}));
  auto snaps = nlohmann::json::parse(r.out);
  ASSERT_EQ(snaps.size(), 1u);
  r = scan.Run(w({"restore", snaps[0]["name"], tmp.Sub("restored")}));
  ASSERT_EQ(r.exit_code, 0) << r.err;

  // A replaced key: DataLoss naming the secret, not the value.
  std::string good_key = ReadFileOrDie(key);
  WriteFile(key, std::string(32, 'k'));
  r = scan.Run(w({"secret", "set", "other"}), canary);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("does not open this vault"), std::string::npos) << r.err;
  WriteFile(key, good_key);

  scan.ExpectNowhere(tmp.path(), 12);
}

TEST(SecretCli, PassphraseModeWrongAndMissingPassphrase) {
  TempDir tmp;
  const std::string canary = RandomCanary();
  CanaryScan scan(canary);
  const std::string ws = tmp.Sub("ws");
  ASSERT_EQ(scan.Run({"init", ws}).exit_code, 0);
  std::string cfg = ReadFileOrDie(ws + "/keel.yaml");
  auto pos = cfg.find("  key: file\n");
  ASSERT_NE(pos, std::string::npos);
  cfg.replace(pos, 12, "  key: passphrase\n  kdf: interactive\n");
  WriteFile(ws + "/keel.yaml", cfg);

  const std::map<std::string, std::string> right = {{"KEEL_VAULT_PASSPHRASE", "open sesame"}};
  const std::map<std::string, std::string> wrong = {{"KEEL_VAULT_PASSPHRASE", "open barley"}};
  ProcessResult r = scan.Run({"-w", ws, "secret", "set", "token"}, canary, {});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("KEEL_VAULT_PASSPHRASE"), std::string::npos) << r.err;
  r = scan.Run({"-w", ws, "secret", "set", "token"}, canary, right);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(std::filesystem::exists(ws + "/keys/vault.key"));
  r = scan.Run({"-w", ws, "secret", "set", "token2"}, canary, wrong);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("does not open this vault"), std::string::npos) << r.err;
  EXPECT_EQ(scan.Run({"-w", ws, "secret", "set", "token2"}, canary, right).exit_code, 0);
  EXPECT_EQ(scan.Run({"-w", ws, "secret", "list"}, "", wrong).exit_code, 0)
      << "listing names needs no key";
  {
    Env env;
    auto wsp = std::move(store::Workspace::Open(ws, {}, env)).value();
    store::VaultOptions o;
    o.key_mode = store::VaultKeyMode::kPassphrase;
    o.passphrase = "open sesame";
    store::Vault vault(wsp.get(), o);
    EXPECT_EQ(vault.GetSecret("token", {})->Reveal(), canary);
  }
  scan.ExpectNowhere(tmp.path(), 2);
}

TEST(SecretCli, TerminalInputIsNotEchoed) {
  TempDir tmp;
  ASSERT_EQ(RunKeel({"init", tmp.Sub("ws")}).exit_code, 0);
  const std::string canary = RandomCanary();
  int master = -1;
  pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::string bin = keel::testing::KeelBinary();
    std::string ws = tmp.Sub("ws");
    ::execl(bin.c_str(), bin.c_str(), "-w", ws.c_str(), "secret", "set", "typed", nullptr);
    ::_exit(127);
  }
  std::string seen;
  // Reads what the child shows, giving up (and killing it) after 20 s of silence.
  auto read_some = [&]() -> bool {
    struct pollfd p = {master, POLLIN, 0};
    if (::poll(&p, 1, 20000) <= 0) {
      ::kill(pid, SIGKILL);
      ADD_FAILURE() << "keel did not answer on the terminal; saw: " << seen;
      return false;
    }
    char buf[4096];
    ssize_t n = ::read(master, buf, sizeof buf);
    if (n <= 0) return false;
    seen.append(buf, static_cast<size_t>(n));
    return true;
  };
  // Wait for the prompt, type the value, read until the child closes the terminal.
  while (seen.find("input hidden") == std::string::npos && read_some()) {
  }
  std::string line = canary + "\n";
  ASSERT_EQ(::write(master, line.data(), line.size()), static_cast<ssize_t>(line.size()));
  while (read_some()) {
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(master);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << seen;
  EXPECT_NE(seen.find("secret typed set"), std::string::npos) << seen;
  EXPECT_EQ(seen.find(canary), std::string::npos) << "the typed value was echoed";
  Env env;
  auto wsp = std::move(store::Workspace::Open(tmp.Sub("ws"), {}, env)).value();
  store::Vault vault(wsp.get(), {});
  EXPECT_EQ(vault.GetSecret("typed", {})->Reveal(), canary);
}

// A bad `vault:` section in keel.yaml is reported by every secret command (before a value
// is read), naming the line; commands that use no secret still run.
TEST(SecretCli, BadVaultSectionIsReported) {
  TempDir tmp;
  const std::string ws = tmp.Sub("ws");
  ASSERT_EQ(RunKeel({"init", ws}).exit_code, 0);
  std::string cfg = ReadFileOrDie(ws + "/keel.yaml");
  auto pos = cfg.find("  key: file\n");
  ASSERT_NE(pos, std::string::npos);
  cfg.replace(pos, 12, "  key: filee\n");
  WriteFile(ws + "/keel.yaml", cfg);
  for (std::vector<std::string> args : {std::vector<std::string>{"secret", "set", "token"},
                                        {"secret", "list"},
                                        {"secret", "rm", "token"}}) {
    args.insert(args.begin(), {"-w", ws});
    ProcessResult r = RunKeel(args, "a value\n");
    EXPECT_EQ(r.exit_code, 65) << args[3] << ": " << r.err;
    EXPECT_NE(r.err.find("keel.yaml"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("line"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("a value"), std::string::npos) << r.err;
  }
  EXPECT_EQ(RunKeel({"-w", ws, "record", "list"}).exit_code, 0);
}

}  // namespace
}  // namespace keel
