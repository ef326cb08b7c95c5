// The durable workflow engine: starts runs, executes their steps, and keeps every decision
// in the store (journal, outbox, operator items) together with its ledger entry.
//
// Execution model (docs/workflows.md, docs/architecture.md "Flow"):
// - A run's position is a program counter into the workflow's compiled program plus its loop
//   frames; it is written in the same transaction as the journal row and the ledger entry of
//   the step that moved it. A step instance is named by its key (id, plus loop indexes:
//   "send#2"); a key that is journaled as completed is never executed again.
// - Tick() is one round of the worker: in ONE transaction it advances every due run by one
//   step (group commit: one fsync for many runs' steps), claims leases and writes outbox rows
//   for the steps that need I/O; after that commit it performs the I/O, then records all
//   outcomes in one more transaction. No external effect starts before its outbox row and
//   lease are durable.
// - That first transaction is pipelined (store::Workspace::WritePipelined): Tick() may
//   return before it is durable, so that the next round's work overlaps its fsync and
//   consecutive rounds share fsyncs. Tick() waits for durability itself before any I/O;
//   a caller that reports what a round did outside the process (an exit, a reply) calls
//   WaitDurable() first. RunUntilIdle() does.
// - Time comes only from the Env's Clock; backoff jitter only from its Random.
//
// - Effects (agent calls and adapter actions) run on an EffectExecutor (flow/executor.h),
//   several at once within the keel.yaml limits, so a slow call never stalls the steps of
//   other runs. Tick() claims a step's effect (outbox row "sending", lease, the run due
//   again only when the lease ends), waits until that round is durable, submits the
//   effect and returns; a later Tick() records the outcome (fenced by the lease) once the
//   executor has performed it. Leases of effects in flight are renewed by Tick() before
//   half of them is gone. A run whose effect is in flight is not advanced meanwhile.
//   A lane (one adapter, one agent) never has more than its limit plus one batch claimed:
//   the rest of its runs wait, due, for a later round.
//
// Ownership: the engine borrows the workspace and the registered agents/adapters; they must
// outlive it (the engine waits for effects that are running when it is destroyed).
//
// Thread-safety: one thread drives the worker calls (Tick, RunUntilIdle, Drain, Sleep,
// NextWakeUs, WaitDurable). While it does, any other thread may call Start, StartInTxn,
// SendEvent, Decide, Cancel, Retry, Pause, Resume, Check, Resolve, LoadFile, ListWorkflows,
// Upcoming and PurgeExpiredEvents: they touch no worker state, and the Workspace serialises
// their transactions with the worker's. Other processes may do the same through their own
// Engine (the store serialises them across processes; docs/architecture.md "Concurrency").
// Registered agents and adapters are called from the executor's threads, several at once.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "core/status.h"
#include "flow/executor.h"
#include "flow/interfaces.h"
#include "flow/workflow.h"
#include "store/runs.h"
#include "store/workspace.h"

