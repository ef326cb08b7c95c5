// The workflow engine benchmark (`scripts/bench engine`): the disk's fsync rate, then the
// three workloads of the peer comparison (docs/benchmarks.md), durability on
// (WAL, synchronous=FULL: a step is acknowledged only after its commit is on disk).
//
//   W1  one run of 1,000 sequential no-op steps: steps/s, per-step latency p50/p99
//   W2  2,000 runs of 3 no-op steps, 16 in flight: runs/s, end-to-end latency p50
//   W3  10,000 runs waiting on a durable timer in a real `keel worker` child process that
//       is SIGKILLed; time from the restart of `keel worker --until-idle` until all are done
//   W4  200 runs whose one step calls an adapter that sleeps 200 ms, 16 effects in flight
//       (the effect executor, flow/executor.h): wall time and runs/s; serial would need 40 s
//   reads  W2 again while 4 threads list runs (store::ListRuns, 20 rows) on the same
//       Workspace, each every 5 ms as API requests would arrive: the list's latency p50/p99
//
// W1 and W2 drive the engine in this process (one loop: start runs, Tick(), notice
// completions), as DBOS does in its benchmark; W3 uses the real binary. Everything runs in
// $KEEL_BENCH_DIR (default: bench-tmp/ beside this binary, on the repo's disk).
// KEEL_BENCH_W3_CALLGRIND=FILE runs the restarted W3 worker under callgrind.
// Flags: --w1-steps N --w2-runs N --w2-inflight N --w3-runs N --w3-wait-ms N --w3-batch N
//        --w4-runs N --w4-sleep-ms N --w4-inflight N --readers N --read-gap-ms N --fsyncs N
//        --only w1,w2,w3,w4,reads (--help: what each does)
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "adapters/log.h"
#include "bench_flags.h"
#include "core/env.h"
#include "durable_acks.h"
#include "flow/builtins.h"
#include "flow/engine.h"
#include "flow/workflow.h"
#include "fsync_probe.h"
#include "store/runs.h"
#include "store/workspace.h"

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

double Secs(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(std::lround(p * static_cast<double>(v.size() - 1)));
  return v[std::min(i, v.size() - 1)];
}

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "engine bench: " << what << "\n";
  std::exit(1);
}

template <typename T>
T Must(keel::Result<T> r, const std::string& what) {
  if (!r.ok()) Die(what + ": " + r.status().ToString());
  return std::move(*r);
}
void Must(const keel::Status& s, const std::string& what) {
  if (!s.ok()) Die(what + ": " + s.ToString());
}

std::string NoopWorkflow(const std::string& name, int steps) {
  std::string y = "name: " + name + "\nsteps:\n";
  for (int i = 0; i < steps; ++i) y += "  - id: s" + std::to_string(i) + "\n    noop: true\n";
  return y;
}

struct Bench {
  std::string root;
  keel::Env env;
};

struct EngineSet {
  std::unique_ptr<keel::store::Workspace> ws;
  keel::flow::BuiltinAgents agents;
  keel::adapters::LogAdapter log;
  std::unique_ptr<keel::flow::Engine> engine;
};

// The W4 adapter: every action takes `sleep_ms` of wall time (a slow SMTP or payment call)
// and succeeds. Safe from several threads.
class SleepAdapter final : public keel::flow::ActionAdapter {
 public:
  explicit SleepAdapter(int sleep_ms) : sleep_ms_(sleep_ms) {}
  std::string name() const override { return "slow"; }
  std::vector<std::string> actions() const override { return {"call"}; }
  bool honours_idempotency_key() const override { return true; }
  keel::Outcome Perform(const std::string&, const std::string&, const json&,
                        const keel::flow::CallContext&, json* result) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms_));
    *result = json::object();
    return keel::Outcome::Success();
  }

 private:
  int sleep_ms_;
};

std::unique_ptr<EngineSet> NewWorkspace(const std::string& dir, const keel::Env& env, int batch,
                                        keel::flow::ActionAdapter* extra = nullptr,
                                        keel::flow::EffectLimits limits = {}) {
  std::filesystem::remove_all(dir);
  Must(keel::store::Workspace::Init(dir, {}, env), "init " + dir);
  auto e = std::make_unique<EngineSet>();
  e->ws = Must(keel::store::Workspace::Open(dir, {}, env), "open " + dir);
  keel::flow::Registry reg;
  reg.agents = &e->agents;
  reg.adapters = {{"log", &e->log}};
  if (extra) reg.adapters[extra->name()] = extra;
  keel::flow::EngineOptions o;
  o.batch = batch;
  o.effects = std::move(limits);
  e->engine = std::make_unique<keel::flow::Engine>(e->ws.get(), reg, o);
  return e;
}

