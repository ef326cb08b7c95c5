#include "store/workspace.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cctype>
#include <map>
#include <nlohmann/json.hpp>

#include "core/json.h"
#include "core/testing_util.h"
#include "store/artifacts.h"
#include "store/checkpoint.h"
#include "store/ledger.h"
#include "store/snapshot.h"
#include "store/sqlite/schema.h"
#include "store/sqlite/sql.h"
#include "store/vault.h"

namespace keel::store {
namespace {

using keel::testing::TempDir;

struct Fixture {
  TempDir tmp;
  SimulatedClock clock;
  SeededRandom random{42};
  Env env;
  std::unique_ptr<Workspace> ws;
  Fixture() {
    env.clock = &clock;
    env.random = &random;
    EXPECT_TRUE(Workspace::Init(tmp.Sub("ws"), InitOptions{}, env).ok());
    auto r = Workspace::Open(tmp.Sub("ws"), WorkspaceOpenOptions{}, env);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    ws = std::move(r).value();
  }
};

TEST(LedgerFormat, PinnedVector) {
  // The example from docs/ledger-format.md. Changing the encoding breaks every workspace.
  LedgerEntry e;
  e.seq = 1;
  e.time_us = 1767225600000000;
  e.actor = "system";
  e.kind = "workspace.created";
  e.payload = R"({"version":1})";
  std::string scratch;
  EncodeEntry(e, &scratch);
  EXPECT_EQ(scratch.substr(0, 15), "keel.ledger.v1\n");
  EXPECT_EQ(scratch.size(), 15u + 8 + 8 + (4 + 6) + (4 + 17) + 4 * 3 + (4 + 13) + 4 + 32);
  EXPECT_EQ(ToHex(ComputeEntryHash(e, &scratch)),
            "d36c0988bfa240809ff25dab8973bdf4c22b4edb065231e75987f771d2def49b");
}

TEST(Workspace, InitCreatesLayoutAndFirstEntry) {
  Fixture f;
  for (const char* p : {"keel.yaml", "keel.db", "artifacts", "snapshots", "keys", "workflows"}) {
    EXPECT_TRUE(f.env.fs->Exists(f.tmp.Sub("ws/") + p)) << p;
  }
  EXPECT_EQ(f.ws->workflows_dir(), f.tmp.Sub("ws/workflows"));
  EXPECT_EQ(*f.env.fs->Mode(f.tmp.Sub("ws/keys")), 0700);
  auto entries = f.ws->QueryLedger({});
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].kind, "workspace.created");
  EXPECT_EQ((*entries)[0].seq, 1);
  EXPECT_EQ(f.ws->config().mode, "sandbox");
  EXPECT_EQ(Workspace::Init(f.tmp.Sub("ws"), InitOptions{}, f.env).code(),
            StatusCode::kAlreadyExists);
}

// A workspace inside another is refused unless asked for; the message names the outer one
// and the way to do it on purpose.
TEST(Workspace, InitRefusesNestingUnlessAllowed) {
  TempDir tmp;
  SimulatedClock clock;
  SeededRandom random{5};
  Env env;
  env.clock = &clock;
  env.random = &random;
  ASSERT_TRUE(Workspace::Init(tmp.Sub("outer"), {}, env).ok());
  for (const char* inner : {"outer/inner", "outer/artifacts/deep/er", "outer/workflows"}) {
    Status s = Workspace::Init(tmp.Sub(inner), {}, env);
    EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << inner << ": " << s.ToString();
    EXPECT_NE(s.message().find(tmp.Sub("outer")), std::string::npos) << s.ToString();
    EXPECT_NE(s.message().find("--allow-nested"), std::string::npos) << s.ToString();
  }
  // Nothing was created for the refused ones.
  EXPECT_FALSE(env.fs->Exists(tmp.Sub("outer/inner")));
  EXPECT_FALSE(env.fs->Exists(tmp.Sub("outer/artifacts/deep")));
  // The same folder twice is still AlreadyExists, not a nesting.
  EXPECT_EQ(Workspace::Init(tmp.Sub("outer"), {}, env).code(), StatusCode::kAlreadyExists);
  // On purpose.
  InitOptions nested;
  nested.allow_nested = true;
  ASSERT_TRUE(Workspace::Init(tmp.Sub("outer/inner"), nested, env).ok());
  EXPECT_TRUE(Workspace::Open(tmp.Sub("outer/inner"), {}, env).ok());
  // A sibling folder is not nested.
  EXPECT_TRUE(Workspace::Init(tmp.Sub("beside"), {}, env).ok());
}

