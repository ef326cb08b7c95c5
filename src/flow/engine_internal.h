// The engine's internals, shared by the files that implement flow/engine.h, one job each:
//   engine.cc           the Engine: workflows, starting runs, the worker round (Tick) and
//                       its loop, durability
//   engine_state.cc     a run's state and its transitions (complete, wait, fail, finish),
//                       the journal and ledger entries, the typed store rows
//   engine_steps.cc     the step interpreter: advances a run by one step (phase A)
//   engine_effects.cc   effects: claims and outbox rows, submission to the executor,
//                       leases, and the recording of outcomes (phases B and C)
//   engine_saga.cc      compensations and Cancel
//   engine_timers.cc    deadlines of waiting runs (Due), cron schedules, Upcoming
//   engine_events.cc    events: SendEvent, buffered events, their purge
//   engine_operator.cc  operator decisions and switches: Decide, Retry, Pause, Resume
// Included only by those files (src/flow/engine*.cc), never outside src/flow.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/status.h"
#include "flow/cron.h"
#include "flow/engine.h"
#include "flow/states.h"
#include "flow/workflow.h"
#include "store/runs.h"
#include "store/workspace.h"

namespace keel::flow {

using nlohmann::json;

// The in-memory form of runs.state.
struct Frame {
  int head = 0;
  json items;
  int64_t i = 0;
  std::string as;
};

struct State {
  int pc = 0;
  std::vector<Frame> loops;
  json steps = json::object();
  json vars = json::object();
  int attempt = 0;            // attempts made of the current step
  int64_t seq = 0;            // journal order
  json comp = json::array();  // [{key, name}] of completed steps with a compensation
  bool compensating = false;
  int64_t ci = 0;
  std::string failure;
  json subflows = json::object();
  std::string waiting;  // step key the run waits on
  std::string cancel;   // who canceled the run: its saga ends `canceled`, not `failed`

  // DataLoss if the text is not a run state.
  static Result<State> Parse(const std::string& text);
  std::string Dump() const;
};

// The key of a step instance: its id, plus the loop indexes ("send#2").
std::string KeyFor(const Step& s, const State& st);

// Output kept in a ledger payload only while it is small; the journal always has it.
nlohmann::json LedgerOutput(const std::string& canonical);

// The stored rows the engine reads and writes, with their states as enums (flow/states.h).
// The enum members hide the rows' words on purpose, so that engine code cannot compare or
// assign a word. From() reads the words (DataLoss for one this build does not know);
// Stored() writes the enums back as words and returns the row for the store. Only the
// Load*/Add*/Write* functions below hand these rows to the store.
struct Run : store::RunRow {
  RunStatus status = RunStatus::kRunning;
  WaitKind wait_kind = WaitKind::kNone;

  static Result<Run> From(store::RunRow row);
  store::RunRow& Stored() {
    store::RunRow& row = *this;
    row.status = Word(status);
    row.wait_kind = Word(wait_kind);
    return row;
  }
};

struct Outbox : store::OutboxRow {
  OutboxState state = OutboxState::kPending;

  static Result<Outbox> From(store::OutboxRow row);
  store::OutboxRow& Stored() {
    store::OutboxRow& row = *this;
    row.state = Word(state);
    return row;
  }
};

// An operator item (store: approvals).
struct Item : store::ApprovalRow {
  ItemKind kind = ItemKind::kApproval;
  ItemStatus status = ItemStatus::kPending;