// A worker round is a pipelined commit (flow/engine.h): Tick() returns once the round is
// visible, and it becomes durable when the workspace's syncer thread next fsyncs. A step is
// acknowledged when its round is seen durable (bench/durable_acks.h), observed after every
// Tick() and after the final WaitDurable().
using keel::bench::DurableAcks;

struct W1Result {
  double steps_per_s = 0, p50_ms = 0, p99_ms = 0, total_s = 0;
};

W1Result RunW1(const std::string& dir, const keel::Env& env, int steps) {
  auto e = NewWorkspace(dir, env, 64);
  auto wf = Must(keel::flow::ParseWorkflow(NoopWorkflow("w1", steps), "w1.yaml"), "parse w1");
  auto t0 = Clock::now();
  std::string id = Must(e->engine->Start(wf, json::object()), "start w1");
  std::vector<double> lat;
  lat.reserve(static_cast<size_t>(steps) + 2);
  DurableAcks acks(e->ws.get());
  for (;;) {
    auto start = Clock::now();
    auto t = Must(e->engine->Tick(), "tick");
    if (t.steps == 0) break;
    acks.Committed(start);
    acks.Observe(&lat);
  }
  Must(e->engine->WaitDurable(), "wait durable");
  acks.Observe(&lat);
  double el = Secs(t0, Clock::now());
  if (!acks.empty()) Die("w1: a round was not durable after WaitDurable");
  auto r = Must(keel::store::GetRun(*e->ws, id), "get run");
  if (!r || r->status != "completed") Die("w1 run did not complete");
  return {steps / el, Pct(lat, 0.5) * 1e3, Pct(lat, 0.99) * 1e3, el};
}

struct W2Result {
  double runs_per_s = 0, p50_ms = 0, p99_ms = 0, total_s = 0;
};

struct ReadResult {
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  int64_t reads = 0;
};

// `readers` threads list the newest 20 runs back to back while W2 runs (0: none).
W2Result RunW2(const std::string& dir, const keel::Env& env, int runs, int inflight,
               int readers = 0, ReadResult* reads = nullptr, int read_gap_ms = 0) {
  auto e = NewWorkspace(dir, env, 64);
  std::atomic<bool> stop{false};
  std::vector<std::vector<double>> read_lat(static_cast<size_t>(readers));
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(readers));
  for (int i = 0; i < readers; ++i) {
    threads.emplace_back([&, i] {
      while (!stop.load()) {
        auto a = Clock::now();
        Must(keel::store::ListRuns(*e->ws, "", 20, {}), "list runs");
        read_lat[static_cast<size_t>(i)].push_back(Secs(a, Clock::now()));
        // Paced as requests arrive (0: back to back, which on 2 cores measures the CPU
        // scheduler more than the reads).
        if (read_gap_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(read_gap_ms));
      }
    });
  }
  struct Joiner {
    std::atomic<bool>* stop;
    std::vector<std::thread>* threads;
    ~Joiner() {
      stop->store(true);
      for (auto& t : *threads) t.join();
    }
  } joiner{&stop, &threads};
  auto wf = Must(keel::flow::ParseWorkflow(NoopWorkflow("w2", 3), "w2.yaml"), "parse w2");
  std::map<std::string, Clock::time_point> flying;
  std::vector<double> lat;
  DurableAcks acks(e->ws.get());
  int started = 0, completed = 0, acked = 0;
  auto t0 = Clock::now();
  while (acked < runs) {
    // The client: keeps `inflight` runs going, starting the missing ones in one commit.
    int want = std::min(inflight - static_cast<int>(flying.size()), runs - started);
    if (want > 0) {
      auto ts = Clock::now();
      std::vector<std::string> ids;
      Must(e->ws->Write([&](keel::store::Txn& txn) -> keel::Status {
        for (int i = 0; i < want; ++i) {
          KEEL_ASSIGN_OR_RETURN(std::string id, e->engine->StartInTxn(txn, *wf, json::object()));
          ids.push_back(id);
        }
        return keel::OkStatus();
      }),
           "start w2 runs");
      for (auto& id : ids) flying[id] = ts;
      started += want;
    }
    if (completed == runs) {
      // Everything finished; the last rounds are acknowledged once durable.
      Must(e->engine->WaitDurable(), "wait durable");
    } else {
      Must(e->engine->Tick(), "tick");
    }
    for (auto it = flying.begin(); it != flying.end();) {
      auto r = Must(keel::store::GetRun(*e->ws, it->first), "get run");
      if (r && r->status == "completed") {
        acks.Committed(it->second);
        ++completed;
        it = flying.erase(it);
      } else if (r && r->status != "running") {
        Die("w2 run " + it->first + " ended " + r->status);
      } else {
        ++it;
      }
    }
    acked += acks.Observe(&lat);
  }
  double el = Secs(t0, Clock::now());
  stop.store(true);
  for (auto& t : threads) t.join();
  threads.clear();
  if (reads) {
    std::vector<double> all;
    for (auto& v : read_lat) all.insert(all.end(), v.begin(), v.end());
    reads->reads = static_cast<int64_t>(all.size());
    reads->p50_ms = Pct(all, 0.5) * 1e3;
    reads->p99_ms = Pct(all, 0.99) * 1e3;
    reads->max_ms = Pct(all, 1.0) * 1e3;
  }
  return {runs / el, Pct(lat, 0.5) * 1e3, Pct(lat, 0.99) * 1e3, el};
}