// Everything keel creates in a workspace is owner-only, whatever the umask: folders 0700,
// files 0600, artifact files 0400 (immutable). That covers keel.db's -wal and -shm (SQLite
// gives them the database file's bits), the writers' lock file, the checkpoint log and
// keys, a snapshot, and a workspace restored from it.
TEST(Permissions, WorkspaceIsOwnerOnlyWhateverTheUmask) {
  for (unsigned mask : {000u, 022u, 077u}) {
    SCOPED_TRACE("umask " + std::to_string(mask));
    keel::testing::ScopedUmask umask(mask);
    TempDir tmp;
    SimulatedClock clock;
    SeededRandom random{9};
    Env env;
    env.clock = &clock;
    env.random = &random;
    ASSERT_TRUE(Workspace::Init(tmp.Sub("ws"), {}, env).ok());
    auto ws = std::move(Workspace::Open(tmp.Sub("ws"), {}, env)).value();
    std::string hash;
    ASSERT_TRUE(ws->Write([&](Txn& t) -> Status {
                    KEEL_ASSIGN_OR_RETURN(auto info, PutArtifact(t, "an invoice", {}));
                    hash = info.hash;
                    return OkStatus();
                  }).ok());
    Vault vault(ws.get(), {});
    ASSERT_TRUE(ws->Write([&](Txn& t) { return vault.SetSecret(t, "api", "k"); }).ok());
    ASSERT_TRUE(Checkpoint(*ws).ok());
    auto snap = CreateSnapshot(*ws, {});
    ASSERT_TRUE(snap.ok()) << snap.status().ToString();

    auto check = [](const std::string& dir, const std::string& what) {
      auto modes = keel::testing::ModesUnder(dir);
      EXPECT_GT(modes.size(), 10u) << what;
      for (const auto& [path, mode] : modes) {
        struct stat st;
        ASSERT_EQ(::lstat((dir + "/" + path).c_str(), &st), 0) << path;
        bool artifact =
            path.rfind("artifacts/", 0) == 0 || path.find("/artifacts/") != std::string::npos;
        int want = S_ISDIR(st.st_mode) ? 0700 : artifact ? 0400 : 0600;
        EXPECT_EQ(mode, want) << what << ": " << path << " is " << std::oct << mode;
      }
    };
    // While the workspace is open: its -wal, -shm and lock file exist.
    for (const char* f : {"keel.db-wal", "keel.db-shm", "keel.db-writers", "checkpoints.log",
                          "keys/ledger.ed25519", "keys/ledger.ed25519.pub", "keys/vault.key"}) {
      EXPECT_TRUE(env.fs->Exists(tmp.Sub("ws/") + f)) << f;
    }
    EXPECT_EQ(*env.fs->Mode(tmp.Sub("ws")), 0700);
    EXPECT_EQ(*env.fs->Mode(ArtifactPath(ws->artifacts_dir(), hash)), 0400);
    check(tmp.Sub("ws"), "workspace");

    auto restored = RestoreSnapshot(snap->path, tmp.Sub("copy"), env);
    ASSERT_TRUE(restored.ok()) << restored.status().ToString();
    auto copy = std::move(Workspace::Open(tmp.Sub("copy"), {}, env)).value();
    ASSERT_TRUE(copy->Write([&](Txn& t) {
                      return t.Append({"operator", "note.added", "", "", "", "{}", {}}).status();
                    })
                    .ok());
    EXPECT_TRUE(env.fs->Exists(tmp.Sub("copy/workflows")));
    EXPECT_EQ(*env.fs->Mode(tmp.Sub("copy")), 0700);
    check(tmp.Sub("copy"), "restored workspace");
  }
}