namespace keel::flow {

struct EngineOptions {
  // Lease owner; a random id when empty. A worker that restarts under the same id takes back
  // its own leases at once (the wiring gives the id only to a worker that holds the
  // workspace's worker lock, which proves the previous holder is dead).
  std::string worker_id;
  int64_t lease_us = 300LL * 1000000;  // how long a claimed step is ours
  int batch = 64;                      // runs advanced per transaction
  std::string workflows_dir;           // default: <workspace>/workflows
  // How long a received event is kept (for runs that reach their wait_event later, and to
  // deduplicate its id); keel.yaml `events.retention` (flow/config.h). Default 7 days.
  int64_t event_retention_us = 7LL * 24 * 3600 * 1000000;
  // How many effects run at once (keel.yaml `effects:` and `adapters.NAME.concurrency`).
  EffectLimits effects;
  // Where effects run. Null: a thread pool with the `effects` limits, owned by the engine.
  // Tests pass an InlineExecutor: each round then performs and records its effects itself.
  std::shared_ptr<EffectExecutor> executor;
};

// What Tick() did.
struct TickStats {
  int steps = 0;      // steps completed or started (I/O) this round
  int io = 0;         // outcomes of agent calls and adapter actions recorded this round
  int in_flight = 0;  // effects submitted and not yet recorded after this round
  int deferred = 0;   // runs whose next effect waits for room in its lane (not counted above)
  // Anything moved: a caller that loops should tick again at once.
  bool progressed() const { return steps || io || timers || schedules; }
  int timers = 0;     // timers, reminders and timeouts that fired
  int schedules = 0;  // cron schedules that started a run
};

// What Cancel() did.
struct CancelResult {
  int compensations = 0;       // compensations the run will now run (0: it is canceled already)
  int approvals_canceled = 0;  // pending gates / needs-human items of the run, now canceled
  int actions_canceled = 0;    // outbox rows with a retry scheduled, never performed now
  int actions_uncertain = 0;   // attempts in flight at the cancel, put to the operator
  std::vector<std::string> children;  // child runs canceled with it
};

// What waits for a time to come (Engine::Upcoming): one group per kind of wait.
struct UpcomingGroup {
  // retry           a step's next attempt after a failure (backoff, or a peer's retry_after)
  // timer           a `wait` / `until` step
  // event_timeout   a `wait_event` step's timeout
  // approval        an approval's reminder or deadline (the next of the two)
  // schedule        a workflow's cron schedule (count = schedules, not runs)
  // lease           a step claimed by a worker that is busy with it or died: no other
  //                 worker takes it before the lease ends (earliest_us)
  // Another word is a wait_kind of store::RunRow with a deadline (none exists today).
  std::string kind;
  int64_t count = 0;
  int64_t earliest_us = store::kNeverUs;  // wall time the first of them is due
  std::string earliest;                   // its run id (for a schedule: the workflow)
};
struct UpcomingWork {
  std::vector<UpcomingGroup> groups;  // earliest first; kinds with nothing due are left out
  // Runs due now with no lease: a worker would take them now (0 after RunUntilIdle unless
  // a global pause holds them).
  int64_t due_now = 0;
  bool empty() const { return groups.empty() && due_now == 0; }
  // The first group, or nullptr if nothing waits for a time.
  const UpcomingGroup* first() const { return groups.empty() ? nullptr : &groups.front(); }
};

struct EventResult {
  bool duplicate = false;  // an event with this id was received before: nothing delivered
  int delivered = 0;       // runs that were waiting for it
  std::string id;
};

class Engine {
 public:
  Engine(store::Workspace* ws, Registry registry, EngineOptions opts = {});
  ~Engine();

  // --- workflows ---
  // A file path (if it exists), else a name under workflows/ ("hello" -> hello.yaml, or the
  // file whose `name:` is hello). Validates agents and adapters against the registry.
  Result<std::shared_ptr<const Workflow>> Resolve(const std::string& name_or_path);
  Result<std::shared_ptr<const Workflow>> LoadFile(const std::string& path);
  // Parsed workflows under workflows/ (files that fail to load are returned as errors).
  std::vector<std::pair<std::string, Result<std::shared_ptr<const Workflow>>>> ListWorkflows();
  // Checks the agents, adapters and subflows a workflow names. InvalidArgument.
  Status Check(const Workflow& wf);

  // --- runs ---
  // Stores the workflow version (if new), the run and its ledger entry; returns the run id.
  // InvalidArgument: input not an object or missing a required field.
  Result<std::string> Start(const std::string& name_or_path, const nlohmann::json& input);
  Result<std::string> Start(std::shared_ptr<const Workflow> wf, const nlohmann::json& input);
  // The same inside a caller's transaction (to start many runs with one commit).
  Result<std::string> StartInTxn(store::Txn& txn, const Workflow& wf, const nlohmann::json& input);

  // --- worker ---
  // One round (see the top of this file). Errors: those of the store (Unavailable for a
  // full disk, DataLoss once writes stopped); a round that failed to record outcomes keeps
  // them and records them on the next call.
  Result<TickStats> Tick();
  // Ticks until nothing is due now (timers in the future do not count) and no effect is in
  // flight, then waits until every round is durable. Returns steps done.
  Result<int64_t> RunUntilIdle(int64_t max_ticks = 100000000);
  // Waits for the effects in flight to end and records their outcomes; submits nothing new.
  // A worker that is asked to stop calls it, so that no effect it performed is left for an
  // operator to judge.
  Status Drain();
  // Effects submitted and not yet recorded.
  int InFlight() const;
  // Sleeps `us` microseconds, less if an effect in flight ends meanwhile. With nothing in
  // flight it is the Env's clock that sleeps (a simulated clock advances).
  void Sleep(int64_t us);
  // Returns once every round this engine committed is durable. DataLoss if the fsync
  // failed (the workspace then refuses writes until reopened).
  Status WaitDurable();
  // Wall time at which something is next due, or a lease of an effect in flight must be
  // renewed (store::kNeverUs if nothing).
  Result<int64_t> NextWakeUs();
  // What remains scheduled after now: runs waiting for a retry, a timer, an event timeout,
  // an approval reminder or deadline, a lease to end; cron schedules; and runs due now.
  // So a worker that stops when idle can say what it leaves behind. Reads only: a range of
  // the runs' due-time index (runs waiting for a person or an event without timeout are
  // not read) and the schedules.
  Result<UpcomingWork> Upcoming();
  // Registers/updates the cron schedules of the workflows under workflows/.
  Status SyncSchedules();

