// Ledger benchmark: the disk's own fsync rate beside single (one durable transaction each)
// and batched ledger appends, and `keel verify` over a million entries.
//
//   scripts/bench ledger [--single N] [--rounds R] [--warmup N] [--batched N] [--verify N]
//   (--help: what each does and its default)
//
// The fsync rate and single appends are measured in alternating rounds on the same disk so
// that load from other processes hits both alike. Ends with one line of key=value figures.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench_flags.h"
#include "core/env.h"
#include "core/json.h"
#include "core/random.h"
#include "durable_acks.h"
#include "flow/engine.h"
#include "flow/workflow.h"
#include "fsync_probe.h"
#include "store/artifacts.h"
#include "store/checkpoint.h"
#include "store/facts.h"
#include "store/records.h"
#include "store/verify.h"
#include "store/workspace.h"

namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// CPU seconds used by this process so far (all threads). Under load from other processes
// the wall-clock rate of CPU-bound phases falls; entries per CPU-second shows what the code
// itself costs.
double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec +
         u.ru_stime.tv_usec / 1e6;
}

void Die(const std::string& what) {
  std::fprintf(stderr, "ledger_bench: %s\n", what.c_str());
  std::exit(1);
}

void Check(const keel::Status& s, const char* what) {
  if (!s.ok()) Die(std::string(what) + ": " + s.ToString());
}

keel::store::NewEntry Entry(int64_t i) {
  keel::Json p = {{"email", "lead" + std::to_string(i) + "@example.com"},
                  {"i", i},
                  {"name", "Ann Lee"},
                  {"source", "bench"}};
  return {"operator", "record.created", "lead_" + std::to_string(i), "", "", keel::CanonicalJson(p),
          {}};
}

std::unique_ptr<keel::store::Workspace> NewWorkspace(const std::string& dir, const keel::Env& env) {
  Check(keel::store::Workspace::Init(dir, {}, env), "init");
  auto ws = keel::store::Workspace::Open(dir, {}, env);
  Check(ws.status(), "open");
  return std::move(*ws);
}

// The workspace `keel verify` is measured on for its state check: `n` ledger entries of
// which n/10 create records, n/5 add facts, n/100 put artifacts (about 1 KiB each) and
// the rest are W2-style runs (3 no-op steps each, through the engine).
struct StateMix {
  int64_t records = 0, facts = 0, artifacts = 0, runs = 0, entries = 0;
};

