// Crash-test harness for the flow engine (linked only into tests): a real workspace driven
// through the real `keel` binary, workers started as child processes that can be SIGKILLed
// (by a named crash point or at a random moment), and the checks every crash test makes
// afterwards, read back from the workspace.
//
// The fake adapters in the binary count their effects in an append-only file
// (KEEL_FAKE_EFFECTS), written and fsynced before Perform returns, so the count survives the
// kill: a line there is an effect that happened, whatever the database says.
//
// Thread-safety: none; one test drives one harness.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/testing_util.h"

namespace keel::flow::testing {

// A `keel` child process. The destructor SIGKILLs and reaps it if it still runs.
class KeelChild {
 public:
  // Starts `keel args...` with extra environment variables; stdout and stderr go to `log`
  // (appended). Throws std::runtime_error if fork fails.
  KeelChild(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
            const std::string& log);
  ~KeelChild();
  KeelChild(const KeelChild&) = delete;
  KeelChild& operator=(const KeelChild&) = delete;

  pid_t pid() const { return pid_; }
  // Waits up to `timeout_ms` for the process to end. Returns its exit code (-signal when a
  // signal ended it), or nullopt if it still runs.
  std::optional<int> Wait(int64_t timeout_ms);
  // SIGKILLs the process and reaps it; returns what Wait would.
  int Kill();

 private:
  pid_t pid_ = -1;
  std::optional<int> code_;
};

// What a crash-test run leaves behind, as an operator would see it.
struct Observed {
  nlohmann::json runs;       // `keel runs --json --limit 100000`
  nlohmann::json approvals;  // `keel approvals --json` (pending items)
  // effects file: "<adapter> <token>" -> how many lines
  std::map<std::string, int> effects;
  // ledger: "<run> <step key>" -> number of step.completed entries (compensations included)
  std::map<std::string, int> completed;
  // ledger: "<run> <step key>" -> ledger seq of the first step.completed
  std::map<std::string, int64_t> first_completed_seq;
  // ledger: "<run> <step key>" -> seqs of step.started / action.prepared / action.retrying
  std::map<std::string, std::vector<int64_t>> starts;
  // outbox rows: token -> state; token -> "<run> <step key>"
  std::map<std::string, std::string> outbox_state;
  std::map<std::string, std::string> outbox_step;
  std::map<std::string, bool> outbox_keyed;
  int64_t ledger_entries = 0;
};

class CrashHarness {
 public:
  CrashHarness();
  const std::string& ws() const { return ws_; }
  const std::string& effects_file() const { return effects_; }
  const std::string& log_file() const { return log_; }

  // Writes workflows/<name>.yaml.
  void AddWorkflow(const std::string& name, const std::string& yaml);
  // `keel run NAME --input JSON`; returns the run id (fails the test on error).
  std::string Start(const std::string& workflow, const nlohmann::json& input);
  // Runs `keel args...` on the workspace with the fake-effects file and `extra_env`.
  keel::testing::ProcessResult Keel(std::vector<std::string> args,
                                    const std::map<std::string, std::string>& extra_env = {});
  // Starts a worker (`keel worker --until-idle`, plus `extra_args`) as a child.
  std::unique_ptr<KeelChild> SpawnWorker(const std::map<std::string, std::string>& extra_env = {},
                                         const std::vector<std::string>& extra_args = {});
  // Runs a worker with KEEL_CRASH_AT=`crash_at` to its end. Returns its exit code: -9 when
  // the crash point killed it, 0 when the point was never reached.
  int RunWorkerCrashingAt(const std::string& crash_at,
                          const std::vector<std::string>& extra_args = {});
  // Restarts workers (no crash point) until no run is `running` or waiting on a timer due
  // within a second; at most `max_rounds` workers. Returns false if work remained.
  bool Settle(int max_rounds = 40);

  // Reads back everything the checks need (CLI for what the operator sees, the workspace
  // opened read-only for the ledger, journal and outbox).
  Observed Observe();
  // Recomputes every ledger entry's hash and link: empty if the chain verifies, else why not.
  std::string VerifyLedger();

  // The checks every crash test makes; each failure is a gtest failure naming `label`:
  //  - no step key completed twice; nothing started again after it completed
  //  - no token of a key-honouring adapter has more than one effect line
  //  - no token of the SMTP-like adapter has more than one effect line
  //  - every outbox row left `uncertain` is listed by `keel approvals` with its evidence
  //  - every run is completed, failed, canceled, or waiting for something the operator sees
  //    (an approval, an event, a timer, a pause), none `running` after Settle (only when
  //    `settled`: between kills, runs are legitimately in flight)
  //  - the ledger chain verifies
  void CheckInvariants(const Observed& o, const std::string& label, bool settled = true);

 private:
  keel::testing::TempDir tmp_;
  std::string ws_, effects_, log_;
};

}  // namespace keel::flow::testing