  static Result<Item> From(store::ApprovalRow row);
  store::ApprovalRow& Stored() {
    store::ApprovalRow& row = *this;
    row.kind = Word(kind);
    row.status = Word(status);
    return row;
  }
};

Result<std::optional<Run>> LoadRun(store::Workspace& ws, const std::string& id);
Status AddRun(store::Txn& txn, Run& r);
// `before`: the run as loaded, so that only the columns that changed are written.
Status WriteRun(store::Txn& txn, Run& r, const Run* before = nullptr);

Result<std::optional<Outbox>> LoadOutbox(store::Workspace& ws, const std::string& token);
Result<std::vector<Outbox>> LoadOutboxOf(store::Workspace& ws, const std::string& run_id);
Status AddOutbox(store::Txn& txn, Outbox& ob);
Status WriteOutbox(store::Txn& txn, Outbox& ob);

Result<std::optional<Item>> LoadItem(store::Workspace& ws, const std::string& id);
Result<std::optional<Item>> FindItem(store::Workspace& ws, const std::string& run_id,
                                     const std::string& step_key, ItemKind kind);
Result<std::vector<Item>> PendingItemsOf(store::Workspace& ws, const std::string& run_id);
Status AddItem(store::Txn& txn, Item& a);
Status WriteItem(store::Txn& txn, Item& a);

// The pause switches in force: (scope, name), name empty for global.
using Pauses = std::set<std::pair<std::string, std::string>>;

struct Engine::Impl {
  Engine* e;
  std::mutex cache_mu;
  // Time zones of cron schedules, read through the workspace's FileSystem (set by Engine).
  std::unique_ptr<ZoneDb> zones;
  std::map<std::string, std::shared_ptr<const Workflow>> by_version;
  std::string epoch;
  int64_t offset0 = 0;  // wall - mono at start, to notice the wall clock going back
  // The last round advanced something: the next one very likely has work too, so it skips
  // the read-only "anything due?" look that keeps an idle worker from taking the write
  // lock.
  bool busy = false;
  // The parsed state of the runs the last round advanced, with the text it was written as:
  // a run advancing round after round is not parsed again while its stored text is the
  // same. Keyed by the text itself, so it is never stale (Tick only).
  std::unordered_map<std::string, std::pair<std::string, State>> parsed;

  // Work collected in phase A and carried out after its commit.
  struct Io {
    std::string run_id, key, token, lane;
    const Step* step = nullptr;
    bool is_action = false;
    bool compensation = false;
    json input;
    int attempt = 1;
    int pc = 0;
    int64_t lease_until = 0;
  };

  // An effect submitted to the executor: its claim, and once performed its outcome.
  struct Effect {
    Io io;
    std::string lane;
    int64_t lease_until = 0;
    std::atomic<bool> lost{false};  // the lease was taken over: do not start it
    bool performed = false;         // written by the executor thread before it queues `done`
    Outcome oc;
    json out;
  };
  // Shared with the executor's functions, which may outlive a round (and are waited for by
  // ~Engine): the effects performed and not yet recorded.
  struct Done {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::shared_ptr<Effect>> effects;  // guarded by mu
    int outstanding = 0;                           // submitted, not yet in `effects`
    bool closing = false;                          // the engine goes: start nothing
  };
  std::shared_ptr<Done> done = std::make_shared<Done>();
  // Worker thread only: effects submitted and not yet recorded, by run id, and per lane.
  std::unordered_map<std::string, std::shared_ptr<Effect>> in_flight;
  std::map<std::string, int> lane_claims;
  bool reclaimed = false;        // leases of a previous life of this worker id made due (Tick)
  bool own_id = false;           // the worker id was given (not made up by this engine)
  bool defer_full_lanes = true;  // false with an inline executor: nothing waits for room
  int claimed_round = 0;         // effects claimed by the current round (phase A)
  std::map<std::string, int> round_lanes;  // the same per lane
  int deferred_round = 0;                  // runs the current round left waiting for room

  Clock* clock() { return e->ws_->env().clock; }
  Random* random() { return e->ws_->env().random; }

  bool Paused(const Pauses& pauses, const std::string& scope, const std::string& name) {
    return pauses.count({scope, name}) > 0;
  }

  // When the lease of an effect in flight is renewed: once half of it is gone.
  int64_t RenewAt(const Effect& fx) const { return fx.lease_until - e->opts_.lease_us / 2; }