StateMix BuildStateWorkspace(const std::string& dir, const keel::Env& env, int64_t n) {
  StateMix mix;
  auto ws = NewWorkspace(dir, env);
  auto batches = [&](int64_t count, const char* what,
                     const std::function<keel::Status(keel::store::Txn&, int64_t)>& one) {
    for (int64_t i = 0; i < count; i += 1000) {
      Check(ws->Write([&](keel::store::Txn& txn) -> keel::Status {
        for (int64_t j = i; j < std::min(count, i + 1000); ++j) KEEL_RETURN_IF_ERROR(one(txn, j));
        return keel::OkStatus();
      }),
            what);
    }
  };
  std::vector<std::string> ids;
  batches(n / 10, "records", [&](keel::store::Txn& txn, int64_t i) -> keel::Status {
    std::string k = std::to_string(i);
    KEEL_ASSIGN_OR_RETURN(auto r, keel::store::CreateRecord(txn, "lead",
                                                            {{"name", "Lead " + k},
                                                             {"email", "lead" + k + "@example.com"},
                                                             {"company", "Company " + k}}));
    ids.push_back(r.id);
    ++mix.records;
    return keel::OkStatus();
  });
  std::vector<std::string> arts;
  batches(n / 100, "artifacts", [&](keel::store::Txn& txn, int64_t i) -> keel::Status {
    std::string body = "page " + std::to_string(i) + "\n" + std::string(1000, 'x');
    keel::store::PutArtifactOptions o;
    o.media_type = "text/plain";
    KEEL_ASSIGN_OR_RETURN(auto a, keel::store::PutArtifact(txn, body, o));
    arts.push_back(a.hash);
    ++mix.artifacts;
    return keel::OkStatus();
  });
  batches(n / 5, "facts", [&](keel::store::Txn& txn, int64_t i) -> keel::Status {
    keel::store::FactRow f;
    f.id = "fact_" + std::to_string(i);
    f.subject = ids.empty() ? "lead" : ids[static_cast<size_t>(i) % ids.size()];
    f.text = "works at Company " + std::to_string(i) + " as head of operations";
    f.norm = f.text;
    f.agent = "research";
    f.source_artifact = arts.empty() ? "" : arts[static_cast<size_t>(i) % arts.size()];
    f.created_us = f.valid_from_us = txn.now_us();
    KEEL_ASSIGN_OR_RETURN(
        auto e, txn.Append({"agent:research", "memory.fact.added", f.subject, "", "", "{}", {}}));
    f.ledger_seq = e.seq;
    KEEL_RETURN_IF_ERROR(keel::store::InsertFact(txn, &f));
    ++mix.facts;
    return keel::OkStatus();
  });
  keel::flow::Registry reg;
  keel::flow::EngineOptions eo;
  eo.batch = 64;
  keel::flow::Engine engine(ws.get(), reg, eo);
  std::string yaml = "name: w2\nsteps:\n";
  for (int i = 0; i < 3; ++i) yaml += "  - id: s" + std::to_string(i) + "\n    noop: true\n";
  auto wf = keel::flow::ParseWorkflow(yaml, "w2.yaml");
  Check(wf.status(), "parse w2");
  for (;;) {
    auto size = ws->LedgerSize();
    Check(size.status(), "ledger size");
    mix.entries = *size;
    if (*size >= n) break;
    Check(ws->Write([&](keel::store::Txn& txn) -> keel::Status {
      for (int i = 0; i < 256; ++i) {
        KEEL_RETURN_IF_ERROR(engine.StartInTxn(txn, **wf, nlohmann::json::object()).status());
      }
      return keel::OkStatus();
    }),
          "start runs");
    mix.runs += 256;
    Check(engine.RunUntilIdle().status(), "run");
  }
  return mix;
}

}  // namespace

