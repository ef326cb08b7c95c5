#include "store/testing_ledger_check.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <random>
#include <set>

#include "core/testing_process.h"
#include "core/testing_util.h"
#include "store/artifacts.h"
#include "store/ledger.h"
#include "store/sqlite/database.h"
#include "store/sqlite/sql.h"

namespace keel::store::testing {

Result<int64_t> CheckLedgerChain(Workspace& ws) {
  int64_t expect = 1;
  Digest prev{};
  std::string scratch;
  KEEL_RETURN_IF_ERROR(ws.ScanLedger(1, [&](const LedgerEntry& e) -> Status {
    if (e.seq != expect) {
      return DataLoss("ledger seq " + std::to_string(e.seq) + " found where " +
                      std::to_string(expect) + " was expected");
    }
    if (e.prev_hash != prev) {
      return DataLoss("ledger entry " + std::to_string(e.seq) +
                      " does not link to its predecessor");
    }
    if (ComputeEntryHash(e, &scratch) != e.hash) {
      return DataLoss("ledger entry " + std::to_string(e.seq) + " does not match its hash");
    }
    prev = e.hash;
    ++expect;
    return OkStatus();
  }));
  return expect - 1;
}

Status CheckIntegrity(Workspace& ws) {
  std::lock_guard<std::recursive_mutex> l(ws.mu());
  auto r = sql::IntegrityCheck(ws.db());
  if (!r.ok()) return r.status();
  if (*r != "ok") return DataLoss("integrity_check: " + *r);
  return OkStatus();
}

Result<int64_t> CheckReferencedArtifacts(Workspace& ws) {
  std::set<std::string> seen;
  KEEL_RETURN_IF_ERROR(ws.ScanLedger(1, [&](const LedgerEntry& e) -> Status {
    for (const Digest& d : e.artifacts) {
      std::string hex = ToHex(d);
      if (!seen.insert(hex).second) continue;
      auto info = GetArtifactInfo(ws, hex);
      if (!info.ok()) {
        return DataLoss("entry " + std::to_string(e.seq) + " references artifact " + hex +
                        " without a row: " + info.status().ToString());
      }
      auto content = GetArtifact(ws, hex);
      if (!content.ok()) {
        return DataLoss("entry " + std::to_string(e.seq) + " references artifact " + hex + ": " +
                        content.status().ToString());
      }
    }
    return OkStatus();
  }));
  return static_cast<int64_t>(seen.size());
}

Status CheckRowCounts(Workspace& ws) {
  std::lock_guard<std::recursive_mutex> l(ws.mu());
  KEEL_ASSIGN_OR_RETURN(int64_t rows, ws.db()->QueryInt("SELECT COUNT(*) FROM artifacts"));
  KEEL_ASSIGN_OR_RETURN(
      int64_t puts, ws.db()->QueryInt("SELECT COUNT(*) FROM ledger WHERE kind = 'artifact.put'"));
  if (rows != puts) {
    return DataLoss(std::to_string(rows) + " artifact rows but " + std::to_string(puts) +
                    " artifact.put entries");
  }
  KEEL_ASSIGN_OR_RETURN(int64_t bad,
                        ws.db()->QueryInt("SELECT COUNT(*) FROM artifacts a LEFT JOIN ledger l ON "
                                          "l.seq = a.ledger_seq WHERE l.seq IS NULL OR "
                                          "l.subject <> a.hash"));
  if (bad != 0) return DataLoss(std::to_string(bad) + " artifact rows without their entry");
  return OkStatus();
}

Status CheckWorkspace(Workspace& ws) {
  KEEL_RETURN_IF_ERROR(CheckIntegrity(ws));
  KEEL_RETURN_IF_ERROR(CheckLedgerChain(ws).status());
  KEEL_RETURN_IF_ERROR(CheckRowCounts(ws));
  return CheckReferencedArtifacts(ws).status();
}

int64_t RunKillLoop(const std::string& ws_dir, const KillLoopOptions& opts) {
  auto init = keel::testing::RunKeel({"init", ws_dir});
  EXPECT_EQ(init.exit_code, 0) << init.err;
  std::mt19937_64 rng(opts.seed);
  std::set<int64_t> acked;
  int64_t killed_mid_run = 0;
  for (int i = 0; i < opts.kills; ++i) {
    std::vector<std::string> args = {"-w",      ws_dir,      "debug",   "append",
                                     "--count", "100000000", "--batch", std::to_string(opts.batch)};
    if (opts.artifacts) args.push_back("--artifacts");
    keel::testing::ChildProcess child(keel::testing::KeelBinary(), args);
    int delay =
        opts.min_delay_ms +
        static_cast<int>(rng() % static_cast<uint64_t>(opts.max_delay_ms - opts.min_delay_ms + 1));
    // One kill in eight lands at a random moment of start-up (opening, migrating); the
    // others wait for the first acknowledgement, then kill while appends are under way.
    if (rng() % 8 == 0) {
      child.PumpFor(static_cast<int>(rng() % static_cast<uint64_t>(opts.max_delay_ms)));
    } else {
      for (int waited = 0; child.out().empty() && waited < 5000; waited += 10) {
        if (!child.Pump(10)) break;
      }
      child.PumpFor(delay);
    }
    child.Kill(SIGKILL);
    int code = child.Wait();
    EXPECT_TRUE(code == -SIGKILL) << "kill " << i << ": keel exited with " << code << ": "
                                  << child.err();
    auto lines = child.CompleteLines();
    if (!lines.empty()) ++killed_mid_run;
    for (const auto& l : lines) acked.insert(std::stoll(l));

    Env env;
    auto ws = Workspace::Open(ws_dir, WorkspaceOpenOptions{}, env);
    if (!ws.ok()) {
      ADD_FAILURE() << "kill " << i << ": reopen failed: " << ws.status().ToString();
      return static_cast<int64_t>(acked.size());
    }
    Status s = CheckWorkspace(**ws);
    if (!s.ok()) {
      ADD_FAILURE() << "kill " << i << " (seed " << opts.seed << "): " << s.ToString();
      return static_cast<int64_t>(acked.size());
    }
    auto size = (*ws)->LedgerSize();
    if (!size.ok()) {
      ADD_FAILURE() << size.status().ToString();
      return 0;
    }
    // Every acknowledged entry is there, with the kind the process wrote.
    if (!acked.empty()) {
      if (*acked.rbegin() > *size) {
        ADD_FAILURE() << "kill " << i << " (seed " << opts.seed << "): acknowledged seq "
                      << *acked.rbegin() << " missing; the ledger ends at " << *size;
        return static_cast<int64_t>(acked.size());
      }
      LedgerQuery q;
      q.after_seq = lines.empty() ? *size : std::stoll(lines.front()) - 1;
      q.kind = "debug.append";
      auto entries = (*ws)->QueryLedger(q);
      EXPECT_TRUE(entries.ok());
      std::set<int64_t> present;
      if (entries.ok()) {
        for (const auto& e : *entries) present.insert(e.seq);
      }
      for (const auto& l : lines) {
        if (!present.count(std::stoll(l))) {
          ADD_FAILURE() << "kill " << i << ": acknowledged seq " << l << " is not a "
                        << "debug.append entry";
          return static_cast<int64_t>(acked.size());
        }
      }
    }
  }
  // The loop must really have killed appends in flight, not only idle start-ups.
  EXPECT_GT(killed_mid_run, opts.kills / 2);
  return static_cast<int64_t>(acked.size());
}

}  // namespace keel::store::testing
