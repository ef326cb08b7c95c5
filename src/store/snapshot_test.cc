#include "store/snapshot.h"

#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/json.h"
#include "core/testing_fault_fs.h"
#include "core/testing_util.h"
#include "store/artifacts.h"
#include "store/ledger.h"
#include "store/vault.h"

namespace keel::store {
namespace {

using keel::testing::ReadFileOrDie;
using keel::testing::TempDir;
using keel::testing::WriteFile;

struct SnapFixture {
  TempDir tmp;
  SimulatedClock clock;
  SeededRandom random{11};
  Env env;
  std::unique_ptr<Workspace> ws;
  SnapFixture() {
    env.clock = &clock;
    env.random = &random;
    EXPECT_TRUE(Workspace::Init(tmp.Sub("ws"), InitOptions{}, env).ok());
    ws = std::move(Workspace::Open(tmp.Sub("ws"), {}, env)).value();
  }
  std::string Put(const std::string& content) {
    std::string hash;
    EXPECT_TRUE(ws->Write([&](Txn& t) -> Status {
                    KEEL_ASSIGN_OR_RETURN(auto info, PutArtifact(t, content, {}));
                    hash = info.hash;
                    return OkStatus();
                  }).ok());
    return hash;
  }
  void Note(int i) {
    ASSERT_TRUE(
        ws->Write([&](Txn& t) {
            return t
                .Append({"operator", "note.added", "", "", "", CanonicalJson(Json{{"i", i}}), {}})
                .status();
          }).ok());
  }
};

// Recomputes every hash and link of `ws`'s ledger (what `keel verify` will do); returns the
// entries' hashes in order.
std::vector<Digest> VerifiedChain(Workspace& ws) {
  std::vector<Digest> hashes;
  Digest prev{};
  std::string scratch;
  Status s = ws.ScanLedger(1, [&](const LedgerEntry& e) -> Status {
    if (e.seq != static_cast<int64_t>(hashes.size()) + 1) return DataLoss("gap");
    if (e.prev_hash != prev) return DataLoss("bad link at " + std::to_string(e.seq));
    if (ComputeEntryHash(e, &scratch) != e.hash)
      return DataLoss("bad hash at " + std::to_string(e.seq));
    prev = e.hash;
    hashes.push_back(e.hash);
    return OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return hashes;
}

TEST(Snapshot, RoundTripRestoresAVerifiableWorkspace) {
  SnapFixture f;
  std::string a1 = f.Put("first artifact");
  std::string a2 = f.Put(std::string(300000, 'z'));
  Vault vault(f.ws.get(), {});
  ASSERT_TRUE(f.ws->Write([&](Txn& t) { return vault.SetSecret(t, "api", "key-123"); }).ok());
  WriteFile(f.tmp.Sub("ws/checkpoints.log"), "checkpoint line\n");
  int64_t size_before = *f.ws->LedgerSize();

  auto r = CreateSnapshot(*f.ws, {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->name, "20260101T000000Z");
  EXPECT_EQ(r->ledger_size, size_before);
  EXPECT_EQ(r->artifacts, 2u);
  EXPECT_EQ(*f.env.fs->Mode(r->path + "/keys"), 0700);
  EXPECT_EQ(*f.env.fs->Mode(r->path + "/keys/vault.key"), 0600);
  auto manifest = nlohmann::json::parse(ReadFileOrDie(r->path + "/manifest.json"));
  EXPECT_EQ(manifest["format_version"], 1);
  EXPECT_EQ(manifest["workspace_id"], f.ws->config().id);
  EXPECT_EQ(manifest["ledger"]["size"], size_before);
  EXPECT_EQ(manifest["artifacts"].size(), 2u);
  EXPECT_EQ(manifest["db"]["sha256"], Sha256Hex(ReadFileOrDie(r->path + "/keel.db")));
  EXPECT_FALSE(f.env.fs->Exists(r->path + "/keel.db-wal"));
  // The source ledger records the snapshot.
  LedgerQuery q;
  q.kind = "snapshot.created";
  auto created = *f.ws->QueryLedger(q);
  ASSERT_EQ(created.size(), 1u);
  EXPECT_EQ(created[0].subject, r->name);

  auto restored = RestoreSnapshot(r->path, f.tmp.Sub("copy"), f.env);
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(restored->ledger_size, size_before);
  auto copy = std::move(Workspace::Open(f.tmp.Sub("copy"), {}, f.env)).value();
  EXPECT_EQ(copy->config().id, f.ws->config().id);
  auto src_chain = VerifiedChain(*f.ws);
  auto copy_chain = VerifiedChain(*copy);
  ASSERT_EQ(copy_chain.size(), static_cast<size_t>(size_before) + 1);  // + workspace.restored
  for (int64_t i = 0; i < size_before; ++i) EXPECT_EQ(copy_chain[i], src_chain[i]);
  EXPECT_EQ(*GetArtifact(*copy, a1), "first artifact");
  EXPECT_EQ(GetArtifact(*copy, a2)->size(), 300000u);
  EXPECT_EQ(ReadFileOrDie(f.tmp.Sub("copy/checkpoints.log")), "checkpoint line\n");
  EXPECT_EQ(*f.env.fs->Mode(f.tmp.Sub("copy/keys")), 0700);
  EXPECT_EQ(*f.env.fs->Mode(f.tmp.Sub("copy/keys/vault.key")), 0600);
  Vault copy_vault(copy.get(), {});
  EXPECT_EQ(copy_vault.GetSecret("api", {})->Reveal(), "key-123");
  EXPECT_TRUE(f.env.fs->Exists(f.tmp.Sub("copy/snapshots")));
}

TEST(Snapshot, NamesArePrunedNewestKept) {
  SnapFixture f;
  std::vector<std::string> names;
  for (int i = 0; i < 4; ++i) {
    auto r = CreateSnapshot(*f.ws, {2, "operator"});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    names.push_back(r->name);
  }
  // Same second: suffixes keep names unique and ordered.
  EXPECT_EQ(names[0], "20260101T000000Z");
  EXPECT_EQ(names[1], "20260101T000000Z-1");
  EXPECT_EQ(names[3], "20260101T000000Z-3");
  f.clock.Advance(3600LL * 1000000);
  auto r = CreateSnapshot(*f.ws, {3, "operator"});
  ASSERT_TRUE(r.ok());
  auto list = *ListSnapshots(f.env.fs, f.ws->snapshots_dir());
  EXPECT_EQ(list, (std::vector<std::string>{names[2], names[3], "20260101T010000Z"}));
  // The default comes from keel.yaml (7).
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(CreateSnapshot(*f.ws, {}).ok());
  EXPECT_EQ(ListSnapshots(f.env.fs, f.ws->snapshots_dir())->size(), 7u);
}

TEST(Snapshot, ConsistentPrefixWhileAnotherConnectionWrites) {
  SnapFixture f;
  for (int i = 0; i < 10; ++i) f.Put("seed " + std::to_string(i));
  // A second Workspace: its own SQLite connection, as another process would have.
  auto writer_ws = std::move(Workspace::Open(f.tmp.Sub("ws"), {}, f.env)).value();
  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  std::thread writer([&] {
    for (int i = 0; !stop.load() && i < 100000; ++i) {
      Status s = writer_ws->Write([&](Txn& t) -> Status {
        PutArtifactOptions o;
        o.media_type = "text/plain";
        KEEL_RETURN_IF_ERROR(PutArtifact(t, "concurrent " + std::to_string(i), o).status());
        return t.Append({"agent:w", "note.added", "", "", "", "{}", {}}).status();
      });
      if (!s.ok()) {
        ADD_FAILURE() << s.ToString();
        return;
      }
      written.fetch_add(1);
      // A pause between transactions, as real writers have: a writer that re-takes the
      // lock back to back starves SQLite's polling busy handler of the other connection.
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  struct Joiner {
    std::atomic<bool>& stop;
    std::thread& t;
    ~Joiner() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } joiner{stop, writer};
  std::vector<SnapshotResult> snaps;
  int overlapped = 0;  // snapshots during which the writer committed something
  for (int i = 0; i < 3; ++i) {
    while (written.load() < (i + 1) * 10) std::this_thread::yield();
    int before = written.load();
    auto r = CreateSnapshot(*f.ws, {10, "operator"});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (written.load() > before) ++overlapped;
    snaps.push_back(*r);
  }
  stop = true;
  writer.join();
  EXPECT_GT(overlapped, 0);
  auto source = VerifiedChain(*f.ws);
  int64_t last_size = 0;
  for (size_t i = 0; i < snaps.size(); ++i) {
    const auto& s = snaps[i];
    EXPECT_GE(s.ledger_size, last_size);
    last_size = s.ledger_size;
    std::string dest = f.tmp.Sub("restore" + std::to_string(i));
    auto restored = RestoreSnapshot(s.path, dest, f.env);
    ASSERT_TRUE(restored.ok()) << restored.status().ToString();
    auto copy = std::move(Workspace::Open(dest, {}, f.env)).value();
    auto chain = VerifiedChain(*copy);
    ASSERT_EQ(chain.size(), static_cast<size_t>(s.ledger_size) + 1);
    // A prefix of the source's ledger, entry for entry.
    for (int64_t k = 0; k < s.ledger_size; ++k) ASSERT_EQ(chain[k], source[k]) << k;
    // Every artifact the copy's ledger references is present and intact.
    auto artifacts = *ListArtifacts(*copy);
    for (const auto& a : artifacts) {
      ASSERT_TRUE(GetArtifact(*copy, a.hash).ok()) << a.hash;
    }
  }
}

TEST(Snapshot, DamagedArtifactFailsTheSnapshotAndLeavesNothingPublished) {
  SnapFixture f;
  std::string h = f.Put("precious");
  std::string path = ArtifactPath(f.ws->artifacts_dir(), h);
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  WriteFile(path, "tampered");
  auto r = CreateSnapshot(*f.ws, {});
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find(h), std::string::npos);
  EXPECT_TRUE(ListSnapshots(f.env.fs, f.ws->snapshots_dir())->empty());
  auto left = *f.env.fs->ListDir(f.ws->snapshots_dir());
  for (const auto& n : left) EXPECT_NE(n.rfind(".tmp-", 0), 0u) << n << " left after a failure";
  // A stray leftover of a killed snapshot is removed by the next one.
  ASSERT_TRUE(f.env.fs->CreateDirs(f.ws->snapshots_dir() + "/.tmp-20250101T000000Z", 0700).ok());
  // Repaired: the next snapshot publishes and removes the earlier temp folder.
  WriteFile(path, "precious");
  ASSERT_TRUE(CreateSnapshot(*f.ws, {}).ok());
  auto names = *f.env.fs->ListDir(f.ws->snapshots_dir());
  for (const auto& n : names) {
    EXPECT_NE(n.rfind(".tmp-", 0), 0u) << n;
  }
}

TEST(Snapshot, RestoreRefusesBadTargetsAndDamagedSnapshots) {
  SnapFixture f;
  f.Put("an artifact");
  f.Note(1);
  auto r = CreateSnapshot(*f.ws, {});
  ASSERT_TRUE(r.ok());
  // Non-empty target.
  WriteFile(f.tmp.Sub("occupied"), "");
  ASSERT_TRUE(f.env.fs->CreateDirs(f.tmp.Sub("full"), 0755).ok());
  WriteFile(f.tmp.Sub("full/x"), "keep me");
  EXPECT_EQ(RestoreSnapshot(r->path, f.tmp.Sub("full"), f.env).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReadFileOrDie(f.tmp.Sub("full/x")), "keep me");
  // An empty existing folder is fine.
  ASSERT_TRUE(f.env.fs->CreateDirs(f.tmp.Sub("empty"), 0755).ok());
  EXPECT_TRUE(RestoreSnapshot(r->path, f.tmp.Sub("empty"), f.env).ok());

  // Copy the snapshot and damage the copies in different ways.
  auto damaged = [&](const std::string& tag,
                     const std::function<void(const std::string&)>& damage) {
    std::string copy = f.tmp.Sub("snap-" + tag);
    auto rr = RestoreSnapshot(r->path, f.tmp.Sub("scratch-" + tag), f.env);  // sanity
    EXPECT_TRUE(rr.ok());
    std::string cmd = "cp -a '" + r->path + "' '" + copy + "' && chmod -R u+w '" + copy + "'";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
    damage(copy);
    std::string dest = f.tmp.Sub("out-" + tag);
    auto res = RestoreSnapshot(copy, dest, f.env);
    EXPECT_FALSE(res.ok()) << tag;
    EXPECT_FALSE(f.env.fs->Exists(dest)) << tag << ": a failed restore leaves nothing";
    return res.status();
  };
  Status s = damaged("db", [](const std::string& p) {
    std::string db = ReadFileOrDie(p + "/keel.db");
    db[db.size() / 2] ^= 1;
    WriteFile(p + "/keel.db", db);
  });
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  s = damaged("artifact", [&](const std::string& p) {
    auto m = nlohmann::json::parse(ReadFileOrDie(p + "/manifest.json"));
    std::string h = m["artifacts"][0]["hash"];
    WriteFile(p + "/artifacts/" + h.substr(0, 2) + "/" + h, "not it");
  });
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  s = damaged("traversal", [](const std::string& p) {
    auto m = nlohmann::json::parse(ReadFileOrDie(p + "/manifest.json"));
    m["files"].push_back({{"path", "../../evil"}, {"size", 1}, {"sha256", "00"}, {"mode", 420}});
    WriteFile(p + "/manifest.json", m.dump());
  });
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  s = damaged("ledger-size", [](const std::string& p) {
    auto m = nlohmann::json::parse(ReadFileOrDie(p + "/manifest.json"));
    m["ledger"]["size"] = 1;
    WriteFile(p + "/manifest.json", m.dump());
  });
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  s = damaged("newer", [](const std::string& p) {
    auto m = nlohmann::json::parse(ReadFileOrDie(p + "/manifest.json"));
    m["format_version"] = 99;
    WriteFile(p + "/manifest.json", m.dump());
  });
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  s = damaged("garbage", [](const std::string& p) { WriteFile(p + "/manifest.json", "{oops"); });
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
}

TEST(Snapshot, ResolveNamesAndPaths) {
  SnapFixture f;
  auto r = CreateSnapshot(*f.ws, {});
  ASSERT_TRUE(r.ok());
  const std::string dir = f.ws->snapshots_dir();
  EXPECT_EQ(*ResolveSnapshot(f.env.fs, r->name, dir), r->path);
  EXPECT_EQ(*ResolveSnapshot(f.env.fs, r->path, ""), r->path);
  EXPECT_EQ(ResolveSnapshot(f.env.fs, "20990101T000000Z", dir).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(ResolveSnapshot(f.env.fs, f.tmp.path(), dir).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(f.env.fs->CreateDirs(dir + "/.tmp-20260101T000001Z", 0700).ok());
  WriteFile(dir + "/.tmp-20260101T000001Z/manifest.json", "{}");
  EXPECT_EQ(ResolveSnapshot(f.env.fs, dir + "/.tmp-20260101T000001Z", dir).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(ListSnapshots(f.env.fs, dir)->size(), 1u);
}

// Every fsync of a snapshot goes through the FileSystem, the copy of keel.db that SQLite
// wrote included: whichever one fails, the snapshot is DataLoss and nothing that looks
// like a snapshot is left, neither at once nor after a power loss.
TEST(Snapshot, FailedFsyncIsDataLossAndLeavesNoSnapshot) {
  TempDir tmp;
  SimulatedClock clock;
  SeededRandom random{12};
  keel::testing::FaultInjectionFileSystem ffs;
  ffs.SetRealSyncs(false);
  Env env;
  env.clock = &clock;
  env.random = &random;
  env.fs = &ffs;
  ASSERT_TRUE(Workspace::Init(tmp.Sub("ws"), InitOptions{}, env).ok());
  auto ws = std::move(Workspace::Open(tmp.Sub("ws"), {}, env)).value();
  ASSERT_TRUE(ws->Write([&](Txn& t) { return PutArtifact(t, "an artifact", {}).status(); }).ok());
  ffs.MarkAllDurable();

  int64_t before = ffs.syncs();
  auto first = CreateSnapshot(*ws, {});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  const int64_t syncs = ffs.syncs() - before;
  ASSERT_GE(syncs, 6);
  ffs.MarkAllDurable();

  bool saw_db = false;
  for (int64_t k = 1; k <= syncs; ++k) {
    SCOPED_TRACE("failing fsync " + std::to_string(k) + " of " + std::to_string(syncs));
    ffs.FailSyncAt(k);
    auto r = CreateSnapshot(*ws, {});
    ffs.ClearFaults();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().ToString();
    if (r.status().message().find("/keel.db failed") != std::string::npos) saw_db = true;
    for (int crashed = 0; crashed < 2; ++crashed) {
      if (crashed) ffs.SimulateCrash();
      auto published = ListSnapshots(&ffs, ws->snapshots_dir());
      ASSERT_TRUE(published.ok());
      EXPECT_EQ(published.value(), std::vector<std::string>{first->name});
      auto names = ffs.ListDir(ws->snapshots_dir());
      ASSERT_TRUE(names.ok());
      for (const std::string& n : names.value()) {
        EXPECT_TRUE(n == first->name || n == ".lock") << n << " left behind";
      }
    }
    ffs.MarkAllDurable();
  }
  EXPECT_TRUE(saw_db) << "the fsync of the database copy is not injectable";
  // The disk recovered: the next snapshot is published.
  ASSERT_TRUE(CreateSnapshot(*ws, {}).ok());
  EXPECT_EQ(ListSnapshots(&ffs, ws->snapshots_dir())->size(), 2u);
}

// One snapshot at a time: another holder of snapshots/.lock makes a snapshot Unavailable.
TEST(Snapshot, ConcurrentSnapshotIsRefused) {
  SnapFixture f;
  ASSERT_TRUE(f.env.fs->CreateDirs(f.ws->snapshots_dir()).ok());
  auto held =
      LockFile(f.env.fs, f.ws->snapshots_dir() + "/.lock", LockMode::kExclusive, LockWait::kNoWait);
  ASSERT_TRUE(held.ok() && *held != nullptr);
  auto r = CreateSnapshot(*f.ws, {});
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("another `keel snapshot`"), std::string::npos);
  held->reset();
  EXPECT_TRUE(CreateSnapshot(*f.ws, {}).ok());
}

TEST(Snapshot, ReadOnlyWorkspaceIsRefused) {
  SnapFixture f;
  WorkspaceOpenOptions ro;
  ro.read_only = true;
  auto ws = std::move(Workspace::Open(f.tmp.Sub("ws"), ro, f.env)).value();
  EXPECT_EQ(CreateSnapshot(*ws, {}).status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace keel::store