  // --- operator ---
  // Stores the event (deduplicated by id) and completes the wait_event step of every run
  // waiting for (type, key). Runs that reach such a step later take it then (docs/workflows.md
  // "Events"). InvalidArgument: empty type.
  Result<EventResult> SendEvent(const std::string& type, const std::string& key,
                                const std::string& id, const nlohmann::json& data);
  // Deletes events older than the retention (one `event.purged` ledger entry); returns how
  // many. Costs one read and no transaction when nothing expired.
  Result<int64_t> PurgeExpiredEvents();
  // Approves (edit may be null) or rejects an operator item. For an uncertain action,
  // approve = "it happened" (the step completes), reject = "it did not" (the step fails).
  // For needs_human, approve = try again, reject = fail. FailedPrecondition if decided.
  // An edit is taken only by an approval gate whose step declares `edit:`; it replaces that
  // value for the later steps (docs/workflows.md, "Editing at an approval"), and the
  // approval.decided entry records it. Refused, with nothing written: an edit with a
  // rejection (InvalidArgument); an edit for an uncertain or needs_human item, a gate that
  // declares no editable value, or one whose value does not exist in the run
  // (FailedPrecondition); an edit that breaks the rule of flow/edit.h (InvalidArgument).
  Status Decide(const std::string& approval_id, bool approve, const nlohmann::json* edit,
                const std::string& reason, const std::string& actor = "operator");
  // Cancels a running or waiting run (and the child runs it started): pending gates and
  // needs-human items are canceled, scheduled action retries are dropped, an attempt in
  // flight becomes an uncertain operator item, the wait ends. If completed steps named
  // compensations, they run in reverse order (the run stays `running` until then) and the
  // run ends `canceled`; a compensation that fails ends it `failed` (`keel run retry` resumes
  // the saga). NotFound: no such run. FailedPrecondition: the run is completed, failed,
  // canceled, already being canceled, or compensating after a failure.
  Status Cancel(const std::string& run_id, const std::string& actor = "operator",
                CancelResult* result = nullptr);
  // Resumes a failed run at its failed step; steps journaled before it do not run again.
  Status Retry(const std::string& run_id, const std::string& actor = "operator");
  // scope: global | workflow | agent | adapter (name empty for global). Pausing again what
  // is paused is a no-op but still a ledger entry. Errors: InvalidArgument for a bad scope
  // or name; NotFound for an adapter or agent not registered, or a workflow neither in the
  // workflows folder nor ever run (a typo must not pause nothing).
  Status Pause(const std::string& scope, const std::string& name,
               const std::string& actor = "operator");
  // InvalidArgument for a bad scope or name (as Pause); FailedPrecondition if (scope, name)
  // is not paused, and the message lists what is.
  Status Resume(const std::string& scope, const std::string& name,
                const std::string& actor = "operator");

  const std::string& worker_id() const { return opts_.worker_id; }
  store::Workspace* workspace() { return ws_; }

 private:
  // OK if Pause(scope, name) names something that exists; see Pause.
  Status CheckPauseTarget(const std::string& scope, const std::string& name);
  struct Impl;
  std::unique_ptr<Impl> impl_;
  store::Workspace* ws_;
  Registry reg_;
  EngineOptions opts_;
};

// True if the run was canceled and its compensations are still running (it ends
// `canceled`). Views show it (app/views.h); the state is the engine's own encoding.
bool RunIsCanceling(const store::RunRow& r);

// The idempotency token of an action: derived from (run, step key) only, so every attempt of
// the same step carries the same token.
std::string ActionToken(const std::string& run_id, const std::string& step_key);

// Backoff before attempt `attempt + 1` after `attempt` failed attempts: exponential from the
// policy's initial delay, jittered by +-jitter using `random`, capped at max_us.
int64_t BackoffUs(const RetryPolicy& p, int attempt, Random* random);

}  // namespace keel::flow