// Init and restore leave a folder that already exists as the operator made it.
TEST(Permissions, ExistingWorkspaceFolderKeepsItsBits) {
  TempDir tmp;
  SimulatedClock clock;
  SeededRandom random{3};
  Env env;
  env.clock = &clock;
  env.random = &random;
  ASSERT_TRUE(env.fs->CreateDirs(tmp.Sub("mine")).ok());
  ASSERT_EQ(::chmod(tmp.Sub("mine").c_str(), 0750), 0);
  ASSERT_TRUE(Workspace::Init(tmp.Sub("mine"), {}, env).ok());
  EXPECT_EQ(*env.fs->Mode(tmp.Sub("mine")), 0750);
  EXPECT_EQ(*env.fs->Mode(tmp.Sub("mine/keel.db")), 0600);
  EXPECT_EQ(*env.fs->Mode(tmp.Sub("mine/keel.yaml")), 0600);
}

TEST(Workspace, DurabilitySettingsAtOpen) {
  Fixture f;
  std::lock_guard<std::recursive_mutex> l(f.ws->mu());
  // 2 = FULL. With NORMAL an acknowledged commit can roll back after a power loss.
  EXPECT_EQ(*f.ws->db()->QueryInt("PRAGMA synchronous"), 2);
  auto st = f.ws->db()->Prepare("PRAGMA journal_mode");
  ASSERT_TRUE(st.ok());
  ASSERT_TRUE(*(*st)->Step());
  EXPECT_EQ((*st)->Text(0), "wal");
  EXPECT_EQ(*f.ws->db()->QueryInt("PRAGMA foreign_keys"), 1);
  EXPECT_EQ(*f.ws->db()->QueryInt("PRAGMA user_version"), CurrentSchemaVersion());
  EXPECT_EQ(*f.ws->db()->QueryInt("PRAGMA page_size"), kPageSize);
}

TEST(Workspace, ChainLinksAndRollbackKeepsNothing) {
  Fixture f;
  ASSERT_TRUE(f.ws->Write([](Txn& t) -> Status {
                    for (int i = 0; i < 3; ++i) {
                      KEEL_RETURN_IF_ERROR(
                          t.Append({"operator", "note.added", "", "", "", "{}", {}}).status());
                    }
                    return OkStatus();
                  })
                  .ok());
  Status s = f.ws->Write([](Txn& t) -> Status {
    KEEL_RETURN_IF_ERROR(t.Append({"operator", "note.added", "", "", "", "{}", {}}).status());
    return InvalidArgument("changed my mind");
  });
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  auto all = *f.ws->QueryLedger({});
  ASSERT_EQ(all.size(), 4u);
  std::string scratch;
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_EQ(all[i].seq, all[i - 1].seq + 1);
    EXPECT_EQ(all[i].prev_hash, all[i - 1].hash);
    EXPECT_EQ(all[i].hash, ComputeEntryHash(all[i], &scratch));
  }
}