int main(int argc, char** argv) {
  int single = 5000, rounds = 50, batched = 200000, verify_n = 1000000, warmup = 1500;
  int state_n = 1000000;
  keel::bench::Flags flags("ledger bench", "scripts/bench ledger");
  flags.Int("--single", &single, 1, 100000000, "single appends, serial and streamed");
  flags.Int("--rounds", &rounds, 1, 100000000, "rounds alternating fsync probe and serial appends");
  flags.Int("--warmup", &warmup, 0, 100000000, "appends before measuring (the WAL's working size)");
  flags.Int("--batched", &batched, 1000, 100000000, "batched appends, 1,000 per transaction");
  flags.Int("--verify", &verify_n, 0, 100000000, "entries for keel verify (plus the first)");
  flags.Int("--state", &state_n, 0, 100000000,
            "entries of the workspace whose state tables keel verify checks (0: skip): a "
            "tenth records, a fifth facts, a hundredth artifacts, the rest W2 runs");
  flags.Parse(argc, argv);
  if (single < rounds) flags.Fail("--single must be at least --rounds");
  const char* base_env = std::getenv("KEEL_BENCH_DIR");
  std::string base = base_env ? base_env : std::filesystem::current_path().string() + "/.bench";
  std::filesystem::create_directories(base);
  std::string dir = base + "/ledger-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  keel::Env env;

  // 1. fsync rate and single appends, alternating.
  auto ws = NewWorkspace(dir + "/single", env);
  double single_t = 0;
  int single_n = 0;
  std::vector<double> single_lat;
  int64_t next = 0;
  // Warm up first: a new workspace's WAL grows with every commit (an fsync that must also
  // write the file's new size) until its first checkpoint; a workspace in use overwrites
  // the WAL in place. Measure that steady state.
  for (int i = 0; i < warmup; ++i) {
    Check(ws->Write([&](keel::store::Txn& txn) { return txn.Append(Entry(next++)).status(); }),
          "warm-up append");
  }
  keel::bench::FsyncProbe probe(dir);
  for (int r = 0; r < rounds; ++r) {
    int per = single / rounds;
    probe.MeasureBoth(per);
    auto t0 = Clock::now();
    for (int i = 0; i < per; ++i) {
      auto a0 = Clock::now();
      Check(ws->Write([&](keel::store::Txn& txn) { return txn.Append(Entry(next++)).status(); }),
            "single append");
      single_lat.push_back(Since(a0));
    }
    single_t += Since(t0);
    single_n += per;
  }
  // 1b. Streamed single appends: still one entry per transaction, each acknowledged only
  //     once the fsync covering it has returned, but the writer does not wait for one
  //     acknowledgment before committing the next (Workspace::WritePipelined, as the
  //     engine's worker rounds commit). Its CPU then overlaps the fsync instead of adding
  //     to it, and commits made during one fsync share the next.
  double streamed_rate = 0, streamed_per_sync = 0;
  std::vector<double> streamed_lat;
  {
    keel::bench::DurableAcks acks(ws.get());
    uint64_t syncs0 = ws->pipelined_syncs(), commits0 = ws->pipelined_commits();
    auto t0 = Clock::now();
    for (int i = 0; i < single; ++i) {
      auto a0 = Clock::now();
      Check(ws->WritePipelined(
                [&](keel::store::Txn& txn) { return txn.Append(Entry(next++)).status(); }),
            "streamed append");
      acks.Committed(a0);
      acks.Observe(&streamed_lat);
    }
    Check(ws->WaitDurable(), "streamed appends: wait until durable");
    acks.Observe(&streamed_lat);
    streamed_rate = single / Since(t0);
    if (!acks.empty()) Die("streamed appends: a commit was not durable after WaitDurable");
    uint64_t syncs = ws->pipelined_syncs() - syncs0;
    streamed_per_sync = syncs ? double(ws->pipelined_commits() - commits0) / syncs : 0;
  }
  ws.reset();
  double fsync_over = probe.overwrite().PerSecond(), fsync_app = probe.append().PerSecond();
  double fsync_rate = probe.faster().PerSecond();
  double single_rate = single_n / single_t;
  // Percentile p of latencies in seconds, in microseconds (`lat` is never empty: --single >= 1).
  auto pct_us = [](std::vector<double>& lat, double p) {
    std::sort(lat.begin(), lat.end());
    return lat[static_cast<size_t>(p * static_cast<double>(lat.size() - 1))] * 1e6;
  };
  double single_p50_us = pct_us(single_lat, 0.5), single_p99_us = pct_us(single_lat, 0.99);
  double streamed_p50_us = pct_us(streamed_lat, 0.5), streamed_p99_us = pct_us(streamed_lat, 0.99);
  double retouch_rate = 0;

  // 2. Batched appends: 1,000 per transaction. The entries are built beforehand: their
  //    payloads are the caller's work, not the ledger's.
  //    a) New records, as an import of 1,000 leads writes them: subjects are keel's own ids
  //       (core/random.h NewId), time-ordered, so the subject index grows at its right edge.
  //    b) The same 1,000 existing subjects touched in every batch: each batch then rewrites
  //       leaf pages all over the subject index, the worst case for a b-tree.
  std::vector<std::vector<keel::store::NewEntry>> fresh(static_cast<size_t>(batched / 1000));
  keel::SeededRandom id_random(42);
  int64_t id_time_us = env.clock->NowMicros();
  for (size_t b = 0; b < fresh.size(); ++b) {
    id_time_us += 15000;  // one batch every 15 ms of simulated time
    fresh[b].reserve(1000);
    for (int i = 0; i < 1000; ++i) {
      keel::store::NewEntry e = Entry(static_cast<int64_t>(b) * 1000 + i);
      e.subject = keel::NewId("lead", id_time_us, &id_random);
      fresh[b].push_back(std::move(e));
    }
  }
  std::vector<keel::store::NewEntry> retouch;
  retouch.reserve(1000);
  for (int i = 0; i < 1000; ++i) retouch.push_back(Entry(i));
  auto append_batches =
      [&](keel::store::Workspace* w, int n_batches,
          const std::function<const std::vector<keel::store::NewEntry>&(int)>& batch) {
        for (int b = 0; b < n_batches; ++b) {
          Check(w->Write([&](keel::store::Txn& txn) -> keel::Status {
            for (const auto& e : batch(b)) KEEL_RETURN_IF_ERROR(txn.Append(e).status());
            return keel::OkStatus();
          }),
                "batched append");
        }
      };
  {
    auto rw = NewWorkspace(dir + "/retouch", env);
    auto t0 = Clock::now();
    append_batches(rw.get(), batched / 1000,
                   [&](int) -> const std::vector<keel::store::NewEntry>& { return retouch; });
    retouch_rate = batched / Since(t0);
  }
  ws = NewWorkspace(dir + "/batched", env);
  auto t0 = Clock::now();
  double c0 = CpuSeconds();
  append_batches(ws.get(), static_cast<int>(fresh.size()),
                 [&](int b) -> const std::vector<keel::store::NewEntry>& { return fresh[b]; });
  double batched_rate = batched / Since(t0);
  double batched_cpu_rate = batched / (CpuSeconds() - c0);
  fresh.clear();
  // Grow the same ledger to verify_n entries (automatic checkpoints included).
  for (int64_t have = batched; have < verify_n; have += 1000) {
    Check(ws->Write([&](keel::store::Txn& txn) -> keel::Status {
      for (int i = 0; i < 1000; ++i) KEEL_RETURN_IF_ERROR(txn.Append(Entry(next++)).status());
      return keel::OkStatus();
    }),
          "batched append");
  }
  ws.reset();

  // 3. verify over the whole ledger: full (with SQLite's integrity check) and the chain,
  //    artifacts and checkpoints alone.
  keel::store::VerifyOptions quick;
  quick.integrity_check = false;
  double c1 = CpuSeconds();
  auto q = keel::store::VerifyWorkspace(dir + "/batched", quick, env);
  Check(q.status(), "verify");
  if (!q->ok()) Die("verify found problems: " + q->problems[0]);
  double verify_rate = q->entries_checked / q->seconds;
  double verify_cpu = CpuSeconds() - c1;
  keel::store::VerifyOptions full;
  auto r = keel::store::VerifyWorkspace(dir + "/batched", full, env);
  Check(r.status(), "verify");
  if (!r->ok()) Die("verify found problems: " + r->problems[0]);
  double verify_full_rate = r->entries_checked / r->seconds;

  // 4. verify of a business's workspace: the state tables against the ledger's images.
  StateMix mix;
  keel::store::VerifyReport sq, sf, sn;
  if (state_n > 0) {
    auto b0 = Clock::now();
    mix = BuildStateWorkspace(dir + "/state", env, state_n);
    double build_s = Since(b0);
    std::printf(
        "state workspace: %lld entries (%lld records, %lld facts, %lld artifacts, %lld "
        "runs) built in %.1f s\n",
        static_cast<long long>(mix.entries), static_cast<long long>(mix.records),
        static_cast<long long>(mix.facts), static_cast<long long>(mix.artifacts),
        static_cast<long long>(mix.runs), build_s);
    keel::store::VerifyOptions no_state = quick;
    no_state.state = false;
    auto run = [&](const keel::store::VerifyOptions& o, const char* what) {
      auto v = keel::store::VerifyWorkspace(dir + "/state", o, env);
      Check(v.status(), what);
      if (!v->ok()) Die(std::string(what) + " found problems: " + v->problems[0]);
      return *v;
    };
    sn = run(no_state, "verify without state");
    sq = run(quick, "verify with state");
    sf = run(keel::store::VerifyOptions{}, "verify with state and integrity check");
  }
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) < 1) load[0] = -1;

  std::printf("%-44s %14s\n", "measure", "per second");
  std::printf("%-44s %14.0f\n", "fsync: 4 KiB overwrite + fdatasync", fsync_over);
  std::printf("%-44s %14.0f\n", "fsync: 512 B append + fdatasync", fsync_app);
  std::printf("%-44s %14.0f   (median %.0f us, p99 %.0f us; fsync %.0f us)\n",
              "single appends (1 durable txn each)", single_rate, single_p50_us, single_p99_us,
              1e6 / fsync_rate);
  std::printf("%-44s %14.0f   (ack median %.0f us, p99 %.0f us; %.2f commits per fsync)\n",
              "single appends, streamed (pipelined)", streamed_rate, streamed_p50_us,
              streamed_p99_us, streamed_per_sync);
  std::printf("%-44s %14.0f   (%.0f per CPU-second)\n", "batched appends (1,000 per txn)",
              batched_rate, batched_cpu_rate);
  std::printf("%-44s %14.0f\n", "batched, the same 1,000 subjects each batch", retouch_rate);
  std::printf("%-44s %14.0f   (%lld entries, %.2f s wall, %.2f s CPU on 2 threads)\n",
              "verify (chain, checkpoints, artifacts)", verify_rate,
              static_cast<long long>(q->entries_checked), q->seconds, verify_cpu);
  std::printf("%-44s %14.0f   (%.2f s, %lld checkpoints)\n", "verify + PRAGMA integrity_check",
              verify_full_rate, r->seconds, static_cast<long long>(r->checkpoints_checked));
  if (state_n > 0) {
    std::printf(
        "%-44s %14.2f s (%lld entries, %lld state rows, %lld images)\n",
        "keel verify with the state check", sq.seconds, static_cast<long long>(sq.entries_checked),
        static_cast<long long>(sq.state_rows_checked), static_cast<long long>(sq.state_images));
    std::printf("%-44s %14.2f s\n", "  + PRAGMA integrity_check", sf.seconds);
    std::printf("%-44s %14.2f s\n", "  without the state check", sn.seconds);
  }
  std::printf("single appends / fsync rate (faster of the two modes): %.2f serial, %.2f streamed\n",
              single_rate / fsync_rate, streamed_rate / fsync_rate);
  std::printf("load average during the run: %.1f (other processes share the 2 cores)\n", load[0]);
  std::printf(
      "fsync_per_s=%.0f single_appends_per_s=%.0f single_vs_fsync=%.2f "
      "batched_appends_per_s=%.0f verify_entries_per_s=%.0f "
      "verify_full_entries_per_s=%.0f batched_appends_per_cpu_s=%.0f "
      "verify_cpu_s_per_1m=%.2f batched_retouch_appends_per_s=%.0f "
      "streamed_appends_per_s=%.0f streamed_vs_fsync=%.2f streamed_commits_per_fsync=%.2f "
      "state_verify_s=%.2f state_verify_full_s=%.2f state_verify_without_s=%.2f "
      "state_rows=%lld\n",
      fsync_rate, single_rate, single_rate / fsync_rate, batched_rate, verify_rate,
      verify_full_rate, batched_cpu_rate, verify_cpu * 1e6 / q->entries_checked, retouch_rate,
      streamed_rate, streamed_rate / fsync_rate, streamed_per_sync, sq.seconds, sf.seconds,
      sn.seconds, static_cast<long long>(sq.state_rows_checked));
  if (std::getenv("KEEL_BENCH_KEEP") == nullptr) {
    std::filesystem::remove_all(dir);
  } else {
    std::printf("kept %s\n", dir.c_str());
  }
  return 0;
}
