// A real `keel snapshot` process SIGKILLed at crash point snapshot.mid (everything written,
// nothing published): the half-made snapshot is never taken for a complete one, and the next
// snapshot removes it. Also: snapshots taken while a child `keel` process keeps appending
// restore to a consistent prefix of the ledger.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/testing_util.h"
#include "store/ledger.h"
#include "store/snapshot.h"
#include "store/workspace.h"

namespace keel::store {
namespace {

using keel::testing::RunKeel;
using keel::testing::TempDir;

std::vector<std::string> Names(const std::string& dir) {
  return std::move(DefaultFileSystem()->ListDir(dir)).value();
}

// Verifies the chain of the workspace at `dir` and returns its entry hashes.
std::vector<Digest> Chain(const std::string& dir) {
  Env env;
  auto ws = std::move(Workspace::Open(dir, {}, env)).value();
  std::vector<Digest> out;
  Digest prev{};
  std::string scratch;
  Status s = ws->ScanLedger(1, [&](const LedgerEntry& e) -> Status {
    if (e.prev_hash != prev || ComputeEntryHash(e, &scratch) != e.hash) {
      return DataLoss("chain broken at " + std::to_string(e.seq));
    }
    prev = e.hash;
    out.push_back(e.hash);
    return OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

TEST(SnapshotCrash, KilledMidSnapshotIsNeverPublishedAndIsCleanedUp) {
  TempDir tmp;
  const std::string ws = tmp.Sub("ws");
  ASSERT_EQ(RunKeel({"init", ws}).exit_code, 0);
  ASSERT_EQ(RunKeel({"-w", ws, "artifact", "put", "-"}, "content\n").exit_code, 0);
  ASSERT_EQ(RunKeel({"-w", ws, "secret", "set", "k"}, "v").exit_code, 0);

  auto r = RunKeel({"-w", ws, "snapshot"}, "", {{"KEEL_CRASH_AT", "snapshot.mid"}});
  ASSERT_EQ(r.exit_code, -SIGKILL) << r.out << r.err;
  auto names = Names(ws + "/snapshots");
  std::vector<std::string> tmps;
  for (const auto& n : names) {
    if (n.rfind(".tmp-", 0) == 0) tmps.push_back(n);
  }
  ASSERT_EQ(tmps.size(), 1u);
  // Complete inside (manifest and all), yet not a snapshot: not listed, not restorable.
  EXPECT_TRUE(DefaultFileSystem()->Exists(ws + "/snapshots/" + tmps[0] + "/manifest.json"));
  EXPECT_TRUE(ListSnapshots(DefaultFileSystem(), ws + "/snapshots")->empty());
  r = RunKeel({"-w", ws, "snapshot", "--list"});
  EXPECT_EQ(r.out, "");
  r = RunKeel({"-w", ws, "restore", ws + "/snapshots/" + tmps[0], tmp.Sub("r1")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("unfinished"), std::string::npos) << r.err;
  EXPECT_FALSE(DefaultFileSystem()->Exists(tmp.Sub("r1")));
  // The source ledger has no snapshot.created for it.
  r = RunKeel({"-w", ws, "ledger", "--kind", "snapshot.created", "--json"});
  EXPECT_EQ(nlohmann::json::parse(r.out).size(), 0u);

  r = RunKeel({"-w", ws, "snapshot", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string name = nlohmann::json::parse(r.out)["name"];
  names = Names(ws + "/snapshots");
  for (const auto& n : names) EXPECT_NE(n.rfind(".tmp-", 0), 0u) << n << " was left behind";
  r = RunKeel({"-w", ws, "restore", name, tmp.Sub("r2")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(Chain(tmp.Sub("r2")).empty());
}

TEST(SnapshotCrash, SnapshotsWhileAChildProcessAppends) {
  TempDir tmp;
  const std::string ws = tmp.Sub("ws");
  ASSERT_EQ(RunKeel({"init", ws}).exit_code, 0);
  // A child shell runs `keel artifact put` in a loop: another process writing the ledger.
  std::string script = "i=0; while [ $i -lt 400 ] && [ ! -e '" + tmp.Sub("stop") +
                       "' ]; do echo \"note $i\" | '" + keel::testing::KeelBinary() + "' -w '" +
                       ws + "' artifact put - >/dev/null || exit 1; i=$((i+1)); done";
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::execl("/bin/sh", "sh", "-c", script.c_str(), nullptr);
    ::_exit(127);
  }
  std::vector<std::string> snaps;
  for (int i = 0; i < 3; ++i) {
    ::usleep(300000);
    auto r = RunKeel({"-w", ws, "snapshot", "--json", "--keep", "10"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    snaps.push_back(nlohmann::json::parse(r.out)["name"]);
  }
  keel::testing::WriteFile(tmp.Sub("stop"), "");
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);

  auto source = Chain(ws);
  size_t last = 0;
  for (size_t i = 0; i < snaps.size(); ++i) {
    std::string dest = tmp.Sub("restored" + std::to_string(i));
    auto r = RunKeel({"-w", ws, "restore", snaps[i], dest});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto copy = Chain(dest);
    ASSERT_GE(copy.size(), 2u);
    size_t prefix = copy.size() - 1;  // the last entry is workspace.restored
    EXPECT_GE(prefix, last);
    last = prefix;
    ASSERT_LE(prefix, source.size());
    for (size_t k = 0; k < prefix; ++k) ASSERT_EQ(copy[k], source[k]) << "entry " << k + 1;
  }
  EXPECT_GT(last, 1u) << "the child appended before the last snapshot";
}

}  // namespace
}  // namespace keel::store