// Each connection remembers the ledger tail it committed (Workspace::TailCache). Two
// connections appending in turn, with rolled-back transactions and non-appending commits
// between, must still form one chain: each sees the other's commits.
TEST(Workspace, TwoConnectionsAppendingInTurnFormOneChain) {
  Fixture f;
  auto other = Workspace::Open(f.tmp.Sub("ws"), WorkspaceOpenOptions{}, f.env);
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  Workspace* ws[2] = {f.ws.get(), other->get()};
  auto append = [](Workspace* w, int i) {
    return w->Write([&](Txn& t) {
      return t
          .Append({"operator", "note.added", "", "", "", "{\"i\":" + std::to_string(i) + "}", {}})
          .status();
    });
  };
  for (int i = 0; i < 60; ++i) {
    Workspace* w = ws[(i / 2 + i % 3) % 2];  // runs of one, two and three on one side
    ASSERT_TRUE(append(w, i).ok());
    if (i % 7 == 0) {
      EXPECT_FALSE(w->Write([](Txn& t) -> Status {
                      KEEL_RETURN_IF_ERROR(
                          t.Append({"operator", "note.added", "", "", "", "{}", {}}).status());
                      return InvalidArgument("rolled back");
                    }).ok());
    }
    if (i % 11 == 0) {
      ASSERT_TRUE(w->Write([](Txn&) { return OkStatus(); }).ok());
    }
  }
  auto all = *f.ws->QueryLedger({});
  std::string scratch;
  int notes = 0;
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_EQ(all[i].seq, all[i - 1].seq + 1);
    EXPECT_EQ(all[i].prev_hash, all[i - 1].hash);
    EXPECT_EQ(all[i].hash, ComputeEntryHash(all[i], &scratch));
    if (all[i].kind == "note.added") ++notes;
  }
  EXPECT_EQ(notes, 60);
}