// ---- W4: slow effects, several in flight --------------------------------------------

struct W4Result {
  double wall_s = 0, runs_per_s = 0;
};

W4Result RunW4(const std::string& dir, const keel::Env& env, int runs, int sleep_ms, int inflight) {
  SleepAdapter slow(sleep_ms);
  keel::flow::EffectLimits lim;
  lim.global = inflight;
  lim.per_lane = inflight;
  auto e = NewWorkspace(dir, env, 64, &slow, lim);
  auto wf = Must(keel::flow::ParseWorkflow(
                     "name: w4\nsteps:\n  - id: call\n    action: slow.call\n", "w4.yaml"),
                 "parse w4");
  auto t0 = Clock::now();
  Must(e->ws->Write([&](keel::store::Txn& txn) -> keel::Status {
    for (int i = 0; i < runs; ++i) {
      KEEL_RETURN_IF_ERROR(e->engine->StartInTxn(txn, *wf, json::object()).status());
    }
    return keel::OkStatus();
  }),
       "start w4 runs");
  // The worker's loop (app::RunWorker): tick while something moves, else sleep until an
  // effect ends.
  for (;;) {
    auto t = Must(e->engine->Tick(), "tick");
    if (t.progressed()) continue;
    if (e->engine->InFlight() == 0 && t.deferred == 0) break;
    e->engine->Sleep(200000);
  }
  Must(e->engine->WaitDurable(), "wait durable");
  double el = Secs(t0, Clock::now());
  int64_t done = 0;
  for (auto& [k, v] : Must(keel::store::CountRuns(*e->ws), "count runs")) {
    if (k == "completed") done = v;
  }
  if (done != runs) Die("w4: only " + std::to_string(done) + " runs completed");
  return {el, runs / el};
}

// ---- W3: a real worker process, SIGKILLed ------------------------------------------