  // --- run state and transitions (engine_state.cc)
  Result<State> ParseState(const store::RunRow& r);
  Result<std::shared_ptr<const Workflow>> Version(const std::string& hash);
  json Scope(const store::RunRow& r, const State& st);
  Status Ledger(store::Txn& txn, const std::string& kind, const std::string& run_id,
                const std::string& step, const json& payload);
  Status Journal(store::Txn& txn, const store::RunRow& r, State& st, const std::string& key,
                 const Step& s, const std::string& status, int attempts, const json& output,
                 const std::string& error);
  Status Complete(store::Txn& txn, Run& r, State& st, const Step& s, const std::string& key,
                  const json& output, int next_pc);
  void Wait(Run& r, State& st, const std::string& key, WaitKind kind, int64_t due_us);
  Status Finish(store::Txn& txn, Run& r, State& st, RunStatus status_in, const std::string& error);
  Status FailStep(store::Txn& txn, Run& r, State& st, const Workflow& wf, const Step& s,
                  const std::string& key, const std::string& error);
  std::shared_ptr<const Workflow> CurrentWf(const store::RunRow& r);
  Result<Run> StartRun(store::Txn& txn, const Workflow& wf, const json& input,
                       const std::string& parent, const std::string& parent_step);

  // --- the step interpreter, phase A (engine_steps.cc)
  Result<bool> Advance(store::Txn& txn, Run& r, State& st, const Workflow& wf, const Pauses& pauses,
                       std::vector<Io>* io, bool* outbox_written);
  Result<bool> Park(store::Txn& txn, Run& r, State& st, const std::string& why);
  Result<bool> RunStep(store::Txn& txn, Run& r, State& st, const Workflow& wf, const Step& s,
                       const std::string& key, int pc, const Pauses& pauses, std::vector<Io>* io,
                       bool* outbox_written, bool compensation);
  Result<bool> ApprovalStep(store::Txn& txn, Run& r, State& st, const Workflow& wf, const Step& s,
                            const std::string& key, const Op& op, const json& scope);

  // --- effects and the outbox, phases B and C (engine_effects.cc)
  bool HasRoom(const std::string& lane);
  Result<bool> StartIo(store::Txn& txn, Run& r, State& st, const Step& s, const std::string& key,
                       int pc, const json& scope, const Pauses& pauses, std::vector<Io>* io,
                       bool* outbox_written, bool compensation);
  static std::string UncertainContext(const Outbox& ob, const std::string& run_id,
                                      const std::string& why);
  Status MarkUncertain(store::Txn& txn, Run& r, State& st, Outbox ob, const std::string& why);
  Result<bool> FinishIoOk(store::Txn& txn, Run& r, State& st, const Step& s, const std::string& key,
                          int pc, bool compensation, const json& out);
  Status SubmitAll(std::vector<Io>* io);
  void Forget(const Effect& fx);
  void Submit(const std::shared_ptr<Effect>& fx);
  Status RecordDone(TickStats* stats);
  Status RenewLeases();
  Status ReclaimOwnLeases();
  Status Record(store::Txn& txn, const Io& it, const Outcome& oc, const json& out);

  // --- the saga and cancel (engine_saga.cc)
  Status CompleteCompensation(store::Txn& txn, Run& r, State& st, const Step& s,
                              const std::string& key, const json& output);
  Status SurfaceCanceledAttempt(store::Txn& txn, const store::RunRow& r, Outbox ob,
                                const std::string& actor);
  Status CancelInTxn(store::Txn& txn, const std::string& run_id, const std::string& actor,
                     CancelResult* res, int depth);
  Status RetryCancelSaga(store::Txn& txn, Run& r, State& st, const std::string& actor);

  // --- deadlines and schedules (engine_timers.cc)
  Result<bool> Due(store::Txn& txn, Run& r, State& st, const Workflow& wf, bool* fired);
  Status FireSchedules(store::Txn& txn, const Pauses& pauses, int64_t now, TickStats* stats);

  // --- events (engine_events.cc)
  Result<bool> TakeBufferedEvent(store::Txn& txn, Run& r, State& st, const Step& s,
                                 const std::string& key, const std::string& event_key, int next);

  // --- operator decisions (engine_operator.cc)
  Status CheckDecisionEdit(const Item& a, bool approve, const json& edit, std::string* target);

  // Last, so it goes first: a pool joins its threads before the state they report to.
  std::shared_ptr<EffectExecutor> executor;
  bool owns_executor = false;
};

}  // namespace keel::flow