TEST(Workspace, AppendRejectsBadEntries) {
  Fixture f;
  auto try_append = [&](NewEntry e) {
    return f.ws->Write([&](Txn& t) { return t.Append(e).status(); });
  };
  EXPECT_EQ(try_append({"", "k", "", "", "", "{}", {}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(try_append({"a", "", "", "", "", "{}", {}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(try_append({"a", "k", "", "", "", "[1]", {}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(try_append({"a", "k", "", "", "", "{bad", {}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(try_append({"a", "k", std::string("x\0y", 3), "", "", "{}", {}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(try_append({"a", "k", "", "", "", "{}", {"../../etc/passwd"}}).code(),
            StatusCode::kInvalidArgument);
  std::string big = "{\"x\":\"" + std::string(kMaxPayloadBytes, 'a') + "\"}";
  EXPECT_EQ(try_append({"a", "k", "", "", "", big, {}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*f.ws->LedgerSize(), 1);
}

TEST(Workspace, LedgerIsAppendOnlyInTheDatabase) {
  Fixture f;
  std::lock_guard<std::recursive_mutex> l(f.ws->mu());
  Status up = f.ws->db()->Exec("UPDATE ledger SET actor = 'mallory' WHERE seq = 1");
  EXPECT_FALSE(up.ok());
  EXPECT_NE(up.message().find("append-only"), std::string::npos);
  Status del = f.ws->db()->Exec("DELETE FROM ledger");
  EXPECT_FALSE(del.ok());
  EXPECT_EQ(*f.ws->db()->QueryInt("SELECT COUNT(*) FROM ledger"), 1);
}

TEST(Workspace, QueryFilters) {
  Fixture f;
  ASSERT_TRUE(
      f.ws->Write([&](Txn& t) -> Status {
            KEEL_RETURN_IF_ERROR(
                t.Append({"agent:research", "fact.added", "lead_1", "", "", "{}", {}}).status());
            f.clock.Advance(1000000);
            return t.Append({"operator", "record.changed", "lead_2", "", "", "{}", {}}).status();
          })
          .ok());
  LedgerQuery q;
  q.subject = "lead_1";
  EXPECT_EQ(f.ws->QueryLedger(q)->size(), 1u);
  q = {};
  q.kind = "record.*";
  EXPECT_EQ(f.ws->QueryLedger(q)->size(), 1u);
  q = {};
  q.actor = "agent:research";
  EXPECT_EQ(f.ws->QueryLedger(q)->size(), 1u);
  q = {};
  q.limit = 2;
  q.newest_first = true;
  auto r = *f.ws->QueryLedger(q);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_GT(r[0].seq, r[1].seq);
}

// A run's timeline holds the run's entries about itself (subject = run id, found through
// the subject index) and entries about other things made in the run (found through the
// run index); both filters use an index rather than a scan of the whole ledger.
TEST(Workspace, RunAndSubjectFiltersUseTheirIndexes) {
  Fixture f;
  ASSERT_TRUE(
      f.ws->Write([&](Txn& t) -> Status {
            KEEL_RETURN_IF_ERROR(
                t.Append({"system", "run.started", "run_a", "run_a", "", "{}", {}}).status());
            KEEL_RETURN_IF_ERROR(
                t.Append({"agent:x", "fact.added", "lead_1", "run_a", "s1", "{}", {}}).status());
            KEEL_RETURN_IF_ERROR(
                t.Append({"system", "run.started", "run_b", "run_b", "", "{}", {}}).status());
            // Same subject as a run id but not made in that run.
            KEEL_RETURN_IF_ERROR(
                t.Append({"operator", "note", "run_a", "", "", "{}", {}}).status());
            return t.Append({"system", "step.completed", "run_a", "run_a", "s1", "{}", {}})
                .status();
          })
          .ok());
  LedgerQuery q;
  q.run_id = "run_a";
  auto r = *f.ws->QueryLedger(q);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].kind, "run.started");
  EXPECT_EQ(r[1].kind, "fact.added");
  EXPECT_EQ(r[2].kind, "step.completed");
  q.newest_first = true;
  q.limit = 1;
  EXPECT_EQ((*f.ws->QueryLedger(q))[0].kind, "step.completed");
  auto plan = f.ws->ExplainLedgerQuery(q);
  ASSERT_TRUE(plan.ok());
  EXPECT_NE(plan->find("INDEX ledger_subject"), std::string::npos) << *plan;
  EXPECT_NE(plan->find("INDEX ledger_run"), std::string::npos) << *plan;
  EXPECT_EQ(plan->find("SCAN ledger"), std::string::npos) << *plan;

  q = {};
  q.subject = "run_a";
  EXPECT_EQ(f.ws->QueryLedger(q)->size(), 3u);
  plan = f.ws->ExplainLedgerQuery(q);
  ASSERT_TRUE(plan.ok());
  EXPECT_NE(plan->find("INDEX ledger_subject"), std::string::npos) << *plan;
}

TEST(Workspace, OpenErrorsAreClear) {
  TempDir tmp;
  Env env;
  auto missing = Workspace::Open(tmp.Sub("nope"), {}, env);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  auto empty = Workspace::Open(tmp.path(), {}, env);
  EXPECT_EQ(empty.status().code(), StatusCode::kNotFound);
  EXPECT_NE(empty.status().message().find("keel init"), std::string::npos);

  ASSERT_TRUE(Workspace::Init(tmp.Sub("ws"), {}, env).ok());
  // A corrupt database file.
  keel::testing::WriteFile(tmp.Sub("ws/keel.db"), std::string(8192, 'x'));
  std::remove(tmp.Sub("ws/keel.db-wal").c_str());
  std::remove(tmp.Sub("ws/keel.db-shm").c_str());
  auto corrupt = Workspace::Open(tmp.Sub("ws"), {}, env);
  EXPECT_EQ(corrupt.status().code(), StatusCode::kDataLoss) << corrupt.status().ToString();

  // A bad keel.yaml names the line.
  ASSERT_TRUE(Workspace::Init(tmp.Sub("ws2"), {}, env).ok());
  keel::testing::WriteFile(tmp.Sub("ws2/keel.yaml"), "workspace:\n  id: ws_x\nmode: [oops\n");
  auto bad_yaml = Workspace::Open(tmp.Sub("ws2"), {}, env);
  EXPECT_EQ(bad_yaml.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_yaml.status().message().find("line"), std::string::npos);
  keel::testing::WriteFile(tmp.Sub("ws2/keel.yaml"), "workspace:\n  id: ws_x\nmode: yolo\n");
  EXPECT_EQ(Workspace::Open(tmp.Sub("ws2"), {}, env).status().code(), StatusCode::kInvalidArgument);
}

TEST(Workspace, NewerSchemaIsRefused) {
  TempDir tmp;
  Env env;
  ASSERT_TRUE(Workspace::Init(tmp.Sub("ws"), {}, env).ok());
  {
    auto db = sql::Db::Open(tmp.Sub("ws/keel.db"), {});
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("PRAGMA user_version = 999").ok());
  }
  auto r = Workspace::Open(tmp.Sub("ws"), {}, env);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("newer"), std::string::npos);
}

TEST(Artifacts, PutGetLineageAndRefusals) {
  Fixture f;
  ArtifactInfo v1, v2;
  ASSERT_TRUE(f.ws->Write([&](Txn& t) -> Status {
                    PutArtifactOptions o;
                    o.media_type = "text/plain";
                    KEEL_ASSIGN_OR_RETURN(v1, PutArtifact(t, "draft one", o));
                    o.parent = v1.hash;
                    KEEL_ASSIGN_OR_RETURN(v2, PutArtifact(t, "draft two", o));
                    return OkStatus();
                  })
                  .ok());
  EXPECT_EQ(v1.hash, Sha256Hex("draft one"));
  EXPECT_EQ(*GetArtifact(*f.ws, v2.hash), "draft two");
  auto lineage = *ArtifactLineage(*f.ws, v2.hash);
  ASSERT_EQ(lineage.size(), 2u);
  EXPECT_EQ(lineage[1].hash, v1.hash);
  // Same content again: no new entry.
  int64_t before = *f.ws->LedgerSize();
  ASSERT_TRUE(f.ws->Write([&](Txn& t) { return PutArtifact(t, "draft one", {}).status(); }).ok());
  EXPECT_EQ(*f.ws->LedgerSize(), before);
  for (const char* bad : {"../../keel.db", "", "ABCDEF", "/etc/passwd"}) {
    EXPECT_EQ(GetArtifact(*f.ws, bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(GetArtifact(*f.ws, Sha256Hex("never stored")).status().code(), StatusCode::kNotFound);
  Status unknown_parent = f.ws->Write([&](Txn& t) {
    PutArtifactOptions o;
    o.parent = Sha256Hex("nope");
    return PutArtifact(t, "x", o).status();
  });
  EXPECT_EQ(unknown_parent.code(), StatusCode::kInvalidArgument);
  Status bad_type = f.ws->Write([&](Txn& t) {
    PutArtifactOptions o;
    o.media_type = "nonsense";
    return PutArtifact(t, "x", o).status();
  });
  EXPECT_EQ(bad_type.code(), StatusCode::kInvalidArgument);
  // A damaged file is detected on read.
  std::string path = ArtifactPath(f.ws->artifacts_dir(), v1.hash);
  ::chmod(path.c_str(), 0644);
  keel::testing::WriteFile(path, "draft 0ne");
  EXPECT_EQ(GetArtifact(*f.ws, v1.hash).status().code(), StatusCode::kDataLoss);
}

// Short hash prefixes, as listings print them, resolve to the one stored artifact; an
// ambiguous, unknown or malformed prefix is refused with a message that says what to do.
TEST(Artifacts, ResolvePrefix) {
  Fixture f;
  auto put = [&](const std::string& content) {
    std::string hash;
    EXPECT_TRUE(f.ws->Write([&](Txn& t) -> Status {
                      KEEL_ASSIGN_OR_RETURN(auto info, PutArtifact(t, content, {}));
                      hash = info.hash;
                      return OkStatus();
                    })
                    .ok());
    return hash;
  };
  // Two contents whose addresses share their first 6 hex characters (found in memory: a
  // birthday search over 24 bits takes a few thousand hashes), and one other.
  std::map<std::string, std::string> seen;
  std::string a, b;
  for (int i = 0; a.empty(); ++i) {
    std::string content = "content " + std::to_string(i);
    auto [it, fresh] = seen.emplace(Sha256Hex(content).substr(0, 6), content);
    if (!fresh) {
      a = it->second;
      b = content;
    }
  }
  std::string ha = put(a), hb = put(b), hc = put("something else");
  ASSERT_EQ(ha.substr(0, 6), hb.substr(0, 6));
  size_t common = 6;
  while (ha[common] == hb[common]) ++common;

  // Unique prefixes, of the length `keel facts` prints and longer, in either case.
  EXPECT_EQ(*ResolveArtifactPrefix(*f.ws, hc.substr(0, 12)), hc);
  EXPECT_EQ(*ResolveArtifactPrefix(*f.ws, hc.substr(0, kMinArtifactPrefix)), hc);
  std::string upper = hc.substr(0, 20);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(*ResolveArtifactPrefix(*f.ws, upper), hc);
  EXPECT_EQ(*ResolveArtifactPrefix(*f.ws, ha.substr(0, common + 1)), ha);
  EXPECT_EQ(*ResolveArtifactPrefix(*f.ws, hb.substr(0, common + 1)), hb);
  // A full address passes through, stored or not.
  EXPECT_EQ(*ResolveArtifactPrefix(*f.ws, ha), ha);
  std::string absent = Sha256Hex("never stored");
  EXPECT_EQ(*ResolveArtifactPrefix(*f.ws, absent), absent);

  // Ambiguous: both candidates listed, more characters asked for.
  auto amb = ResolveArtifactPrefix(*f.ws, ha.substr(0, common));
  EXPECT_EQ(amb.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(amb.status().message().find("ambiguous"), std::string::npos) << amb.status().ToString();
  EXPECT_NE(amb.status().message().find(ha.substr(0, 16)), std::string::npos)
      << amb.status().ToString();
  EXPECT_NE(amb.status().message().find(hb.substr(0, 16)), std::string::npos)
      << amb.status().ToString();
  EXPECT_NE(amb.status().message().find("more characters"), std::string::npos)
      << amb.status().ToString();

  // None: NotFound with a hint.
  std::string none = absent.substr(0, 12);
  auto missing = ResolveArtifactPrefix(*f.ws, none);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(none), std::string::npos)
      << missing.status().ToString();
  EXPECT_NE(missing.status().message().find("keel ledger"), std::string::npos);
  // A prefix just past every stored hash ("ff..." sorts last) and just before them.
  EXPECT_EQ(ResolveArtifactPrefix(*f.ws, "ffffffffff").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ResolveArtifactPrefix(*f.ws, "0000000000").status().code(), StatusCode::kNotFound);

  // Bad input.
  for (const std::string& bad :
       std::vector<std::string>{"", "abc", "abcde", "ghijkl", "abc123!", "../../keel.db", "abc 123",
                                std::string(65, 'a')}) {
    auto r = ResolveArtifactPrefix(*f.ws, bad);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << "'" << bad << "'";
  }
  auto short_one = ResolveArtifactPrefix(*f.ws, "abcd");
  EXPECT_NE(short_one.status().message().find("at least 6"), std::string::npos)
      << short_one.status().ToString();

  // An indexed lookup, not a scan of the table.
  auto plan = ExplainArtifactPrefixLookup(*f.ws);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_NE(plan->find("SEARCH artifacts USING"), std::string::npos) << *plan;
  EXPECT_NE(plan->find("INDEX sqlite_autoindex_artifacts_1 (hash>? AND hash<?)"), std::string::npos)
      << *plan;
}

}  // namespace
}  // namespace keel::store