// `wrap`: a command line to run the binary under (e.g. callgrind), empty for none.
pid_t Spawn(const std::vector<std::string>& args, const std::string& log,
            const std::vector<std::string>& wrap = {}) {
  std::string bin = KEEL_BINARY;
  pid_t pid = ::fork();
  if (pid < 0) Die("fork failed");
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    std::vector<std::string> a = wrap;
    a.push_back(bin);
    a.insert(a.end(), args.begin(), args.end());
    std::vector<char*> argv;
    argv.reserve(a.size() + 1);
    for (auto& s : a) argv.push_back(s.data());
    argv.push_back(nullptr);
    ::execvp(a[0].c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

int WaitPid(pid_t pid) {
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

std::map<std::string, int64_t> Counts(const std::string& dir, const keel::Env& env) {
  keel::store::WorkspaceOpenOptions oo;
  oo.read_only = true;
  auto ws = Must(keel::store::Workspace::Open(dir, oo, env), "open read-only");
  std::map<std::string, int64_t> m;
  for (auto& [k, v] : Must(keel::store::CountRuns(*ws), "count runs")) m[k] = v;
  return m;
}

struct W3Result {
  int runs = 0;
  double kill_after_s = 0;  // how long the first worker ran before the kill
  double recover_s = 0;     // restart of the worker until all runs completed (it exits)
  int64_t completed = 0, s1_twice = 0, waiting_at_kill = 0;
};

W3Result RunW3(const std::string& dir, const keel::Env& env, int runs, int wait_ms, int batch) {
  W3Result res;
  res.runs = runs;
  {
    auto e = NewWorkspace(dir, env, 64);
    std::string yaml = "name: w3\nsteps:\n  - id: s1\n    noop: true\n  - id: nap\n    wait: " +
                       std::to_string(wait_ms) + "ms\n  - id: s2\n    noop: true\n";
    auto wf = Must(keel::flow::ParseWorkflow(yaml, "w3.yaml"), "parse w3");
    for (int i = 0; i < runs; i += 1000) {
      Must(e->ws->Write([&](keel::store::Txn& txn) -> keel::Status {
        for (int j = i; j < std::min(runs, i + 1000); ++j) {
          KEEL_RETURN_IF_ERROR(e->engine->StartInTxn(txn, *wf, json::object()).status());
        }
        return keel::OkStatus();
      }),
           "start w3 runs");
    }
  }
  std::string log = dir + "/../w3-worker.log";
  std::string b = std::to_string(batch);
  // The first worker takes every run to the timer; it is killed once all of them wait.
  auto t0 = Clock::now();
  pid_t w = Spawn({"--workspace", dir, "worker", "--batch", b, "--poll-ms", "5"}, log);
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto c = Counts(dir, env);
    if (c["completed"] > 0) Die("w3: timers fired before all runs waited; raise --w3-wait-ms");
    if (c["waiting"] == runs) {
      res.waiting_at_kill = c["waiting"];
      break;
    }
    if (Secs(t0, Clock::now()) > 600) Die("w3: runs never reached the timer");
  }
  ::kill(w, SIGKILL);
  WaitPid(w);
  res.kill_after_s = Secs(t0, Clock::now());
  // Let every timer deadline pass while no worker runs (as the peer benchmarks do).
  std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms + 200));
  auto r0 = Clock::now();
  // KEEL_BENCH_W3_CALLGRIND=FILE profiles the restarted worker (the time is then meaningless).
  std::vector<std::string> wrap;
  if (const char* cg = std::getenv("KEEL_BENCH_W3_CALLGRIND"); cg && *cg) {
    wrap = {"valgrind", "--tool=callgrind", std::string("--callgrind-out-file=") + cg};
  }
  pid_t w2 = Spawn({"--workspace", dir, "worker", "--until-idle", "--batch", b}, log, wrap);
  int code = WaitPid(w2);
  res.recover_s = Secs(r0, Clock::now());
  if (code != 0)
    Die("w3: the restarted worker failed (code " + std::to_string(code) + "), see " + log);
  auto c = Counts(dir, env);
  res.completed = c["completed"];
  // No step journaled before the kill ran again: one step.completed entry per (run, s1).
  keel::store::WorkspaceOpenOptions oo;
  oo.read_only = true;
  auto ws = Must(keel::store::Workspace::Open(dir, oo, env), "open");
  keel::store::LedgerQuery q;
  q.kind = "step.completed";
  std::map<std::string, int> s1;
  Must(ws->ScanLedger(1,
                      [&](const keel::store::LedgerEntry& en) -> keel::Status {
                        if (en.kind == "step.completed" && en.step_id == "s1") ++s1[en.run_id];
                        return keel::OkStatus();
                      }),
       "scan ledger");
  for (auto& [k, v] : s1) res.s1_twice += v > 1;
  return res;
}

std::string LoadAverage() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

}  // namespace

