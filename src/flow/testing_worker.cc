#include "flow/testing_worker.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "core/env.h"
#include "core/hash.h"
#include "store/ledger.h"
#include "store/runs.h"
#include "store/workspace.h"

namespace keel::flow::testing {

using nlohmann::json;

namespace {

int DecodeStatus(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

}  // namespace

KeelChild::KeelChild(const std::vector<std::string>& args,
                     const std::map<std::string, std::string>& env, const std::string& log) {
  std::string bin = keel::testing::KeelBinary();
  std::vector<std::string> argv_s;
  argv_s.push_back(bin);
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0) ::dup2(null, 0);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
}

KeelChild::~KeelChild() {
  if (!code_) Kill();
}

std::optional<int> KeelChild::Wait(int64_t timeout_ms) {
  if (code_) return code_;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      code_ = DecodeStatus(status);
      return code_;
    }
    if (r < 0) {
      code_ = -1;
      return code_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

int KeelChild::Kill() {
  if (code_) return *code_;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  code_ = DecodeStatus(status);
  return *code_;
}

CrashHarness::CrashHarness() {
  ws_ = tmp_.Sub("ws");
  effects_ = tmp_.Sub("effects.txt");
  log_ = tmp_.Sub("keel.log");
  auto r = keel::testing::RunKeel({"init", ws_, "--name", "crash test"});
  if (r.exit_code != 0) throw std::runtime_error("keel init failed: " + r.err);
  std::filesystem::create_directories(ws_ + "/workflows");
}

void CrashHarness::AddWorkflow(const std::string& name, const std::string& yaml) {
  keel::testing::WriteFile(ws_ + "/workflows/" + name + ".yaml", yaml);
}

keel::testing::ProcessResult CrashHarness::Keel(std::vector<std::string> args,
                                                const std::map<std::string, std::string>& extra) {
  args.insert(args.begin(), {"--workspace", ws_});
  std::map<std::string, std::string> env = extra;
  env["KEEL_FAKE_EFFECTS"] = effects_;
  return keel::testing::RunKeel(args, "", env);
}

std::string CrashHarness::Start(const std::string& workflow, const json& input) {
  auto r = Keel({"run", workflow, "--input", input.dump()});
  EXPECT_EQ(r.exit_code, 0) << "keel run " << workflow << ": " << r.err;
  std::string id = r.out;
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  return id;
}

std::unique_ptr<KeelChild> CrashHarness::SpawnWorker(
    const std::map<std::string, std::string>& extra_env,
    const std::vector<std::string>& extra_args) {
  std::vector<std::string> args = {"--workspace", ws_, "worker", "--until-idle"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::map<std::string, std::string> env = extra_env;
  env["KEEL_FAKE_EFFECTS"] = effects_;
  return std::make_unique<KeelChild>(args, env, log_);
}

int CrashHarness::RunWorkerCrashingAt(const std::string& crash_at,
                                      const std::vector<std::string>& extra_args) {
  std::map<std::string, std::string> env = {{"KEEL_CRASH_AT", crash_at}};
  // Lease renewal happens only in a batch that outlasts half a lease; slow fake peers make
  // that certain instead of depending on how loaded the machine is.
  if (crash_at.rfind("lease.", 0) == 0) env["KEEL_FAKE_DELAY_MS"] = "3";
  auto w = SpawnWorker(env, extra_args);
  auto code = w->Wait(120000);
  if (!code) {
    ADD_FAILURE() << "worker crashing at " << crash_at << " did not end within 120 s";
    return w->Kill();
  }
  return *code;
}

bool CrashHarness::Settle(int max_rounds) {
  for (int round = 0; round < max_rounds; ++round) {
    auto w = SpawnWorker();
    auto code = w->Wait(120000);
    EXPECT_TRUE(code.has_value() && *code == 0)
        << "a worker without crash point failed (code " << (code ? *code : 999) << "); log:\n"
        << keel::testing::ReadFileOrDie(log_);
    auto runs = Keel({"runs", "--json", "--limit", "100000"});
    if (runs.exit_code != 0) return false;
    json arr = json::parse(runs.out, nullptr, false);
    bool busy = false;
    for (const auto& r : arr) {
      std::string st = r.value("status", "");
      std::string wait = r.value("waiting_for", "");
      if (st == "running" || (st == "waiting" && wait == "timer")) busy = true;
    }
    if (!busy) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

Observed CrashHarness::Observe() {
  Observed o;
  auto runs = Keel({"runs", "--json", "--limit", "100000"});
  EXPECT_EQ(runs.exit_code, 0) << runs.err;
  o.runs = json::parse(runs.out, nullptr, false);
  auto apv = Keel({"approvals", "--json"});
  EXPECT_EQ(apv.exit_code, 0) << apv.err;
  o.approvals = json::parse(apv.out, nullptr, false);
  {
    std::ifstream in(effects_);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      std::string adapter, token;
      ls >> adapter >> token;
      ++o.effects[adapter + " " + token];
    }
  }
  store::WorkspaceOpenOptions oo;
  oo.read_only = true;
  auto ws = store::Workspace::Open(ws_, oo, Env{});
  EXPECT_TRUE(ws.ok()) << ws.status().ToString();
  if (!ws.ok()) return o;
  auto entries = (*ws)->QueryLedger(store::LedgerQuery{});
  EXPECT_TRUE(entries.ok());
  if (entries.ok()) {
    o.ledger_entries = static_cast<int64_t>(entries->size());
    for (const auto& e : *entries) {
      std::string k = e.run_id + " " + e.step_id;
      if (e.kind == "step.completed") {
        if (o.completed[k]++ == 0) o.first_completed_seq[k] = e.seq;
      } else if (e.kind == "step.started" || e.kind == "action.prepared" ||
                 e.kind == "action.retrying") {
        o.starts[k].push_back(e.seq);
      }
    }
  }
  auto obs = store::ListOutbox(**ws, "", "");
  EXPECT_TRUE(obs.ok());
  if (obs.ok()) {
    for (const auto& ob : *obs) {
      o.outbox_state[ob.token] = ob.state;
      o.outbox_step[ob.token] = ob.run_id + " " + ob.step_key;
      o.outbox_keyed[ob.token] = ob.honours_key;
    }
  }
  return o;
}

std::string CrashHarness::VerifyLedger() {
  store::WorkspaceOpenOptions oo;
  oo.read_only = true;
  auto ws = store::Workspace::Open(ws_, oo, Env{});
  if (!ws.ok()) return "cannot open: " + ws.status().ToString();
  std::string why;
  int64_t want_seq = 1;
  Digest prev{};
  std::string scratch;
  Status s = (*ws)->ScanLedger(1, [&](const store::LedgerEntry& e) -> Status {
    if (e.seq != want_seq) {
      why = "entry " + std::to_string(e.seq) + " where " + std::to_string(want_seq) + " was due";
      return DataLoss(why);
    }
    if (e.prev_hash != prev) {
      why = "entry " + std::to_string(e.seq) + " does not link to its predecessor";
      return DataLoss(why);
    }
    if (store::ComputeEntryHash(e, &scratch) != e.hash) {
      why = "entry " + std::to_string(e.seq) + " has a wrong hash";
      return DataLoss(why);
    }
    prev = e.hash;
    ++want_seq;
    return OkStatus();
  });
  if (!s.ok() && why.empty()) why = s.ToString();
  return why;
}

void CrashHarness::CheckInvariants(const Observed& o, const std::string& label, bool settled) {
  for (const auto& [k, n] : o.completed) {
    EXPECT_EQ(n, 1) << label << ": step " << k << " completed " << n << " times";
    auto it = o.starts.find(k);
    if (it == o.starts.end()) continue;
    int64_t done = o.first_completed_seq.at(k);
    for (int64_t seq : it->second) {
      EXPECT_LT(seq, done) << label << ": step " << k << " started again (ledger seq " << seq
                           << ") after it completed (seq " << done << ")";
    }
  }
  for (const auto& [k, n] : o.effects) {
    EXPECT_LE(n, 1) << label << ": effect " << k << " happened " << n << " times";
  }
  // Every uncertain outbox row is put to the operator, with evidence, and never re-sent.
  for (const auto& [token, state] : o.outbox_state) {
    if (state != "uncertain") continue;
    bool listed = false;
    for (const auto& a : o.approvals) {
      if (a.value("kind", "") != "uncertain") continue;
      const json& c = a["context"];
      if (!c.is_object() || c.value("token", "") != token) continue;
      listed = true;
      EXPECT_FALSE(c.value("evidence", "").empty()) << label << ": no evidence for " << token;
      EXPECT_FALSE(a.value("summary", "").empty()) << label;
    }
    EXPECT_TRUE(listed) << label << ": uncertain action " << token << " ("
                        << o.outbox_step.at(token) << ") is not listed by `keel approvals`";
    EXPECT_FALSE(o.outbox_keyed.at(token))
        << label << ": a key-honouring action was left uncertain instead of retried";
  }
  static const std::set<std::string> kTerminal = {"completed", "failed", "canceled"};
  static const std::set<std::string> kVisibleWaits = {"approval", "uncertain", "human", "event",
                                                      "timer",    "paused",    "child"};
  for (const auto& r : o.runs) {
    if (!settled) break;
    std::string st = r.value("status", "");
    if (kTerminal.count(st)) continue;
    EXPECT_EQ(st, "waiting") << label << ": run " << r.value("id", "") << " is " << st
                             << " after the workers settled";
    EXPECT_TRUE(kVisibleWaits.count(r.value("waiting_for", "")))
        << label << ": run " << r.value("id", "") << " waits for '" << r.value("waiting_for", "")
        << "'";
  }
  std::string chain = VerifyLedger();
  EXPECT_EQ(chain, "") << label << ": ledger chain: " << chain;
}

}  // namespace keel::flow::testing