int main(int argc, char** argv) {
  int w1_steps = 1000, w2_runs = 2000, w2_inflight = 16, w3_runs = 10000, w3_wait_ms = 5000;
  int w3_batch = 1000, fsyncs = 2000;
  int w4_runs = 200, w4_sleep_ms = 200, w4_inflight = 16, readers = 4, read_gap_ms = 5;
  std::string only = "w1,w2,w3,w4,reads";
  keel::bench::Flags flags("engine bench", "scripts/bench engine");
  flags.Int("--w1-steps", &w1_steps, 1, 100000000, "W1: sequential steps in the one run");
  flags.Int("--w2-runs", &w2_runs, 1, 100000000, "W2: runs of 3 steps");
  flags.Int("--w2-inflight", &w2_inflight, 1, 100000, "W2: runs in flight");
  flags.Int("--w3-runs", &w3_runs, 1, 100000000, "W3: runs waiting on a timer");
  flags.Int("--w3-wait-ms", &w3_wait_ms, 1, 100000000, "W3: the timer's wait");
  flags.Int("--w3-batch", &w3_batch, 1, 100000000, "W3: the worker's --batch");
  flags.Int("--w4-runs", &w4_runs, 1, 100000000, "W4: runs of one slow action");
  flags.Int("--w4-sleep-ms", &w4_sleep_ms, 0, 100000, "W4: how long each action takes");
  flags.Int("--w4-inflight", &w4_inflight, 1, 256, "W4: effects in flight (1: serial)");
  flags.Int("--readers", &readers, 1, 64, "reads: threads listing runs during W2");
  flags.Int("--read-gap-ms", &read_gap_ms, 0, 10000,
            "reads: each thread's pause between lists (0: back to back)");
  flags.Int("--fsyncs", &fsyncs, 2, 100000000, "fsync probe calls per mode, half before W1");
  flags.Str("--only", &only, "LIST",
            "comma-separated workloads to run: w1, w2, w3, w4, reads (default: all)");
  flags.Parse(argc, argv);
  std::set<std::string> chosen;
  for (size_t start = 0; start <= only.size();) {
    size_t comma = std::min(only.find(',', start), only.size());
    std::string w = only.substr(start, comma - start);
    if (w != "w1" && w != "w2" && w != "w3" && w != "w4" && w != "reads")
      flags.Fail("--only: unknown workload '" + w + "'");
    chosen.insert(w);
    start = comma + 1;
  }
  auto run = [&](const std::string& w) { return chosen.count(w) > 0; };

  std::string root;
  if (const char* d = std::getenv("KEEL_BENCH_DIR"); d && *d) {
    root = d;
  } else {
    root = std::filesystem::absolute(argv[0]).parent_path().string() + "/bench-tmp";
  }
  root += "/engine";
  std::filesystem::create_directories(root);
  keel::Env env;

  std::string load_before = LoadAverage();
  keel::bench::FsyncProbe disk(root);
  disk.MeasureBoth(fsyncs / 2);
  std::printf(
      "engine benchmark in %s (durability on: a step or run counts as done once the fsync "
      "covering its commit has returned)\n",
      root.c_str());
  std::printf("load average at start: %s\n\n", load_before.c_str());

  std::ostringstream kv;
  char buf[256];
  std::printf("%-4s %-46s %14s %12s %12s\n", "", "workload", "throughput", "p50", "p99");
  std::optional<W1Result> w1;
  if (run("w1")) {
    W1Result r = RunW1(root + "/w1", env, w1_steps);
    std::printf("%-4s %-46s %9.0f st/s %9.3f ms %9.3f ms\n", "W1",
                (std::to_string(w1_steps) + " sequential no-op steps, one run").c_str(),
                r.steps_per_s, r.p50_ms, r.p99_ms);
    w1 = r;
  }
  disk.MeasureBoth(fsyncs / 2);  // after W1: its ratio is to the rate around it
  const keel::bench::FsyncProbe::Mode& fs = disk.faster();
  double fsync_per_s = fs.PerSecond();
  std::snprintf(buf, sizeof buf, "fsync_per_s=%.0f", fsync_per_s);
  kv << buf;
  if (w1) {
    std::printf("     W1 steps/s vs disk fsyncs/s: %.2f (target >= 0.80)\n",
                w1->steps_per_s / fsync_per_s);
    std::snprintf(buf, sizeof buf,
                  " w1_steps_per_s=%.0f w1_vs_fsync=%.2f w1_p50_ms=%.3f w1_p99_ms=%.3f",
                  w1->steps_per_s, w1->steps_per_s / fsync_per_s, w1->p50_ms, w1->p99_ms);
    kv << buf;
  }
  if (run("w2")) {
    W2Result r = RunW2(root + "/w2", env, w2_runs, w2_inflight);
    std::printf("%-4s %-46s %9.0f wf/s %9.3f ms %9.3f ms\n", "W2",
                (std::to_string(w2_runs) + " runs of 3 no-op steps, " +
                 std::to_string(w2_inflight) + " in flight")
                    .c_str(),
                r.runs_per_s, r.p50_ms, r.p99_ms);
    std::snprintf(buf, sizeof buf, " w2_workflows_per_s=%.0f w2_p50_ms=%.3f w2_p99_ms=%.3f",
                  r.runs_per_s, r.p50_ms, r.p99_ms);
    kv << buf;
  }
  if (run("w3")) {
    W3Result r = RunW3(root + "/w3", env, w3_runs, w3_wait_ms, w3_batch);
    std::printf("%-4s %-46s %11.3f s to recover (all %lld done; %lld s1 twice)\n", "W3",
                (std::to_string(w3_runs) + " runs on a timer, worker SIGKILLed").c_str(),
                r.recover_s, static_cast<long long>(r.completed),
                static_cast<long long>(r.s1_twice));
    if (r.completed != w3_runs) Die("w3: only " + std::to_string(r.completed) + " runs completed");
    std::snprintf(buf, sizeof buf, " w3_runs=%d w3_recover_s=%.3f w3_s1_twice=%lld", w3_runs,
                  r.recover_s, static_cast<long long>(r.s1_twice));
    kv << buf;
  }
  if (run("w4")) {
    W4Result r = RunW4(root + "/w4", env, w4_runs, w4_sleep_ms, w4_inflight);
    double serial = w4_runs * w4_sleep_ms / 1000.0;
    std::printf("%-4s %-46s %9.1f wf/s %9.3f s wall (serial: %.1f s)\n", "W4",
                (std::to_string(w4_runs) + " runs, one " + std::to_string(w4_sleep_ms) +
                 " ms action, " + std::to_string(w4_inflight) + " in flight")
                    .c_str(),
                r.runs_per_s, r.wall_s, serial);
    std::snprintf(buf, sizeof buf, " w4_runs=%d w4_inflight=%d w4_wall_s=%.3f w4_runs_per_s=%.1f",
                  w4_runs, w4_inflight, r.wall_s, r.runs_per_s);
    kv << buf;
  }
  if (run("reads")) {
    ReadResult rr;
    W2Result r = RunW2(root + "/reads", env, w2_runs, w2_inflight, readers, &rr, read_gap_ms);
    std::printf("%-4s %-46s %9.0f wf/s %9.3f ms %9.3f ms (max %.3f ms, %lld lists)\n", "R",
                ("run list (20), " + std::to_string(readers) + " threads, every " +
                 std::to_string(read_gap_ms) + " ms, during W2")
                    .c_str(),
                r.runs_per_s, rr.p50_ms, rr.p99_ms, rr.max_ms, static_cast<long long>(rr.reads));
    std::snprintf(buf, sizeof buf,
                  " reads_threads=%d reads_gap_ms=%d reads_p50_ms=%.3f reads_p99_ms=%.3f "
                  "reads_max_ms=%.3f reads_w2_workflows_per_s=%.0f",
                  readers, read_gap_ms, rr.p50_ms, rr.p99_ms, rr.max_ms, r.runs_per_s);
    kv << buf;
  }
  std::string load_after = LoadAverage();
  std::printf(
      "\ndisk, before and after W1, %d x each: 4 KiB overwrite + fdatasync %.0f/s, 512 B "
      "append + fdatasync %.0f/s; the faster, %.0f/s (median %.0f us, p99 %.0f us), is the "
      "ceiling W1 is compared with\n",
      fsyncs, disk.overwrite().PerSecond(), disk.append().PerSecond(), fsync_per_s,
      fs.Percentile(0.5), fs.Percentile(0.99));
  std::printf("load average at end: %s\n", load_after.c_str());
  auto first = [](const std::string& s) { return s.substr(0, s.find(' ')); };
  kv << " load1_start=" << first(load_before) << " load1_end=" << first(load_after);
  // KEEL_BENCH_KEEP=1 keeps the workspaces to look at (docs/benchmarks.md).
  if (std::getenv("KEEL_BENCH_KEEP") == nullptr) {
    std::filesystem::remove_all(root);
  } else {
    std::printf("kept: %s\n", root.c_str());
  }
  std::cout << kv.str() << std::endl;
  return 0;
}
