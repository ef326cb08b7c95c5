#include "flow/engine.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <unordered_map>

#include "core/crash_point.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/json.h"
#include "flow/cron.h"
#include "flow/edit.h"
#include "flow/expr.h"
#include "flow/states.h"
#include "store/leases.h"
#include "store/run_events.h"
#include "store/runs.h"

namespace keel::flow {

using nlohmann::json;
using store::kNeverUs;

std::string ActionToken(const std::string& run_id, const std::string& step_key) {
  return "kt_" + Sha256Hex("keel.action\n" + run_id + "\n" + step_key).substr(0, 40);
}

int64_t BackoffUs(const RetryPolicy& p, int attempt, Random* random) {
  double d = static_cast<double>(p.initial_us) * std::pow(p.multiplier, std::max(0, attempt - 1));
  d = std::min(d, static_cast<double>(p.max_us));
  if (p.jitter > 0 && random != nullptr) d *= 1.0 + p.jitter * (2.0 * random->NextDouble() - 1.0);
  d = std::min(d, static_cast<double>(p.max_us));
  return std::max<int64_t>(0, static_cast<int64_t>(d));
}

namespace {

constexpr char kActor[] = "flow";
// How long a run that stays due keeps its place in the queue before going to the back
// (Impl::Complete).
constexpr int64_t kRequeueUs = 50000;

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

  static Result<State> Parse(const std::string& text) {
    KEEL_ASSIGN_OR_RETURN(json j, ParseJson(text, "run state"));
    State s;
    try {
      s.pc = j.value("pc", 0);
      for (const auto& f : j.value("loops", json::array())) {
        s.loops.push_back(Frame{f.at("head").get<int>(), f.at("items"), f.at("i").get<int64_t>(),
                                f.at("as").get<std::string>()});
      }
      if (j.contains("steps")) s.steps = j["steps"];
      if (j.contains("vars")) s.vars = j["vars"];
      s.attempt = j.value("attempt", 0);
      s.seq = j.value("seq", int64_t{0});
      if (j.contains("comp")) s.comp = j["comp"];
      s.compensating = j.value("compensating", false);
      s.ci = j.value("ci", int64_t{0});
      s.failure = j.value("failure", std::string());
      if (j.contains("subflows")) s.subflows = j["subflows"];
      s.waiting = j.value("waiting", std::string());
      s.cancel = j.value("cancel", std::string());
    } catch (const std::exception& e) {
      return DataLoss(std::string("run state is damaged: ") + e.what());
    }
    return s;
  }
  std::string Dump() const {
    json j = {{"pc", pc}, {"steps", steps}, {"vars", vars}, {"seq", seq}};
    if (!loops.empty()) {
      json l = json::array();
      for (const auto& f : loops)
        l.push_back({{"head", f.head}, {"items", f.items}, {"i", f.i}, {"as", f.as}});
      j["loops"] = std::move(l);
    }
    if (attempt) j["attempt"] = attempt;
    if (!comp.empty()) j["comp"] = comp;
    if (compensating) {
      j["compensating"] = true;
      j["ci"] = ci;
    }
    if (!failure.empty()) j["failure"] = failure;
    if (!subflows.empty()) j["subflows"] = subflows;
    if (!waiting.empty()) j["waiting"] = waiting;
    if (!cancel.empty()) j["cancel"] = cancel;
    return CanonicalJson(j);
  }
};

std::string KeyFor(const Step& s, const State& st) {
  if (st.loops.empty()) return s.id;
  std::string k = s.id + "#";
  for (size_t i = 0; i < st.loops.size(); ++i) {
    if (i) k += ".";
    k += std::to_string(st.loops[i].i);
  }
  return k;
}

std::string Payload(const json& j) {
  return CanonicalJson(j);
}

// Output kept in a ledger payload only while it is small; the journal always has it.
json LedgerOutput(const std::string& canonical) {
  if (canonical.size() <= 2048) {
    auto p = ParseJson(canonical, "output");
    if (p.ok()) return *p;
  }
  return json{{"sha256", Sha256Hex(canonical)}, {"bytes", canonical.size()}};
}

// The stored rows the engine reads and writes, with their states as enums (flow/states.h).
// The enum members hide the rows' words on purpose, so that engine code cannot compare or
// assign a word. From() reads the words (DataLoss for one this build does not know);
// Stored() writes the enums back as words and returns the row for the store. Only the
// Load*/Add*/Write* functions below hand these rows to the store.
struct Run : store::RunRow {
  RunStatus status = RunStatus::kRunning;
  WaitKind wait_kind = WaitKind::kNone;

  static Result<Run> From(store::RunRow row) {
    auto status = ParseRunStatus(row.status);
    if (!status.ok()) return status.status().WithContext("run " + row.id);
    auto wait = ParseWaitKind(row.wait_kind);
    if (!wait.ok()) return wait.status().WithContext("run " + row.id);
    Run r;
    static_cast<store::RunRow&>(r) = std::move(row);
    r.status = *status;
    r.wait_kind = *wait;
    return r;
  }
  store::RunRow& Stored() {
    store::RunRow& row = *this;
    row.status = Word(status);
    row.wait_kind = Word(wait_kind);
    return row;
  }
};

struct Outbox : store::OutboxRow {
  OutboxState state = OutboxState::kPending;

  static Result<Outbox> From(store::OutboxRow row) {
    auto state = ParseOutboxState(row.state);
    if (!state.ok()) return state.status().WithContext("outbox row " + row.token);
    Outbox ob;
    static_cast<store::OutboxRow&>(ob) = std::move(row);
    ob.state = *state;
    return ob;
  }
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

  static Result<Item> From(store::ApprovalRow row) {
    auto kind = ParseItemKind(row.kind);
    if (!kind.ok()) return kind.status().WithContext("operator item " + row.id);
    auto status = ParseItemStatus(row.status);
    if (!status.ok()) return status.status().WithContext("operator item " + row.id);
    Item a;
    static_cast<store::ApprovalRow&>(a) = std::move(row);
    a.kind = *kind;
    a.status = *status;
    return a;
  }
  store::ApprovalRow& Stored() {
    store::ApprovalRow& row = *this;
    row.kind = Word(kind);
    row.status = Word(status);
    return row;
  }
};

template <class T, class Row>
Result<std::optional<T>> Typed(Result<std::optional<Row>> row) {
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<T>();
  KEEL_ASSIGN_OR_RETURN(T t, T::From(std::move(**row)));
  return std::optional<T>(std::move(t));
}

template <class T, class Row>
Result<std::vector<T>> Typed(Result<std::vector<Row>> rows) {
  if (!rows.ok()) return rows.status();
  std::vector<T> out;
  out.reserve(rows->size());
  for (auto& row : *rows) {
    KEEL_ASSIGN_OR_RETURN(T t, T::From(std::move(row)));
    out.push_back(std::move(t));
  }
  return out;
}

Result<std::optional<Run>> LoadRun(store::Workspace& ws, const std::string& id) {
  return Typed<Run>(store::GetRun(ws, id));
}
Status AddRun(store::Txn& txn, Run& r) {
  return store::InsertRun(txn, r.Stored());
}
// `before`: the run as loaded, so that only the columns that changed are written.
Status WriteRun(store::Txn& txn, Run& r, const Run* before = nullptr) {
  return store::UpdateRun(txn, r.Stored(), before);
}

Result<std::optional<Outbox>> LoadOutbox(store::Workspace& ws, const std::string& token) {
  return Typed<Outbox>(store::GetOutbox(ws, token));
}
Result<std::vector<Outbox>> LoadOutboxOf(store::Workspace& ws, const std::string& run_id) {
  return Typed<Outbox>(store::ListOutbox(ws, run_id, ""));
}
Status AddOutbox(store::Txn& txn, Outbox& ob) {
  return store::InsertOutbox(txn, ob.Stored());
}
Status WriteOutbox(store::Txn& txn, Outbox& ob) {
  return store::UpdateOutbox(txn, ob.Stored());
}

Result<std::optional<Item>> LoadItem(store::Workspace& ws, const std::string& id) {
  return Typed<Item>(store::GetApproval(ws, id));
}
Result<std::optional<Item>> FindItem(store::Workspace& ws, const std::string& run_id,
                                     const std::string& step_key, ItemKind kind) {
  return Typed<Item>(store::FindApproval(ws, run_id, step_key, std::string(Word(kind))));
}
Result<std::vector<Item>> PendingItemsOf(store::Workspace& ws, const std::string& run_id) {
  return Typed<Item>(store::ListApprovals(ws, std::string(Word(ItemStatus::kPending)), run_id));
}
Status AddItem(store::Txn& txn, Item& a) {
  return store::InsertApproval(txn, a.Stored());
}
Status WriteItem(store::Txn& txn, Item& a) {
  return store::UpdateApproval(txn, a.Stored());
}

}  // namespace

// ---------------------------------------------------------------------------------------
struct Engine::Impl {
  Engine* e;
  std::mutex cache_mu;
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
  Result<State> ParseState(const store::RunRow& r) {
    auto it = parsed.find(r.id);
    if (it != parsed.end() && it->second.first == r.state) return it->second.second;
    return State::Parse(r.state);
  }

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

  // Room for one more effect in `lane`: at most its limit running plus one batch queued.
  bool HasRoom(const std::string& lane) {
    if (!defer_full_lanes) return true;
    const EffectLimits& lim = e->opts_.effects;
    int total = static_cast<int>(in_flight.size()) + claimed_round;
    auto it = lane_claims.find(lane);
    auto rt = round_lanes.find(lane);
    int in_lane =
        (it == lane_claims.end() ? 0 : it->second) + (rt == round_lanes.end() ? 0 : rt->second);
    return in_lane < lim.LaneLimit(lane) + e->opts_.batch &&
           total < std::max(1, lim.global) + e->opts_.batch;
  }

  Clock* clock() { return e->ws_->env().clock; }
  Random* random() { return e->ws_->env().random; }

  Result<std::shared_ptr<const Workflow>> Version(const std::string& hash) {
    {
      std::lock_guard<std::mutex> l(cache_mu);
      auto it = by_version.find(hash);
      if (it != by_version.end()) return it->second;
    }
    KEEL_ASSIGN_OR_RETURN(std::string content, store::GetWorkflowVersion(*e->ws_, hash));
    KEEL_ASSIGN_OR_RETURN(auto wf,
                          ParseWorkflow(content, "workflow version " + hash.substr(0, 12)));
    std::lock_guard<std::mutex> l(cache_mu);
    by_version[hash] = wf;
    return wf;
  }

  json Scope(const store::RunRow& r, const State& st) {
    json scope = {
        {"steps", st.steps}, {"vars", st.vars}, {"run", {{"id", r.id}, {"workflow", r.workflow}}}};
    auto in = ParseJson(r.input, "run input");
    scope["input"] = in.ok() ? *in : json::object();
    for (const auto& f : st.loops) {
      scope[f.as] = f.items[static_cast<size_t>(f.i)];
      scope["loop"] = {{"index", f.i}};
    }
    return scope;
  }

  bool Paused(const std::set<std::pair<std::string, std::string>>& pauses, const std::string& scope,
              const std::string& name) {
    return pauses.count({scope, name}) > 0;
  }

  Status Ledger(store::Txn& txn, const std::string& kind, const std::string& run_id,
                const std::string& step, const json& payload) {
    store::NewEntry en;
    en.actor = kActor;
    en.kind = kind;
    en.subject = run_id;
    en.run_id = run_id;
    en.step_id = step;
    en.payload = Payload(payload);
    return txn.Append(en).status();
  }

  Status Journal(store::Txn& txn, const store::RunRow& r, State& st, const std::string& key,
                 const Step& s, const std::string& status, int attempts, const json& output,
                 const std::string& error) {
    store::JournalRow j;
    j.run_id = r.id;
    j.step_key = key;
    j.step_id = s.id;
    j.kind = std::string(StepKindName(s.kind));
    j.status = status;
    j.attempts = attempts;
    j.output = CanonicalJson(output);
    j.error = error;
    j.finished_us = txn.now_us();
    j.seq = ++st.seq;
    KEEL_RETURN_IF_ERROR(store::PutJournal(txn, j));
    json p = {{"key", key}, {"kind", j.kind}, {"attempt", attempts}};
    if (!output.is_null()) p["output"] = LedgerOutput(j.output);
    if (!error.empty()) p["error"] = error;
    return Ledger(txn, status == "completed" ? "step.completed" : "step." + status, r.id, key, p);
  }

  // Completes the step at st.pc with `output` and moves to `next_pc`.
  Status Complete(store::Txn& txn, Run& r, State& st, const Step& s, const std::string& key,
                  const json& output, int next_pc) {
    int attempts = std::max(1, st.attempt);
    KEEL_RETURN_IF_ERROR(Journal(txn, r, st, key, s, "completed", attempts, output, ""));
    if (!output.is_null()) st.steps[s.id] = output;
    if (!s.compensate.empty() && !st.compensating)
      st.comp.push_back({{"key", key}, {"name", s.compensate}});
    st.attempt = 0;
    st.waiting.clear();
    st.pc = next_pc;
    r.status = RunStatus::kRunning;
    r.wait_kind = WaitKind::kNone;
    r.wait_type.clear();
    r.wait_key.clear();
    // Due again at once. A run already due a moment ago keeps its place in the queue
    // (ordered by due_us): the due-time index is then not rewritten on every step of a
    // run making progress, and after kRequeueUs it goes to the back, so runs beyond one
    // batch still get their turn.
    int64_t now = txn.now_us();
    if (r.due_us > now || r.due_us < now - kRequeueUs) r.due_us = now;
    r.mono_due_us = 0;
    r.lease_owner.clear();
    r.lease_until_us = 0;
    return OkStatus();
  }

  // A compensation of the saga completed: journaled, and the saga moves to the next one.
  Status CompleteCompensation(store::Txn& txn, Run& r, State& st, const Step& s,
                              const std::string& key, const json& output) {
    KEEL_RETURN_IF_ERROR(
        Journal(txn, r, st, key, s, "completed", std::max(1, st.attempt), output, ""));
    ++st.ci;
    st.attempt = 0;
    r.status = RunStatus::kRunning;
    r.wait_kind = WaitKind::kNone;
    r.due_us = txn.now_us();
    r.lease_owner.clear();
    r.lease_until_us = 0;
    return OkStatus();
  }

  void Wait(Run& r, State& st, const std::string& key, WaitKind kind, int64_t due_us) {
    r.status = RunStatus::kWaiting;
    r.wait_kind = kind;
    r.due_us = due_us;
    r.lease_owner.clear();
    r.lease_until_us = 0;
    st.waiting = key;
  }

  // Ends the run (completed / failed / canceled) and wakes a parent waiting for it.
  Status Finish(store::Txn& txn, Run& r, State& st, RunStatus status_in, const std::string& error) {
    // The saga of a canceled run ends `canceled` once every compensation is done (Advance
    // finishes a saga as `failed`); a compensation that fails leaves the run `failed`
    // (FailStep clears `compensating` first), so the operator sees it.
    const RunStatus status =
        status_in == RunStatus::kFailed && st.compensating && !st.cancel.empty()
            ? RunStatus::kCanceled
            : status_in;
    const std::string word(Word(status));
    r.status = status;
    r.wait_kind = WaitKind::kNone;
    r.wait_type.clear();
    r.wait_key.clear();
    r.due_us = kNeverUs;
    r.lease_owner.clear();
    r.lease_until_us = 0;
    r.error = error;
    if (status == RunStatus::kCompleted) r.output = CanonicalJson(st.vars);
    json p = {{"status", word}};
    if (!error.empty()) p["error"] = error;
    KEEL_RETURN_IF_ERROR(Ledger(txn, "run." + word, r.id, "", p));
    if (!r.parent_run.empty()) {
      KEEL_ASSIGN_OR_RETURN(auto parent, LoadRun(*e->ws_, r.parent_run));
      if (parent && parent->status == RunStatus::kWaiting &&
          parent->wait_kind == WaitKind::kChild) {
        KEEL_ASSIGN_OR_RETURN(State pst, State::Parse(parent->state));
        KEEL_ASSIGN_OR_RETURN(auto pwf, Version(parent->version));
        const Op& op = pwf->program[static_cast<size_t>(pst.pc)];
        if (op.step && KeyFor(*op.step, pst) == r.parent_step) {
          if (status == RunStatus::kCompleted) {
            auto out = ParseJson(r.output, "child output");
            KEEL_RETURN_IF_ERROR(Complete(txn, *parent, pst, *op.step, r.parent_step,
                                          json{{"run", r.id}, {"output", out.ok() ? *out : json()}},
                                          op.next));
          } else {
            KEEL_RETURN_IF_ERROR(
                FailStep(txn, *parent, pst, *pwf, *op.step, r.parent_step,
                         "subflow run " + r.id + " " + word + (error.empty() ? "" : ": " + error)));
          }
          parent->state = pst.Dump();
          KEEL_RETURN_IF_ERROR(WriteRun(txn, *parent));
        }
      }
    }
    return OkStatus();
  }

  // The step failed for good: compensate what was done, then fail the run.
  Status FailStep(store::Txn& txn, Run& r, State& st, const Workflow& wf, const Step& s,
                  const std::string& key, const std::string& error) {
    KEEL_RETURN_IF_ERROR(
        Journal(txn, r, st, key, s, "failed", std::max(1, st.attempt), json(), error));
    st.attempt = 0;
    st.waiting.clear();
    if (st.compensating) {
      // A compensation failed: stop compensating; the operator takes over.
      st.compensating = false;
      return Finish(txn, r, st, RunStatus::kFailed,
                    st.failure + "; compensation " + key + " failed: " + error);
    }
    st.failure = "step " + key + " failed: " + error;
    if (!st.comp.empty() && !wf.compensations.empty()) {
      st.compensating = true;
      st.ci = 0;
      r.status = RunStatus::kRunning;
      r.wait_kind = WaitKind::kNone;
      r.due_us = txn.now_us();
      r.lease_owner.clear();
      r.lease_until_us = 0;
      return Ledger(txn, "run.compensating", r.id, key,
                    {{"error", error}, {"compensations", st.comp.size()}});
    }
    return Finish(txn, r, st, RunStatus::kFailed, st.failure);
  }

  // ---- phase A: advance one run by one step ----------------------------------------
  // Returns true if a step was completed, started or a wait began.
  Result<bool> Advance(store::Txn& txn, Run& r, State& st, const Workflow& wf,
                       const std::set<std::pair<std::string, std::string>>& pauses,
                       std::vector<Io>* io, bool* outbox_written) {
    if (Paused(pauses, "workflow", r.workflow)) return Park(txn, r, st, "workflow " + r.workflow);
    if (st.compensating) {
      if (st.ci >= static_cast<int64_t>(st.comp.size())) {
        KEEL_RETURN_IF_ERROR(Finish(txn, r, st, RunStatus::kFailed, st.failure));
        return true;
      }
      const json& c = st.comp[st.comp.size() - 1 - static_cast<size_t>(st.ci)];
      const Step* cs = wf.FindCompensation(c["name"].get<std::string>());
      if (cs == nullptr)
        return DataLoss("compensation " + c["name"].get<std::string>() + " vanished");
      std::string key = "comp:" + c["key"].get<std::string>();
      return RunStep(txn, r, st, wf, *cs, key, -1, pauses, io, outbox_written, true);
    }
    for (int guard = 0; guard < 100000; ++guard) {
      if (st.pc < 0 || st.pc >= static_cast<int>(wf.program.size())) {
        return DataLoss("run " + r.id + " points outside its program");
      }
      const Op& op = wf.program[static_cast<size_t>(st.pc)];
      switch (op.type) {
        case Op::kEnd:
          KEEL_RETURN_IF_ERROR(Finish(txn, r, st, RunStatus::kCompleted, ""));
          return true;
        case Op::kJump:
          st.pc = op.next;
          continue;
        case Op::kLoopNext: {
          if (st.loops.empty()) return DataLoss("run " + r.id + ": loop frame missing");
          Frame& f = st.loops.back();
          ++f.i;
          if (f.i < static_cast<int64_t>(f.items.size())) {
            st.pc = f.head + 1;
          } else {
            st.loops.pop_back();
            st.pc = st.pc + 1;
          }
          continue;
        }
        case Op::kStep: {
          KEEL_ASSIGN_OR_RETURN(bool moved, RunStep(txn, r, st, wf, *op.step, KeyFor(*op.step, st),
                                                    st.pc, pauses, io, outbox_written, false));
          // A run whose last step just completed ends in the same transaction: ending is
          // not a step, and a round of its own would cost every run one more commit.
          if (moved && r.status == RunStatus::kRunning && !st.compensating && st.pc >= 0 &&
              st.pc < static_cast<int>(wf.program.size()) &&
              wf.program[static_cast<size_t>(st.pc)].type == Op::kEnd) {
            KEEL_RETURN_IF_ERROR(Finish(txn, r, st, RunStatus::kCompleted, ""));
          }
          return moved;
        }
      }
    }
    return Internal("run " + r.id + ": too many jumps without a step");
  }

  Result<bool> Park(store::Txn& txn, Run& r, State& st, const std::string& why) {
    Wait(r, st, st.waiting, WaitKind::kPaused, kNeverUs);
    KEEL_RETURN_IF_ERROR(Ledger(txn, "run.parked", r.id, "", {{"paused", why}}));
    return true;
  }

  // Executes (or starts) one step. pc < 0 for a compensation.
  Result<bool> RunStep(store::Txn& txn, Run& r, State& st, const Workflow& wf, const Step& s,
                       const std::string& key, int pc,
                       const std::set<std::pair<std::string, std::string>>& pauses,
                       std::vector<Io>* io, bool* outbox_written, bool compensation) {
    const Op* op = pc >= 0 ? &wf.program[static_cast<size_t>(pc)] : nullptr;
    int next = op ? op->next : -1;
    auto done = [&](const json& out, int to) -> Result<bool> {
      KEEL_RETURN_IF_ERROR(compensation ? CompleteCompensation(txn, r, st, s, key, out)
                                        : Complete(txn, r, st, s, key, out, to));
      return true;
    };
    // A step journaled as completed is never executed again: reuse its output.
    KEEL_ASSIGN_OR_RETURN(auto prior, store::GetJournal(*e->ws_, r.id, key));
    if (prior && prior->status == "completed") {
      auto out = ParseJson(prior->output, "journaled output");
      if (compensation) {
        ++st.ci;
        return true;
      }
      if (out.ok() && !out->is_null()) st.steps[s.id] = *out;
      st.pc = next;
      st.attempt = 0;
      return true;
    }
    // The scope costs a copy of the run's data: only steps that read it build it.
    json scope;
    if (s.kind != StepKind::kNoop && s.kind != StepKind::kFail) scope = Scope(r, st);
    auto fail = [&](const std::string& msg) -> Result<bool> {
      KEEL_RETURN_IF_ERROR(FailStep(txn, r, st, wf, s, key, msg));
      return true;
    };
    switch (s.kind) {
      case StepKind::kNoop:
        return done(json(), next);
      case StepKind::kSet: {
        auto v = RenderTemplate(*s.params, scope);
        if (!v.ok()) return fail(v.status().message());
        for (auto it = v->begin(); it != v->end(); ++it) st.vars[it.key()] = it.value();
        return done(*v, next);
      }
      case StepKind::kFail:
        return fail(s.message);
      case StepKind::kBranch: {
        auto c = EvalCondition(*s.condition, scope);
        if (!c.ok()) return fail(c.status().message());
        return done(json{{"branch", *c ? "then" : "else"}}, *c ? next : op->alt);
      }
      case StepKind::kForeach: {
        auto v = EvalExpr(*s.condition, scope);
        if (!v.ok()) return fail(v.status().message());
        if (!v->is_array()) return fail("foreach: the expression did not give a list");
        size_t n = v->size();
        KEEL_RETURN_IF_ERROR(done(json{{"count", n}}, n == 0 ? op->alt : next).status());
        if (n > 0) st.loops.push_back(Frame{pc, *v, 0, s.as});
        return true;
      }
      case StepKind::kWait: {
        if (st.waiting == key) return false;  // already waiting (handled by Due)
        int64_t now = clock()->NowMicros();
        if (s.until) {
          auto v = RenderTemplate(*s.until, scope);
          int64_t at = 0;
          if (!v.ok() || !v->is_string() || !ParseTimeMicros(v->get<std::string>(), &at)) {
            return fail("until: not an RFC 3339 time");
          }
          Wait(r, st, key, WaitKind::kTimer, at);
          r.mono_due_us = 0;
          r.epoch.clear();
        } else {
          Wait(r, st, key, WaitKind::kTimer, now + s.duration_us);
          r.mono_due_us = clock()->MonotonicMicros() + s.duration_us;
          r.epoch = epoch;
        }
        KEEL_RETURN_IF_ERROR(
            Ledger(txn, "timer.set", r.id, key, {{"due", FormatTimeMicros(r.due_us)}}));
        return true;
      }
      case StepKind::kWaitEvent: {
        auto k = RenderTemplate(*s.event_key, scope);
        if (!k.ok()) return fail(k.status().message());
        if (!compensation) {
          KEEL_ASSIGN_OR_RETURN(
              bool taken,
              TakeBufferedEvent(txn, r, st, s, key,
                                k->is_string() ? k->get<std::string>() : k->dump(), next));
          if (taken) return true;
        }
        Wait(r, st, key, WaitKind::kEvent, s.timeout_us ? txn.now_us() + s.timeout_us : kNeverUs);
        r.mono_due_us = s.timeout_us ? clock()->MonotonicMicros() + s.timeout_us : 0;
        r.epoch = epoch;
        r.wait_type = s.event_type;
        r.wait_key = k->is_string() ? k->get<std::string>() : k->dump();
        KEEL_RETURN_IF_ERROR(
            Ledger(txn, "event.waiting", r.id, key, {{"type", r.wait_type}, {"key", r.wait_key}}));
        return true;
      }
      case StepKind::kApproval:
        return ApprovalStep(txn, r, st, wf, s, key, *op, scope);
      case StepKind::kSubflow: {
        if (st.waiting == key) return false;
        std::string ver = st.subflows.value(s.subflow, std::string());
        if (ver.empty()) return fail("subflow " + s.subflow + " was not pinned at start");
        KEEL_ASSIGN_OR_RETURN(auto cwf, Version(ver));
        auto in = s.params ? RenderTemplate(*s.params, scope) : Result<json>(json::object());
        if (!in.ok()) return fail(in.status().message());
        auto child = StartRun(txn, *cwf, *in, r.id, key);
        if (!child.ok()) return fail(child.status().message());
        Wait(r, st, key, WaitKind::kChild, kNeverUs);
        return true;
      }
      case StepKind::kAgent:
      case StepKind::kAction:
        return StartIo(txn, r, st, s, key, pc, scope, pauses, io, outbox_written, compensation);
    }
    return Internal("unknown step kind");
  }

  Result<bool> ApprovalStep(store::Txn& txn, Run& r, State& st, const Workflow& wf, const Step& s,
                            const std::string& key, const Op& op, const json& scope) {
    KEEL_ASSIGN_OR_RETURN(auto a, FindItem(*e->ws_, r.id, key, ItemKind::kApproval));
    if (!a) {
      if (s.policy) {
        auto fire = EvalCondition(*s.policy, scope);
        if (!fire.ok()) {
          KEEL_RETURN_IF_ERROR(FailStep(txn, r, st, wf, s, key, fire.status().message()));
          return true;
        }
        if (!*fire) {
          KEEL_RETURN_IF_ERROR(Complete(txn, r, st, s, key,
                                        json{{"decision", "approved"}, {"by", "policy"}}, op.next));
          return true;
        }
      }
      Item row;
      row.id = NewId("apv", txn.now_us(), random());
      row.run_id = r.id;
      row.step_key = key;
      row.kind = ItemKind::kApproval;
      row.status = ItemStatus::kPending;
      auto sum = RenderTemplate(*s.summary, scope);
      row.summary = !sum.ok() ? "(summary failed: " + sum.status().message() + ")"
                              : (sum->is_string() ? sum->get<std::string>() : sum->dump());
      row.recommend = s.recommend;
      json ctx = {{"run", r.id}, {"workflow", r.workflow}, {"version", r.version}, {"step", key}};
      if (s.context) {
        auto c = RenderTemplate(*s.context, scope);
        ctx["facts"] = c.ok() ? *c : json(c.status().message());
      }
      row.context = CanonicalJson(ctx);
      row.deadline_us = s.timeout_us ? txn.now_us() + s.timeout_us : 0;
      row.remind_us = s.remind_after_us ? txn.now_us() + s.remind_after_us : 0;
      KEEL_RETURN_IF_ERROR(AddItem(txn, row));
      KEEL_RETURN_IF_ERROR(Ledger(txn, "approval.requested", r.id, key,
                                  {{"approval", row.id},
                                   {"kind", Word(row.kind)},
                                   {"summary", row.summary},
                                   {"recommend", row.recommend}}));
      int64_t due = kNeverUs;
      if (row.remind_us)
        due = row.remind_us;
      else if (row.deadline_us)
        due = row.deadline_us;
      Wait(r, st, key, WaitKind::kApproval, due);
      return true;
    }
    if (a->status == ItemStatus::kPending) {
      Wait(r, st, key, WaitKind::kApproval, r.due_us);
      return false;
    }
    json dec = json::object();
    auto d = ParseJson(a->decision, "decision");
    if (d.ok() && d->is_object()) dec = *d;
    if (a->status == ItemStatus::kApproved) {
      json out = {{"decision", "approved"}, {"by", dec.value("by", "operator")}};
      if (dec.contains("edit")) {
        out["edit"] = dec["edit"];
        // The approved edit replaces the declared value for every later step. Decide
        // checked it against this same data (the run has waited here since); an item
        // approved with an edit before steps declared `edit:` keeps only `edit` in its
        // output, as it did then.
        if (!s.edit_path.empty()) {
          Status applied = ApplyEdit(s, dec["edit"], &st.steps, &st.vars);
          if (!applied.ok()) {
            KEEL_RETURN_IF_ERROR(
                FailStep(txn, r, st, wf, s, key,
                         "the approved edit cannot be applied: " + applied.message()));
            return true;
          }
          out["edited"] = s.edit;
        }
      }
      KEEL_RETURN_IF_ERROR(Complete(txn, r, st, s, key, out, op.next));
      return true;
    }
    if (a->status == ItemStatus::kExpired) {
      KEEL_RETURN_IF_ERROR(Complete(txn, r, st, s, key, json{{"decision", "timeout"}}, op.alt));
      return true;
    }
    // rejected
    json out = {{"decision", "rejected"},
                {"by", dec.value("by", "operator")},
                {"reason", dec.value("reason", "")}};
    if (s.on_reject == "continue") {
      KEEL_RETURN_IF_ERROR(Complete(txn, r, st, s, key, out, op.next));
      return true;
    }
    KEEL_RETURN_IF_ERROR(FailStep(txn, r, st, wf, s, key, "rejected: " + dec.value("reason", "")));
    return true;
  }

  Result<bool> StartIo(store::Txn& txn, Run& r, State& st, const Step& s, const std::string& key,
                       int pc, const json& scope,
                       const std::set<std::pair<std::string, std::string>>& pauses,
                       std::vector<Io>* io, bool* outbox_written, bool compensation) {
    if (s.kind == StepKind::kAgent && Paused(pauses, "agent", s.agent))
      return Park(txn, r, st, "agent " + s.agent);
    if (s.kind == StepKind::kAction && Paused(pauses, "adapter", s.adapter))
      return Park(txn, r, st, "adapter " + s.adapter);
    // A full lane: the run stays as it is, due, and is taken again in a later round.
    std::string lane = s.kind == StepKind::kAction ? "adapter:" + s.adapter : "agent:" + s.agent;
    if (!HasRoom(lane)) {
      ++deferred_round;
      return false;
    }
    Io it;
    it.lane = lane;
    it.run_id = r.id;
    it.key = key;
    it.step = &s;
    it.pc = pc;
    it.compensation = compensation;
    it.is_action = s.kind == StepKind::kAction;
    int64_t now = txn.now_us();
    if (it.is_action) {
      auto ad = e->reg_.adapters.find(s.adapter);
      if (ad == e->reg_.adapters.end()) {
        KEEL_RETURN_IF_ERROR(
            FailStep(txn, r, st, *CurrentWf(r), s, key, "no adapter named " + s.adapter));
        return true;
      }
      it.token = ActionToken(r.id, key);
      KEEL_ASSIGN_OR_RETURN(auto ob, LoadOutbox(*e->ws_, it.token));
      if (!ob) {
        auto params = s.params ? RenderTemplate(*s.params, scope) : Result<json>(json::object());
        if (!params.ok()) {
          KEEL_RETURN_IF_ERROR(
              FailStep(txn, r, st, *CurrentWf(r), s, key, params.status().message()));
          return true;
        }
        Outbox row;
        row.token = it.token;
        row.run_id = r.id;
        row.step_key = key;
        row.adapter = s.adapter;
        row.action = s.action;
        row.params = CanonicalJson(*params);
        row.state = OutboxState::kSending;
        row.attempts = 1;
        row.honours_key = ad->second->honours_idempotency_key();
        KEEL_RETURN_IF_ERROR(AddOutbox(txn, row));
        KEEL_RETURN_IF_ERROR(Ledger(txn, "action.prepared", r.id, key,
                                    {{"token", row.token},
                                     {"adapter", row.adapter},
                                     {"action", row.action},
                                     {"params", LedgerOutput(row.params)},
                                     {"attempt", 1}}));
        *outbox_written = true;
        it.input = *params;
        it.attempt = 1;
      } else if (ob->state == OutboxState::kDone) {
        auto out = ParseJson(ob->result, "outbox result");
        st.attempt = static_cast<int>(ob->attempts);
        KEEL_ASSIGN_OR_RETURN(
            bool b, FinishIoOk(txn, r, st, s, key, pc, compensation, out.ok() ? *out : json()));
        return b;
      } else if (ob->state == OutboxState::kUncertain) {
        Wait(r, st, key, WaitKind::kUncertain, kNeverUs);
        return false;
      } else if (ob->state == OutboxState::kFailed) {
        KEEL_RETURN_IF_ERROR(FailStep(txn, r, st, *CurrentWf(r), s, key, ob->error));
        return true;
      } else {
        // pending: a retry is due. sending: an attempt started and nobody recorded its
        // outcome (the worker crashed or lost its lease): the outcome is unknown.
        if (ob->state == OutboxState::kSending && !ob->honours_key) {
          KEEL_RETURN_IF_ERROR(MarkUncertain(txn, r, st, *ob,
                                             "the worker stopped after the "
                                             "attempt started; the channel cannot deduplicate"));
          return true;
        }
        ob->attempts += 1;
        ob->state = OutboxState::kSending;
        KEEL_RETURN_IF_ERROR(WriteOutbox(txn, *ob));
        KEEL_RETURN_IF_ERROR(Ledger(txn, "action.retrying", r.id, key,
                                    {{"token", ob->token}, {"attempt", ob->attempts}}));
        *outbox_written = true;
        auto params = ParseJson(ob->params, "outbox params");
        if (!params.ok()) return params.status();
        it.input = *params;
        it.attempt = static_cast<int>(ob->attempts);
      }
      st.attempt = it.attempt;
    } else {
      if (e->reg_.agents == nullptr || !e->reg_.agents->HasAgent(s.agent)) {
        KEEL_RETURN_IF_ERROR(
            FailStep(txn, r, st, *CurrentWf(r), s, key, "no agent named " + s.agent));
        return true;
      }
      auto input = s.params ? RenderTemplate(*s.params, scope) : Result<json>(json::object());
      if (!input.ok()) {
        KEEL_RETURN_IF_ERROR(FailStep(txn, r, st, *CurrentWf(r), s, key, input.status().message()));
        return true;
      }
      it.input = *input;
      it.attempt = ++st.attempt;
      KEEL_RETURN_IF_ERROR(
          Ledger(txn, "step.started", r.id, key, {{"agent", s.agent}, {"attempt", it.attempt}}));
    }
    r.lease_owner = e->opts_.worker_id;
    r.lease_until_us = now + e->opts_.lease_us;
    // Not due while its effect is in flight: due when the lease ends, so that a worker
    // that died with it lets another take the run over (a renewal moves both).
    r.due_us = r.lease_until_us;
    it.lease_until = r.lease_until_us;
    st.waiting.clear();
    ++round_lanes[it.lane];
    ++claimed_round;
    io->push_back(std::move(it));
    return true;
  }

  std::shared_ptr<const Workflow> CurrentWf(const store::RunRow& r) {
    auto v = Version(r.version);
    return v.ok() ? *v : nullptr;
  }

  // What the operator sees of an action whose outcome is unknown: the outbox row and why.
  static std::string UncertainContext(const Outbox& ob, const std::string& run_id,
                                      const std::string& why) {
    auto params = ParseJson(ob.params, "params");
    return CanonicalJson(json{{"token", ob.token},
                              {"adapter", ob.adapter},
                              {"action", ob.action},
                              {"params", params.ok() ? *params : json(ob.params)},
                              {"attempts", ob.attempts},
                              {"evidence", why},
                              {"run", run_id},
                              {"step", ob.step_key}});
  }

  Status MarkUncertain(store::Txn& txn, Run& r, State& st, Outbox ob, const std::string& why) {
    ob.state = OutboxState::kUncertain;
    ob.error = why;
    KEEL_RETURN_IF_ERROR(WriteOutbox(txn, ob));
    Item a;
    a.id = NewId("apv", txn.now_us(), random());
    a.run_id = r.id;
    a.step_key = ob.step_key;
    a.kind = ItemKind::kUncertain;
    a.status = ItemStatus::kPending;
    a.summary = "Did " + ob.adapter + "." + ob.action + " happen? The outcome of attempt " +
                std::to_string(ob.attempts) + " is unknown: " + why;
    a.recommend = "check";
    a.context = UncertainContext(ob, r.id, why);
    KEEL_RETURN_IF_ERROR(AddItem(txn, a));
    KEEL_RETURN_IF_ERROR(Ledger(txn, "action.uncertain", r.id, ob.step_key,
                                {{"token", ob.token}, {"approval", a.id}, {"evidence", why}}));
    Wait(r, st, ob.step_key, WaitKind::kUncertain, kNeverUs);
    return OkStatus();
  }

  Result<bool> FinishIoOk(store::Txn& txn, Run& r, State& st, const Step& s, const std::string& key,
                          int pc, bool compensation, const json& out) {
    if (compensation) {
      KEEL_RETURN_IF_ERROR(CompleteCompensation(txn, r, st, s, key, out));
      return true;
    }
    auto wf = CurrentWf(r);
    if (!wf) return DataLoss("workflow version of run " + r.id + " is missing");
    KEEL_RETURN_IF_ERROR(
        Complete(txn, r, st, s, key, out, wf->program[static_cast<size_t>(pc)].next));
    return true;
  }

  Result<Run> StartRun(store::Txn& txn, const Workflow& wf, const json& input,
                       const std::string& parent, const std::string& parent_step) {
    if (!input.is_object()) return InvalidArgument("the run input must be a JSON object");
    for (const auto& req : wf.required_inputs) {
      if (!input.contains(req)) {
        return InvalidArgument("workflow " + wf.name + " needs input field '" + req + "'");
      }
    }
    KEEL_RETURN_IF_ERROR(
        store::PutWorkflowVersion(txn, wf.version, wf.name, wf.source, wf.content));
    {
      std::lock_guard<std::mutex> l(cache_mu);
      // A shallow copy: the steps are shared, immutable, and the program's Op::step
      // pointers stay valid as long as any copy holds them. Parsing the text again would
      // cost more than the run's first steps.
      if (!by_version.count(wf.version)) by_version[wf.version] = std::make_shared<Workflow>(wf);
    }
    State st;
    // Pin the versions of subflows now, so a changed file cannot change this run later.
    for (const auto& name : wf.subflows) {
      if (st.subflows.contains(name)) continue;
      KEEL_ASSIGN_OR_RETURN(auto sub, e->Resolve(name));
      KEEL_RETURN_IF_ERROR(
          store::PutWorkflowVersion(txn, sub->version, sub->name, sub->source, sub->content));
      st.subflows[name] = sub->version;
    }
    Run r;
    r.id = NewId("run", txn.now_us(), random());
    r.workflow = wf.name;
    r.version = wf.version;
    r.status = RunStatus::kRunning;
    r.due_us = txn.now_us();
    r.state = st.Dump();
    r.input = CanonicalJson(input);
    r.parent_run = parent;
    r.parent_step = parent_step;
    KEEL_RETURN_IF_ERROR(AddRun(txn, r));
    json p = {{"workflow", wf.name}, {"version", wf.version}, {"input", LedgerOutput(r.input)}};
    if (!parent.empty()) p["parent"] = parent;
    KEEL_RETURN_IF_ERROR(Ledger(txn, "run.started", r.id, "", p));
    return r;
  }

  // ---- waiting runs whose deadline came -------------------------------------------
  Result<bool> Due(store::Txn& txn, Run& r, State& st, const Workflow& wf, bool* fired) {
    int64_t now = clock()->NowMicros();
    if (r.epoch == epoch && r.mono_due_us > 0) {
      int64_t mono = clock()->MonotonicMicros();
      if (mono < r.mono_due_us) {
        // The wall clock moved ahead of the monotonic one: re-anchor the wall deadline.
        r.due_us = now + (r.mono_due_us - mono);
        return false;
      }
    } else if (r.due_us > now) {
      return false;
    }
    if (st.pc < 0 || st.pc >= static_cast<int>(wf.program.size())) return DataLoss("bad pc");
    const Op& op = wf.program[static_cast<size_t>(st.pc)];
    if (!op.step) return false;
    const Step& s = *op.step;
    std::string key = KeyFor(s, st);
    *fired = true;
    if (r.wait_kind == WaitKind::kTimer) {
      // The wait step's step.completed entry, with the time it fired as its output, is the
      // timer's ledger entry: a separate timer.fired entry said the same thing once more.
      KEEL_RETURN_IF_ERROR(
          Complete(txn, r, st, s, key, json{{"fired", FormatTimeMicros(now)}}, op.next));
      return true;
    }
    if (r.wait_kind == WaitKind::kEvent) {
      KEEL_RETURN_IF_ERROR(Ledger(txn, "event.timeout", r.id, key, json::object()));
      if (!s.on_timeout.empty()) {
        KEEL_RETURN_IF_ERROR(Complete(txn, r, st, s, key, json{{"timed_out", true}}, op.alt));
      } else {
        KEEL_RETURN_IF_ERROR(
            FailStep(txn, r, st, wf, s, key, "no " + s.event_type + " event before the timeout"));
      }
      return true;
    }
    if (r.wait_kind == WaitKind::kApproval) {
      KEEL_ASSIGN_OR_RETURN(auto a, FindItem(*e->ws_, r.id, key, ItemKind::kApproval));
      if (!a || a->status != ItemStatus::kPending) {
        r.status = RunStatus::kRunning;
        r.due_us = now;
        return true;
      }
      if (a->remind_us && !a->reminded && (a->deadline_us == 0 || now < a->deadline_us)) {
        a->reminded = true;
        KEEL_RETURN_IF_ERROR(WriteItem(txn, *a));
        KEEL_RETURN_IF_ERROR(
            Ledger(txn, "approval.reminder", r.id, key,
                   {{"approval", a->id}, {"kind", Word(a->kind)}, {"summary", a->summary}}));
        r.due_us = a->deadline_us ? a->deadline_us : kNeverUs;
        return true;
      }
      if (a->deadline_us && now >= a->deadline_us) {
        if (!s.on_timeout.empty()) {
          a->status = ItemStatus::kExpired;
        } else if (!s.default_decision.empty()) {
          a->status =
              s.default_decision == "approve" ? ItemStatus::kApproved : ItemStatus::kRejected;
          a->decision = CanonicalJson(json{{"by", "default"}, {"reason", "timed out"}});
        } else {
          a->status = ItemStatus::kExpired;
        }
        a->decided_us = now;
        KEEL_RETURN_IF_ERROR(WriteItem(txn, *a));
        KEEL_RETURN_IF_ERROR(
            Ledger(txn, "approval.timeout", r.id, key,
                   {{"approval", a->id}, {"kind", Word(a->kind)}, {"status", Word(a->status)}}));
        if (a->status == ItemStatus::kExpired && s.on_timeout.empty()) {
          KEEL_RETURN_IF_ERROR(FailStep(txn, r, st, wf, s, key, "approval timed out"));
          return true;
        }
        r.status = RunStatus::kRunning;
        r.wait_kind = WaitKind::kNone;
        r.due_us = now;
        return true;
      }
      r.due_us = a->deadline_us ? a->deadline_us : kNeverUs;
      return false;
    }
    r.due_us = kNeverUs;  // nothing to do on a deadline for this kind of wait
    return false;
  }

  // ---- buffered events (docs/workflows.md "Events") ---------------------------------
  // A run reaching wait_event first takes the earliest event of its (type, key) that arrived
  // at or after the run started, is younger than the retention, and that this run has not
  // consumed yet. True if one was taken (the step completed).
  Result<bool> TakeBufferedEvent(store::Txn& txn, Run& r, State& st, const Step& s,
                                 const std::string& key, const std::string& event_key, int next) {
    int64_t since = std::max(r.created_us, txn.now_us() - e->opts_.event_retention_us);
    KEEL_ASSIGN_OR_RETURN(auto ev,
                          store::NextEventForRun(*e->ws_, s.event_type, event_key, r.id, since));
    if (!ev) return false;
    KEEL_RETURN_IF_ERROR(store::RecordEventDelivery(txn, ev->id, r.id, key));
    auto data = ParseJson(ev->data, "event data");
    KEEL_RETURN_IF_ERROR(Ledger(txn, "event.delivered", r.id, key,
                                {{"id", ev->id},
                                 {"type", ev->type},
                                 {"key", ev->key},
                                 {"buffered", true},
                                 {"received", FormatTimeMicros(ev->received_us)}}));
    KEEL_RETURN_IF_ERROR(Complete(
        txn, r, st, s, key,
        json{{"event", data.ok() ? *data : json(ev->data)}, {"id", ev->id}, {"timed_out", false}},
        next));
    return true;
  }

  // ---- cancel (docs/workflows.md "Cancel") -------------------------------------------
  // An attempt that had started when the run was canceled (outbox row `sending`): its
  // result will be dropped (the cancel took the lease), so its outcome is unknown. It goes
  // to the operator like any uncertain action; the run does not wait for it.
  Status SurfaceCanceledAttempt(store::Txn& txn, const store::RunRow& r, Outbox ob,
                                const std::string& actor) {
    std::string why = "the run was canceled by " + actor + " while attempt " +
                      std::to_string(ob.attempts) + " was in flight";
    ob.state = OutboxState::kUncertain;
    ob.error = why;
    KEEL_RETURN_IF_ERROR(WriteOutbox(txn, ob));
    KEEL_ASSIGN_OR_RETURN(auto prev, FindItem(*e->ws_, r.id, ob.step_key, ItemKind::kUncertain));
    Item a = prev ? *prev : Item();
    a.run_id = r.id;
    a.step_key = ob.step_key;
    a.kind = ItemKind::kUncertain;
    a.status = ItemStatus::kPending;
    a.summary = "Did " + ob.adapter + "." + ob.action + " happen? The run was canceled while " +
                "attempt " + std::to_string(ob.attempts) +
                " was in flight; if it happened, undo it by hand";
    a.recommend = "check";
    a.context = UncertainContext(ob, r.id, why);
    a.decision = "null";
    a.decided_us = 0;
    if (prev) {
      KEEL_RETURN_IF_ERROR(WriteItem(txn, a));
    } else {
      a.id = NewId("apv", txn.now_us(), random());
      KEEL_RETURN_IF_ERROR(AddItem(txn, a));
    }
    return Ledger(txn, "action.uncertain", r.id, ob.step_key,
                  {{"token", ob.token}, {"approval", a.id}, {"evidence", why}});
  }

  // Cancels one run (and, first, the child runs it started) in the caller's transaction.
  Status CancelInTxn(store::Txn& txn, const std::string& run_id, const std::string& actor,
                     CancelResult* res, int depth) {
    if (depth > 64) return FailedPrecondition("subflows nest deeper than 64 runs");
    KEEL_ASSIGN_OR_RETURN(auto rr, LoadRun(*e->ws_, run_id));
    if (!rr) return NotFound("no run " + run_id + " (list runs with `keel runs`)");
    Run& r = *rr;
    if (r.status == RunStatus::kCompleted || r.status == RunStatus::kFailed ||
        r.status == RunStatus::kCanceled) {
      return FailedPrecondition("run " + run_id + " is already " + std::string(Word(r.status)) +
                                "; only a running or waiting run can be canceled");
    }
    KEEL_ASSIGN_OR_RETURN(State st, State::Parse(r.state));
    if (!st.cancel.empty()) {
      return FailedPrecondition("run " + run_id + " is already being canceled (by " + st.cancel +
                                "); its compensations are running");
    }
    if (st.compensating) {
      return FailedPrecondition("run " + run_id + " failed and is running its compensations (" +
                                st.failure + "); it will end failed, not canceled");
    }
    KEEL_ASSIGN_OR_RETURN(auto wf, Version(r.version));
    json payload = {{"was", Word(r.status)}};
    if (r.wait_kind != WaitKind::kNone) payload["waiting_for"] = Word(r.wait_kind);
    if (!r.wait_type.empty()) payload["event"] = {{"type", r.wait_type}, {"key", r.wait_key}};

    // Child runs (subflows in flight) are canceled too, after this run stopped waiting for
    // them (so their end does not fail this run's step a second time).
    KEEL_ASSIGN_OR_RETURN(auto children, store::ActiveChildRuns(*e->ws_, run_id));
    if (!children.empty()) payload["children"] = children;

    // Operator items: gates and needs-human items are canceled (`keel approvals` no longer
    // lists them); an uncertain action stays, since only the operator can find out whether
    // it happened.
    KEEL_ASSIGN_OR_RETURN(auto items, PendingItemsOf(*e->ws_, run_id));
    json canceled_items = json::array();
    for (auto& a : items) {
      if (a.kind == ItemKind::kUncertain) continue;
      a.status = ItemStatus::kCanceled;
      a.decision = CanonicalJson(json{{"by", actor}, {"reason", "run canceled"}});
      a.decided_us = txn.now_us();
      KEEL_RETURN_IF_ERROR(WriteItem(txn, a));
      KEEL_RETURN_IF_ERROR(Ledger(txn, "approval.canceled", r.id, a.step_key,
                                  {{"approval", a.id}, {"kind", Word(a.kind)}}));
      canceled_items.push_back(a.id);
      if (res) ++res->approvals_canceled;
    }
    if (!canceled_items.empty()) payload["approvals_canceled"] = canceled_items;

    // Outbox: a scheduled retry (`pending`) is never performed; an attempt in flight
    // (`sending`) is put to the operator.
    KEEL_ASSIGN_OR_RETURN(auto rows, LoadOutboxOf(*e->ws_, run_id));
    json dropped = json::array(), unknown = json::array();
    for (auto& ob : rows) {
      if (ob.state == OutboxState::kPending) {
        ob.state = OutboxState::kFailed;
        ob.error = "canceled: the run was canceled by " + actor + " before this retry";
        KEEL_RETURN_IF_ERROR(WriteOutbox(txn, ob));
        KEEL_RETURN_IF_ERROR(Ledger(txn, "action.canceled", r.id, ob.step_key,
                                    {{"token", ob.token}, {"attempts", ob.attempts}}));
        dropped.push_back(ob.token);
        if (res) ++res->actions_canceled;
      } else if (ob.state == OutboxState::kSending) {
        KEEL_RETURN_IF_ERROR(SurfaceCanceledAttempt(txn, r, ob, actor));
        unknown.push_back(ob.token);
        if (res) ++res->actions_uncertain;
      }
    }
    if (!dropped.empty()) payload["actions_canceled"] = dropped;
    if (!unknown.empty()) payload["actions_uncertain"] = unknown;

    // The wait ends: no timer fires, no event is delivered, the lease is taken away (an
    // in-flight worker's result is dropped by the fence in Record).
    r.wait_kind = WaitKind::kNone;
    r.wait_type.clear();
    r.wait_key.clear();
    r.mono_due_us = 0;
    r.lease_owner.clear();
    r.lease_until_us = 0;
    st.waiting.clear();
    st.attempt = 0;
    size_t n = wf->compensations.empty() ? 0 : st.comp.size();
    payload["compensations"] = n;
    store::NewEntry en;
    en.actor = actor;
    en.kind = "run.cancel_requested";
    en.subject = run_id;
    en.run_id = run_id;
    en.payload = CanonicalJson(payload);
    KEEL_RETURN_IF_ERROR(txn.Append(en).status());
    if (n > 0) {
      // The saga: the compensations of the completed steps, newest first, run by the worker
      // exactly as after a failure; the run stays `running` until they are done.
      st.cancel = actor;
      st.compensating = true;
      st.ci = 0;
      st.failure = "canceled by " + actor;
      r.status = RunStatus::kRunning;
      r.due_us = txn.now_us();
      KEEL_RETURN_IF_ERROR(Ledger(txn, "run.compensating", r.id, "",
                                  {{"reason", "canceled"}, {"compensations", n}}));
      if (res && depth == 0) res->compensations = static_cast<int>(n);
    } else {
      KEEL_RETURN_IF_ERROR(Finish(txn, r, st, RunStatus::kCanceled, "canceled by " + actor));
    }
    r.state = st.Dump();
    KEEL_RETURN_IF_ERROR(WriteRun(txn, r));
    for (const auto& c : children) {
      Status cs = CancelInTxn(txn, c, actor, nullptr, depth + 1);
      // A child already compensating after its own failure goes on; it ends failed.
      if (!cs.ok() && cs.code() != StatusCode::kFailedPrecondition) return cs;
      if (cs.ok() && res) res->children.push_back(c);
    }
    return OkStatus();
  }

  // A canceled run whose compensation failed: `keel run retry` resumes the saga at that
  // compensation (its outbox row goes back to pending, so the same token is used again);
  // the forward steps never run again, and the run ends `canceled`.
  Status RetryCancelSaga(store::Txn& txn, Run& r, State& st, const std::string& actor) {
    // The first compensation (newest first) not journaled as completed is where the saga
    // stopped (the state keeps no index once the saga stopped).
    std::string key;
    st.ci = -1;
    for (size_t i = 0; i < st.comp.size() && st.ci < 0; ++i) {
      const json& c = st.comp[st.comp.size() - 1 - i];
      key = "comp:" + c["key"].get<std::string>();
      KEEL_ASSIGN_OR_RETURN(auto j, store::GetJournal(*e->ws_, r.id, key));
      if (!j || j->status != "completed") st.ci = static_cast<int64_t>(i);
    }
    if (st.ci < 0) return DataLoss("run " + r.id + ": no compensation to resume");
    KEEL_ASSIGN_OR_RETURN(auto ob, LoadOutbox(*e->ws_, ActionToken(r.id, key)));
    if (ob && ob->state == OutboxState::kFailed) {
      ob->state = OutboxState::kPending;
      KEEL_RETURN_IF_ERROR(WriteOutbox(txn, *ob));
    }
    st.compensating = true;
    st.attempt = 0;
    st.waiting.clear();
    r.status = RunStatus::kRunning;
    r.error.clear();
    r.due_us = txn.now_us();
    r.state = st.Dump();
    store::NewEntry en;
    en.actor = actor;
    en.kind = "run.retried";
    en.subject = r.id;
    en.run_id = r.id;
    en.payload = CanonicalJson(json{{"compensation", key}, {"canceled_by", st.cancel}});
    KEEL_RETURN_IF_ERROR(txn.Append(en).status());
    return WriteRun(txn, r);
  }

  // ---- operator decisions -------------------------------------------------------------
  // OK if `edit` may go with this decision of item `a`: only an approval gate that
  // declares an editable value takes one, checked against the run's data now
  // (docs/workflows.md "Editing at an approval").
  // On success `*target` is the path the edit replaces ("steps.draft").
  Status CheckDecisionEdit(const Item& a, bool approve, const json& edit, std::string* target) {
    if (!approve) {
      return InvalidArgument(
          "a rejection takes no edit (the step does not go ahead); reject "
          "without --edit");
    }
    if (a.kind == ItemKind::kUncertain) {
      return FailedPrecondition(
          "an action of unknown outcome takes no edit: approving "
          "records that it happened as it was sent; approve without "
          "--edit");
    }
    if (a.kind != ItemKind::kApproval) {
      return FailedPrecondition(
          "a step that needs a person takes no edit: approving tries "
          "it again with the same input; approve without --edit");
    }
    KEEL_ASSIGN_OR_RETURN(auto rr, LoadRun(*e->ws_, a.run_id));
    if (!rr) return NotFound("its run " + a.run_id + " does not exist");
    KEEL_ASSIGN_OR_RETURN(State st, State::Parse(rr->state));
    KEEL_ASSIGN_OR_RETURN(auto wf, Version(rr->version));
    const Step* s = nullptr;
    if (st.pc >= 0 && st.pc < static_cast<int>(wf->program.size())) {
      const Op& op = wf->program[static_cast<size_t>(st.pc)];
      if (op.type == Op::kStep && op.step && op.step->kind == StepKind::kApproval &&
          KeyFor(*op.step, st) == a.step_key) {
        s = op.step;
      }
    }
    if (s == nullptr) {
      return FailedPrecondition("run " + a.run_id + " is not waiting at step " + a.step_key +
                                "; approve without --edit");
    }
    *target = s->edit;
    return CheckEdit(*s, EditTarget(*s, st.steps, st.vars), edit);
  }

  // ---- phase C: record the outcome of one I/O ------------------------------------
  // --- effects in flight (worker thread) ---

  // Takes the effects a round claimed as in flight, then hands them to the executor one by
  // one. Before each, leases half gone are renewed: with an inline executor a slow effect
  // delays the next, whose lease another worker may have taken over meanwhile (it is then
  // not started). Outcomes reach `done`; RecordDone records them.
  Status SubmitAll(std::vector<Io>* io) {
    std::vector<std::shared_ptr<Effect>> fresh;
    for (auto& it : *io) {
      auto fx = std::make_shared<Effect>();
      fx->lane = it.lane;
      fx->lease_until = it.lease_until;
      fx->io = std::move(it);
      ++lane_claims[fx->lane];
      in_flight[fx->io.run_id] = fx;
      fresh.push_back(std::move(fx));
    }
    for (size_t i = 0; i < fresh.size(); ++i) {
      Status s = RenewLeases();
      if (!s.ok()) {
        // Never started: forgotten here, their outbox rows say "sending" as after a crash
        // (the next worker decides: retry with the same key, or ask the operator).
        for (size_t j = i; j < fresh.size(); ++j) Forget(*fresh[j]);
        return s;
      }
      Submit(std::move(fresh[i]));
    }
    return OkStatus();
  }

  void Forget(const Effect& fx) {
    in_flight.erase(fx.io.run_id);
    if (--lane_claims[fx.lane] <= 0) lane_claims.erase(fx.lane);
  }

  void Submit(std::shared_ptr<Effect> fx) {
    {
      std::lock_guard<std::mutex> l(done->mu);
      ++done->outstanding;
    }
    ActionAdapter* ad = nullptr;
    if (fx->io.is_action) ad = e->reg_.adapters.at(fx->io.step->adapter);
    AgentInvoker* agents = e->reg_.agents;
    Clock* clk = clock();
    // The function holds what it uses: the queue outlives the engine if need be, and the
    // engine waits for running functions before its agents and adapters may go.
    executor->Submit(fx->lane, [d = done, fx, ad, agents, clk] {
      bool go;
      {
        std::lock_guard<std::mutex> l(d->mu);
        go = !d->closing;
      }
      if (go && !fx->lost.load()) {
        const Io& it = fx->io;
        CallContext ctx{it.run_id, it.key, it.attempt, clk->NowMicros()};
        if (it.is_action) {
          KEEL_CRASH_POINT("send.before_io");
          fx->oc = ad->Perform(it.token, it.step->action, it.input, ctx, &fx->out);
          KEEL_CRASH_POINT("send.after_io_before_record");
        } else {
          fx->oc = agents->Invoke(it.step->agent, it.input, ctx, &fx->out);
        }
        fx->performed = true;
      }
      {
        std::lock_guard<std::mutex> l(d->mu);
        d->effects.push_back(fx);
        --d->outstanding;
      }
      d->cv.notify_all();
    });
  }

  // Records, in one transaction, the outcomes that arrived. An effect that was not performed
  // (its lease was lost before it started) leaves its outbox row as it is: whoever holds the
  // run now decides. If the transaction fails, the outcomes stay queued for the next round.
  Status RecordDone(TickStats* stats) {
    std::vector<std::shared_ptr<Effect>> batch;
    {
      std::lock_guard<std::mutex> l(done->mu);
      batch.swap(done->effects);
    }
    if (batch.empty()) return OkStatus();
    Status s = e->ws_->Write([&](store::Txn& txn) -> Status {
      for (const auto& fx : batch) {
        if (fx->performed) KEEL_RETURN_IF_ERROR(Record(txn, fx->io, fx->oc, fx->out));
      }
      KEEL_CRASH_POINT("send.after_record_before_commit");
      return OkStatus();
    });
    if (!s.ok()) {
      std::lock_guard<std::mutex> l(done->mu);
      done->effects.insert(done->effects.begin(), batch.begin(), batch.end());
      return Unavailable("recording step outcomes failed: " + s.message());
    }
    for (const auto& fx : batch) {
      Forget(*fx);
      if (fx->performed) ++stats->io;
    }
    return OkStatus();
  }

  // When the lease of an effect in flight is renewed: once half of it is gone.
  int64_t RenewAt(const Effect& fx) const { return fx.lease_until - e->opts_.lease_us / 2; }

  // Renews, in one transaction, the leases of the effects in flight that are half gone, so
  // another worker does not take their runs over while this one is alive. Only a lease still
  // ours is renewed (store/leases.h): an effect whose lease was taken over is marked lost
  // and does not start if it has not yet.
  Status RenewLeases() {
    int64_t now = clock()->NowMicros();
    std::vector<Effect*> due;
    for (auto& [id, fx] : in_flight) {
      if (!fx->lost.load() && now >= RenewAt(*fx)) due.push_back(fx.get());
    }
    if (due.empty()) return OkStatus();
    int64_t until = now + e->opts_.lease_us;
    std::vector<char> held(due.size(), 0);
    KEEL_RETURN_IF_ERROR(e->ws_->Write([&](store::Txn& txn) -> Status {
      for (size_t i = 0; i < due.size(); ++i) {
        KEEL_ASSIGN_OR_RETURN(bool h,
                              store::RenewLease(txn, due[i]->io.run_id, e->opts_.worker_id, until));
        held[i] = h;
      }
      KEEL_CRASH_POINT("lease.renew");
      return OkStatus();
    }));
    for (size_t i = 0; i < due.size(); ++i) {
      if (held[i]) {
        due[i]->lease_until = until;
      } else {
        due[i]->lost = true;
      }
    }
    return OkStatus();
  }

  // Once per engine: runs this worker id had claimed in a previous life (a restart after a
  // crash, under the id the worker lock proves is free) are due now instead of when their
  // leases end, so their steps are taken back at once (EngineOptions::worker_id).
  Status ReclaimOwnLeases() {
    if (reclaimed) return OkStatus();
    reclaimed = true;
    if (!own_id) return OkStatus();
    int64_t now = clock()->NowMicros();
    KEEL_ASSIGN_OR_RETURN(bool any, store::HasLeasesOf(*e->ws_, e->opts_.worker_id, now));
    if (!any) return OkStatus();
    busy = true;
    return e->ws_->Write([&](store::Txn& txn) -> Status {
      return store::MakeLeasesOfDue(txn, e->opts_.worker_id, now);
    });
  }

  Status Record(store::Txn& txn, const Io& it, const Outcome& oc, const json& out) {
    KEEL_ASSIGN_OR_RETURN(auto rr, LoadRun(*e->ws_, it.run_id));
    if (!rr) return OkStatus();
    Run& r = *rr;
    // Fencing: only the lease holder records; a worker whose lease expired and was taken
    // over drops its result (the outbox row tells the new holder what is known).
    if (r.lease_owner != e->opts_.worker_id || r.status != RunStatus::kRunning) return OkStatus();
    KEEL_ASSIGN_OR_RETURN(State st, State::Parse(r.state));
    KEEL_ASSIGN_OR_RETURN(auto wf, Version(r.version));
    const Step& s = *it.step;
    std::optional<Outbox> ob;
    if (it.is_action) {
      KEEL_ASSIGN_OR_RETURN(ob, LoadOutbox(*e->ws_, it.token));
      if (!ob) return DataLoss("outbox row " + it.token + " vanished");
    }
    json attempt = {{"key", it.key}, {"attempt", it.attempt}, {"ok", oc.ok}};
    if (!oc.ok) {
      attempt["class"] = std::string(ErrorClassName(oc.error_class));
      attempt["error"] = oc.message;
    }
    KEEL_RETURN_IF_ERROR(Ledger(txn, "step.attempt", r.id, it.key, attempt));
    if (oc.ok) {
      if (ob) {
        ob->state = OutboxState::kDone;
        ob->result = CanonicalJson(out);
        KEEL_RETURN_IF_ERROR(WriteOutbox(txn, *ob));
        KEEL_RETURN_IF_ERROR(Ledger(txn, "action.done", r.id, it.key, {{"token", ob->token}}));
      }
      st.attempt = it.attempt;
      KEEL_RETURN_IF_ERROR(FinishIoOk(txn, r, st, s, it.key, it.pc, it.compensation, out).status());
    } else {
      ErrorClass c = oc.error_class;
      bool exhausted = it.attempt >= s.retry.max_attempts;
      if (c == ErrorClass::kInDoubt && ob && !ob->honours_key) {
        KEEL_RETURN_IF_ERROR(
            MarkUncertain(txn, r, st, *ob, oc.evidence.empty() ? oc.message : oc.evidence));
      } else if (c == ErrorClass::kNeedsHuman || (c == ErrorClass::kInDoubt && !ob)) {
        if (ob) {
          ob->state = OutboxState::kPending;
          ob->error = oc.message;
          KEEL_RETURN_IF_ERROR(WriteOutbox(txn, *ob));
        }
        Item a;
        a.id = NewId("apv", txn.now_us(), random());
        a.run_id = r.id;
        a.step_key = it.key;
        a.kind = ItemKind::kNeedsHuman;
        a.status = ItemStatus::kPending;
        a.summary = "Step " + it.key + " needs a person: " + oc.message;
        a.recommend = "retry";
        a.context = CanonicalJson(json{{"run", r.id},
                                       {"step", it.key},
                                       {"attempt", it.attempt},
                                       {"error", oc.message},
                                       {"input", it.input}});
        KEEL_RETURN_IF_ERROR(AddItem(txn, a));
        KEEL_RETURN_IF_ERROR(
            Ledger(txn, "approval.requested", r.id, it.key,
                   {{"approval", a.id}, {"kind", Word(a.kind)}, {"summary", a.summary}}));
        st.attempt = it.attempt;
        Wait(r, st, it.key, WaitKind::kHuman, kNeverUs);
      } else if (c == ErrorClass::kPermanent || exhausted) {
        if (ob) {
          ob->state = OutboxState::kFailed;
          ob->error = oc.message;
          KEEL_RETURN_IF_ERROR(WriteOutbox(txn, *ob));
        }
        st.attempt = it.attempt;
        std::string why = std::string(ErrorClassName(c)) + ": " + oc.message;
        if (c != ErrorClass::kPermanent)
          why += " (after " + std::to_string(it.attempt) + " attempts)";
        KEEL_RETURN_IF_ERROR(FailStep(txn, r, st, *wf, s, it.key, why));
      } else {
        // transient, rate_limited, or in_doubt on a channel that dedupes by the token.
        if (ob) {
          ob->state = OutboxState::kPending;
          ob->error = oc.message;
          KEEL_RETURN_IF_ERROR(WriteOutbox(txn, *ob));
        }
        int64_t delay = BackoffUs(s.retry, it.attempt, random());
        if (c == ErrorClass::kRateLimited) delay = std::max(delay, oc.retry_after_us);
        st.attempt = it.attempt;
        r.due_us = txn.now_us() + delay;
        r.lease_owner.clear();
        r.lease_until_us = 0;
        KEEL_RETURN_IF_ERROR(Ledger(
            txn, "step.retry_scheduled", r.id, it.key,
            {{"attempt", it.attempt}, {"delay_us", delay}, {"due", FormatTimeMicros(r.due_us)}}));
      }
    }
    r.state = st.Dump();
    return WriteRun(txn, r);
  }
  // Last, so it goes first: a pool joins its threads before the state they report to.
  std::shared_ptr<EffectExecutor> executor;
  bool owns_executor = false;
};

// ---------------------------------------------------------------------------------------

Engine::Engine(store::Workspace* ws, Registry registry, EngineOptions opts)
    : impl_(std::make_unique<Impl>()), ws_(ws), reg_(std::move(registry)), opts_(std::move(opts)) {
  impl_->e = this;
  Clock* c = ws_->env().clock;
  impl_->own_id = !opts_.worker_id.empty();
  if (opts_.worker_id.empty()) opts_.worker_id = NewId("wrk", c->NowMicros(), ws_->env().random);
  impl_->executor = opts_.executor;
  if (!impl_->executor) {
    impl_->executor = NewThreadPoolExecutor(opts_.effects);
    impl_->owns_executor = true;
  }
  impl_->defer_full_lanes = !impl_->executor->RunsInline();
  if (opts_.workflows_dir.empty()) opts_.workflows_dir = ws_->dir() + "/workflows";
  if (opts_.batch < 1) opts_.batch = 1;
  impl_->epoch = NewId("ep", c->NowMicros(), ws_->env().random);
  impl_->offset0 = c->NowMicros() - c->MonotonicMicros();
}

Engine::~Engine() {
  // Effects not yet started never start; those running are waited for (they use the
  // borrowed agents and adapters). Their outcomes are not recorded: the outbox rows stay
  // "sending", as after a crash, and the next worker treats them so (Drain avoids this).
  {
    std::lock_guard<std::mutex> l(impl_->done->mu);
    impl_->done->closing = true;
  }
  if (impl_->owns_executor) {
    impl_->executor.reset();  // joins its threads; drops what was queued
  } else {
    std::unique_lock<std::mutex> l(impl_->done->mu);
    impl_->done->cv.wait(l, [&] { return impl_->done->outstanding == 0; });
  }
}

Result<std::shared_ptr<const Workflow>> Engine::LoadFile(const std::string& path) {
  auto text = ws_->env().fs->ReadFile(path, 4 << 20);
  if (!text.ok()) return text.status().WithContext("reading workflow " + path);
  KEEL_ASSIGN_OR_RETURN(auto wf, ParseWorkflow(*text, path));
  KEEL_RETURN_IF_ERROR(Check(*wf));
  return wf;
}

Status Engine::Check(const Workflow& wf) {
  if (IsReservedWorkflowName(wf.name)) {
    return InvalidArgument(wf.source + ":" + std::to_string(wf.name_line) + ": name: '" + wf.name +
                           "' is the name of a `keel run` subcommand (`keel run " + wf.name +
                           "` would run the subcommand, not this workflow); rename " +
                           "it, e.g. '" + wf.name + "_flow'");
  }
  for (const auto& a : wf.agents) {
    if (reg_.agents == nullptr || !reg_.agents->HasAgent(a)) {
      return InvalidArgument(wf.source + ": no agent named '" + a + "' is registered");
    }
  }
  for (const auto& a : wf.adapters) {
    if (!reg_.adapters.count(a)) {
      return InvalidArgument(wf.source + ": no adapter named '" + a + "' is registered");
    }
  }
  // Every action step (nested ones and compensations too: the compiled programs hold them
  // all) names an action its adapter offers.
  for (const auto* prog : {&wf.program, &wf.comp_program}) {
    for (const Op& op : *prog) {
      if (op.type != Op::kStep || op.step == nullptr || op.step->kind != StepKind::kAction)
        continue;
      const Step& s = *op.step;
      auto ad = reg_.adapters.find(s.adapter);
      if (ad == reg_.adapters.end() || ad->second == nullptr) continue;  // reported above
      std::vector<std::string> offered = ad->second->actions();
      if (std::find(offered.begin(), offered.end(), s.action) != offered.end()) continue;
      std::sort(offered.begin(), offered.end());
      std::string list;
      for (const auto& o : offered) list += (list.empty() ? "" : ", ") + o;
      return InvalidArgument(wf.source + ":" + std::to_string(s.line) + ": step '" + s.id +
                             "': action: " + s.adapter + "." + s.action + ": adapter '" +
                             s.adapter + "' has no action '" + s.action +
                             "' (its actions: " + (list.empty() ? "none" : list) + ")");
    }
  }
  return OkStatus();
}

Result<std::shared_ptr<const Workflow>> Engine::Resolve(const std::string& name_or_path) {
  FileSystem* fs = ws_->env().fs;
  if (name_or_path.find('/') != std::string::npos || fs->Exists(name_or_path)) {
    if (fs->Exists(name_or_path)) return LoadFile(name_or_path);
    return NotFound("workflow file " + name_or_path + " does not exist");
  }
  for (const char* ext : {".yaml", ".yml"}) {
    std::string p = opts_.workflows_dir + "/" + name_or_path + ext;
    if (fs->Exists(p)) return LoadFile(p);
  }
  for (const auto& p : ListWorkflowFiles(opts_.workflows_dir)) {
    auto wf = LoadFile(p);
    if (wf.ok() && (*wf)->name == name_or_path) return wf;
  }
  return NotFound("no workflow named '" + name_or_path + "' in " + opts_.workflows_dir +
                  " (and no such file)");
}

std::vector<std::pair<std::string, Result<std::shared_ptr<const Workflow>>>>
Engine::ListWorkflows() {
  std::vector<std::pair<std::string, Result<std::shared_ptr<const Workflow>>>> out;
  for (const auto& p : ListWorkflowFiles(opts_.workflows_dir)) out.emplace_back(p, LoadFile(p));
  return out;
}

Result<std::string> Engine::Start(const std::string& name_or_path, const json& input) {
  KEEL_ASSIGN_OR_RETURN(auto wf, Resolve(name_or_path));
  return Start(wf, input);
}

Result<std::string> Engine::Start(std::shared_ptr<const Workflow> wf, const json& input) {
  std::string id;
  KEEL_RETURN_IF_ERROR(ws_->Write([&](store::Txn& txn) -> Status {
    KEEL_ASSIGN_OR_RETURN(id, StartInTxn(txn, *wf, input));
    return OkStatus();
  }));
  return id;
}

Result<std::string> Engine::StartInTxn(store::Txn& txn, const Workflow& wf, const json& input) {
  KEEL_ASSIGN_OR_RETURN(auto r, impl_->StartRun(txn, wf, input, "", ""));
  return r.id;
}

Result<TickStats> Engine::Tick() {
  TickStats stats;
  Clock* clock = ws_->env().clock;
  std::set<std::pair<std::string, std::string>> pauses;
  auto read_pauses = [&]() -> Status {
    KEEL_ASSIGN_OR_RETURN(auto pause_list, store::ListPauses(*ws_));
    pauses = {pause_list.begin(), pause_list.end()};
    return OkStatus();
  };
  KEEL_RETURN_IF_ERROR(impl_->ReclaimOwnLeases());
  KEEL_RETURN_IF_ERROR(impl_->RenewLeases());
  // Outcomes of earlier rounds' effects are recorded even when nothing else is due.
  auto finish = [&]() -> Result<TickStats> {
    KEEL_RETURN_IF_ERROR(impl_->RecordDone(&stats));
    stats.in_flight = static_cast<int>(impl_->in_flight.size());
    return stats;
  };
  if (!impl_->busy) {
    // Nothing due: no transaction (an idle worker costs no fsync). A busy worker reads the
    // pauses inside its write transaction instead: one SQLite read transaction less per
    // round, and no switch can land between the read and the steps it governs.
    KEEL_RETURN_IF_ERROR(read_pauses());
    if (pauses.count({"global", ""})) return finish();  // everything waits
    int64_t now = clock->NowMicros();
    int64_t back = impl_->offset0 - (now - clock->MonotonicMicros());
    KEEL_ASSIGN_OR_RETURN(
        auto due, store::DueRuns(*ws_, now + std::max<int64_t>(0, back), now, opts_.worker_id,
                                 1 + static_cast<int>(impl_->in_flight.size())));
    bool any = false;
    for (const auto& id : due) any = any || !impl_->in_flight.count(id);
    if (!any) {
      KEEL_ASSIGN_OR_RETURN(auto scheds, store::ListSchedules(*ws_));
      for (const auto& sc : scheds) any = any || sc.next_us <= now;
    }
    if (!any) return finish();
  }
  std::vector<Impl::Io> io;
  std::unordered_map<std::string, std::pair<std::string, State>> advanced;
  bool outbox_written = false, comp_progress = false;
  impl_->busy = false;
  // Pipelined: the round is committed and visible when this returns, durable a moment
  // later (store::Workspace::WritePipelined). A run's next round overlaps this round's
  // fsync; nothing leaves the process on its strength before WaitDurable (below, before
  // any I/O; RunUntilIdle and the worker before they report or sleep).
  Status s = ws_->WritePipelined([&](store::Txn& txn) -> Status {
    io.clear();
    advanced.clear();
    impl_->claimed_round = impl_->deferred_round = 0;
    impl_->round_lanes.clear();
    KEEL_RETURN_IF_ERROR(read_pauses());
    if (pauses.count({"global", ""})) return OkStatus();  // nothing written: no commit I/O
    int64_t now = clock->NowMicros();
    // Cron schedules due now start their runs in this same transaction.
    KEEL_ASSIGN_OR_RETURN(auto scheds, store::ListSchedules(*ws_));
    for (auto& sc : scheds) {
      if (sc.next_us > now) continue;
      if (pauses.count({"workflow", sc.workflow})) continue;
      auto wf = LoadFile(sc.path);
      KEEL_ASSIGN_OR_RETURN(auto cron, ParseCron(sc.cron, sc.tz));
      int64_t fired_for = sc.next_us;
      KEEL_ASSIGN_OR_RETURN(sc.next_us, NextFire(cron, now));
      sc.last_us = fired_for;
      KEEL_RETURN_IF_ERROR(store::UpsertSchedule(txn, sc));
      if (!wf.ok()) {
        KEEL_RETURN_IF_ERROR(
            impl_->Ledger(txn, "schedule.skipped", "", "",
                          {{"workflow", sc.workflow}, {"error", wf.status().message()}}));
        continue;
      }
      KEEL_ASSIGN_OR_RETURN(
          auto r,
          impl_->StartRun(txn, **wf, json{{"scheduled_for", FormatTimeMicros(fired_for)}}, "", ""));
      KEEL_RETURN_IF_ERROR(
          impl_->Ledger(txn, "schedule.fired", r.id, "",
                        {{"workflow", sc.workflow}, {"for", FormatTimeMicros(fired_for)}}));
      ++stats.schedules;
    }
    // When the wall clock went back, monotonic deadlines of this process are looked at too.
    int64_t back = impl_->offset0 - (now - clock->MonotonicMicros());
    int64_t bound = now + std::max<int64_t>(0, back);
    // Runs whose effect is in flight may come back (a lease that ran out before its
    // renewal): they are skipped, and the query asks for that many more.
    KEEL_ASSIGN_OR_RETURN(auto ids,
                          store::DueRuns(*ws_, bound, now, opts_.worker_id,
                                         opts_.batch + static_cast<int>(impl_->in_flight.size())));
    int taken = 0;
    for (const auto& id : ids) {
      if (impl_->in_flight.count(id) || taken == opts_.batch) continue;
      ++taken;
      KEEL_ASSIGN_OR_RETURN(auto rr, LoadRun(*ws_, id));
      if (!rr) continue;
      Run& r = *rr;
      const Run before = r;
      KEEL_ASSIGN_OR_RETURN(State st, impl_->ParseState(r));
      KEEL_ASSIGN_OR_RETURN(auto wf, impl_->Version(r.version));
      bool changed = false;
      if (r.status == RunStatus::kRunning) {
        bool was_comp = st.compensating;
        KEEL_ASSIGN_OR_RETURN(changed,
                              impl_->Advance(txn, r, st, *wf, pauses, &io, &outbox_written));
        if (was_comp && st.compensating && st.ci > 0) comp_progress = true;
        if (changed) ++stats.steps;
      } else if (r.status == RunStatus::kWaiting) {
        bool fired = false;
        int64_t before = r.due_us;
        KEEL_ASSIGN_OR_RETURN(changed, impl_->Due(txn, r, st, *wf, &fired));
        if (fired) ++stats.timers;
        changed = changed || r.due_us != before;
        // A run its deadline woke takes its next step in this same round: one commit and
        // one read of the run instead of two. I/O still waits for this commit.
        if (fired && r.status == RunStatus::kRunning) {
          KEEL_ASSIGN_OR_RETURN(bool moved,
                                impl_->Advance(txn, r, st, *wf, pauses, &io, &outbox_written));
          if (moved) ++stats.steps;
        }
      } else {
        r.due_us = kNeverUs;  // terminal: nothing is due
        changed = true;
      }
      if (changed) {
        r.state = st.Dump();
        KEEL_RETURN_IF_ERROR(WriteRun(txn, r, &before));
        // Exactly the text just written (a state left unwritten may differ from its text).
        if (r.status == RunStatus::kRunning)
          advanced.emplace(r.id, std::make_pair(r.state, std::move(st)));
      }
    }
    KEEL_CRASH_POINT("step.result.before_commit");
    return OkStatus();
  });
  KEEL_RETURN_IF_ERROR(s);
  impl_->parsed = std::move(advanced);
  impl_->busy = stats.steps > 0 || stats.timers > 0 || stats.schedules > 0;
  stats.deferred = impl_->deferred_round;
  if (outbox_written) {
    KEEL_CRASH_POINT("outbox.insert.after_commit");
    KEEL_CRASH_POINT("outbox.claim.after_commit");
  }
  if (stats.timers > 0) KEEL_CRASH_POINT("timer.fired.before_step_start");
  if (comp_progress) KEEL_CRASH_POINT("compensation.mid");
  if (!io.empty()) {
    // No effect starts before its outbox row and lease are durable.
    KEEL_RETURN_IF_ERROR(ws_->WaitDurable());
    // Phase B: the effects, off this thread (or here, with an inline executor).
    KEEL_RETURN_IF_ERROR(impl_->SubmitAll(&io));
  }
  // Phase C: the outcomes performed by now, in one transaction.
  return finish();
}

Result<int64_t> Engine::RunUntilIdle(int64_t max_ticks) {
  int64_t total = 0;
  for (int64_t i = 0; i < max_ticks; ++i) {
    KEEL_ASSIGN_OR_RETURN(TickStats t, Tick());
    total += t.steps;
    if (t.progressed()) continue;
    if (impl_->in_flight.empty()) break;
    // Only effects in flight: wait for one to end (or for a lease to need renewing).
    KEEL_ASSIGN_OR_RETURN(int64_t wake, NextWakeUs());
    Sleep(std::clamp<int64_t>(wake - ws_->env().clock->NowMicros(), 0, 100000));
  }
  KEEL_RETURN_IF_ERROR(WaitDurable());
  return total;
}

Status Engine::Drain() {
  while (!impl_->in_flight.empty()) {
    TickStats unused;
    KEEL_RETURN_IF_ERROR(impl_->RenewLeases());
    KEEL_RETURN_IF_ERROR(impl_->RecordDone(&unused));
    if (impl_->in_flight.empty()) break;
    KEEL_ASSIGN_OR_RETURN(int64_t wake, NextWakeUs());
    Sleep(std::clamp<int64_t>(wake - ws_->env().clock->NowMicros(), 0, 100000));
  }
  return WaitDurable();
}

int Engine::InFlight() const {
  return static_cast<int>(impl_->in_flight.size());
}

void Engine::Sleep(int64_t us) {
  if (us <= 0) return;
  if (impl_->in_flight.empty()) {
    ws_->env().clock->SleepMicros(us);
    return;
  }
  Impl::Done& d = *impl_->done;
  std::unique_lock<std::mutex> l(d.mu);
  d.cv.wait_for(l, std::chrono::microseconds(us), [&] { return !d.effects.empty(); });
}

Status Engine::WaitDurable() {
  return ws_->WaitDurable();
}

Result<int64_t> Engine::NextWakeUs() {
  KEEL_ASSIGN_OR_RETURN(int64_t due, store::NextDueUs(*ws_));
  KEEL_ASSIGN_OR_RETURN(auto scheds, store::ListSchedules(*ws_));
  for (const auto& s : scheds) due = std::min(due, s.next_us);
  for (const auto& [id, fx] : impl_->in_flight) due = std::min(due, impl_->RenewAt(*fx));
  return due;
}

Result<UpcomingWork> Engine::Upcoming() {
  int64_t now = ws_->env().clock->NowMicros();
  UpcomingWork out;
  KEEL_ASSIGN_OR_RETURN(auto groups, store::FutureDueGroups(*ws_, now));
  std::map<std::string, UpcomingGroup> by_kind;
  auto add = [&](const std::string& kind, int64_t count, int64_t at, const std::string& first) {
    UpcomingGroup& g = by_kind[kind];
    g.kind = kind;
    g.count += count;
    if (at < g.earliest_us || (at == g.earliest_us && first < g.earliest)) {
      g.earliest_us = at;
      g.earliest = first;
    }
  };
  for (const auto& g : groups) {
    // A running run with a future due time waits for its next attempt (Record); the wait
    // kinds with a deadline are set by Wait().
    KEEL_ASSIGN_OR_RETURN(RunStatus status, ParseRunStatus(g.status));
    KEEL_ASSIGN_OR_RETURN(WaitKind wait, ParseWaitKind(g.wait_kind));
    std::string kind = status == RunStatus::kRunning ? "retry"
                       : wait == WaitKind::kEvent
                           ? "event_timeout"
                           : std::string(wait == WaitKind::kNone ? Word(status) : Word(wait));
    add(kind, g.count, g.earliest_us, g.earliest_run);
  }
  KEEL_ASSIGN_OR_RETURN(store::DueNow dn, store::CountDueNow(*ws_, now));
  out.due_now = dn.free;
  if (dn.leased > 0) add("lease", dn.leased, dn.first_lease_end_us, dn.first_leased_run);
  KEEL_ASSIGN_OR_RETURN(auto scheds, store::ListSchedules(*ws_));
  for (const auto& sc : scheds) {
    // A schedule already due fires at the next round: it counts as due now.
    if (sc.next_us <= now) {
      ++out.due_now;
    } else {
      add("schedule", 1, sc.next_us, sc.workflow);
    }
  }
  for (auto& [kind, g] : by_kind) out.groups.push_back(std::move(g));
  std::sort(
      out.groups.begin(), out.groups.end(), [](const UpcomingGroup& a, const UpcomingGroup& b) {
        return a.earliest_us != b.earliest_us ? a.earliest_us < b.earliest_us : a.kind < b.kind;
      });
  return out;
}

Status Engine::SyncSchedules() {
  KEEL_ASSIGN_OR_RETURN(auto have, store::ListSchedules(*ws_));
  std::map<std::string, store::ScheduleRow> by_name;
  for (auto& s : have) by_name[s.workflow] = s;
  int64_t now = ws_->env().clock->NowMicros();
  return ws_->Write([&](store::Txn& txn) -> Status {
    for (auto& [path, wf] : ListWorkflows()) {
      if (!wf.ok() || (*wf)->schedule_cron.empty()) continue;
      const Workflow& w = **wf;
      auto it = by_name.find(w.name);
      if (it != by_name.end() && it->second.cron == w.schedule_cron &&
          it->second.tz == w.schedule_tz && it->second.path == path) {
        continue;
      }
      KEEL_ASSIGN_OR_RETURN(auto cron, ParseCron(w.schedule_cron, w.schedule_tz));
      store::ScheduleRow row;
      row.workflow = w.name;
      row.path = path;
      row.cron = w.schedule_cron;
      row.tz = w.schedule_tz;
      KEEL_ASSIGN_OR_RETURN(row.next_us, NextFire(cron, now));
      KEEL_RETURN_IF_ERROR(store::UpsertSchedule(txn, row));
      KEEL_RETURN_IF_ERROR(impl_->Ledger(txn, "schedule.set", "", "",
                                         {{"workflow", w.name},
                                          {"cron", w.schedule_cron},
                                          {"tz", w.schedule_tz},
                                          {"next", FormatTimeMicros(row.next_us)}}));
    }
    return OkStatus();
  });
}

Result<EventResult> Engine::SendEvent(const std::string& type, const std::string& key,
                                      const std::string& id_in, const json& data) {
  if (type.empty()) return InvalidArgument("an event needs a type");
  EventResult res;
  res.id = id_in.empty() ? NewId("evt", ws_->env().clock->NowMicros(), ws_->env().random) : id_in;
  KEEL_RETURN_IF_ERROR(ws_->Write([&](store::Txn& txn) -> Status {
    KEEL_ASSIGN_OR_RETURN(auto waiting, store::RunsWaitingForEvent(*ws_, type, key));
    KEEL_ASSIGN_OR_RETURN(bool fresh,
                          store::InsertEvent(txn, res.id, type, key, CanonicalJson(data),
                                             static_cast<int64_t>(waiting.size())));
    if (!fresh) {
      res.duplicate = true;
      return impl_->Ledger(txn, "event.duplicate", "", "",
                           {{"id", res.id}, {"type", type}, {"key", key}});
    }
    KEEL_CRASH_POINT("webhook.recv.after_dedupe_insert");
    KEEL_RETURN_IF_ERROR(impl_->Ledger(txn, "event.received", "", "",
                                       {{"id", res.id},
                                        {"type", type},
                                        {"key", key},
                                        {"data", LedgerOutput(CanonicalJson(data))},
                                        {"runs", waiting.size()}}));
    for (const auto& rid : waiting) {
      KEEL_ASSIGN_OR_RETURN(auto rr, LoadRun(*ws_, rid));
      if (!rr) continue;
      KEEL_ASSIGN_OR_RETURN(State st, State::Parse(rr->state));
      KEEL_ASSIGN_OR_RETURN(auto wf, impl_->Version(rr->version));
      const Op& op = wf->program[static_cast<size_t>(st.pc)];
      if (!op.step || op.step->kind != StepKind::kWaitEvent) continue;
      std::string skey = KeyFor(*op.step, st);
      // The run has taken this event: a later wait_event of the same run skips it.
      KEEL_RETURN_IF_ERROR(store::RecordEventDelivery(txn, res.id, rid, skey));
      KEEL_RETURN_IF_ERROR(
          impl_->Complete(txn, *rr, st, *op.step, skey,
                          json{{"event", data}, {"id", res.id}, {"timed_out", false}}, op.next));
      rr->state = st.Dump();
      KEEL_RETURN_IF_ERROR(WriteRun(txn, *rr));
      ++res.delivered;
    }
    return OkStatus();
  }));
  return res;
}

Result<int64_t> Engine::PurgeExpiredEvents() {
  int64_t cutoff = ws_->env().clock->NowMicros() - opts_.event_retention_us;
  // Nothing expired: no transaction (an idle worker calls this often).
  KEEL_ASSIGN_OR_RETURN(auto oldest, store::OldestEventUs(*ws_));
  if (!oldest || *oldest >= cutoff) return int64_t{0};
  int64_t n = 0;
  KEEL_RETURN_IF_ERROR(ws_->Write([&](store::Txn& txn) -> Status {
    KEEL_ASSIGN_OR_RETURN(n, store::PurgeEventsBefore(txn, cutoff));
    if (n == 0) return OkStatus();
    return impl_->Ledger(txn, "event.purged", "", "",
                         {{"events", n},
                          {"received_before", FormatTimeMicros(cutoff)},
                          {"retention_us", opts_.event_retention_us}});
  }));
  return n;
}

Status Engine::Decide(const std::string& approval_id, bool approve, const json* edit,
                      const std::string& reason, const std::string& actor) {
  KEEL_RETURN_IF_ERROR(ws_->Write([&](store::Txn& txn) -> Status {
    KEEL_ASSIGN_OR_RETURN(auto a, LoadItem(*ws_, approval_id));
    if (!a) return NotFound("no approval " + approval_id + " (list them with `keel approvals`)");
    if (a->status != ItemStatus::kPending) {
      return FailedPrecondition("approval " + approval_id + " is already " +
                                std::string(Word(a->status)));
    }
    // An edit is refused where nothing would use it: it must never be silently dropped.
    std::string edit_target;
    if (edit != nullptr) {
      KEEL_RETURN_IF_ERROR(impl_->CheckDecisionEdit(*a, approve, *edit, &edit_target)
                               .WithContext("approval " + approval_id));
    }
    a->status = approve ? ItemStatus::kApproved : ItemStatus::kRejected;
    json dec = {{"by", actor}};
    if (!reason.empty()) dec["reason"] = reason;
    if (edit != nullptr) dec["edit"] = *edit;
    a->decision = CanonicalJson(dec);
    a->decided_us = txn.now_us();
    KEEL_RETURN_IF_ERROR(WriteItem(txn, *a));
    store::NewEntry en;
    en.actor = actor;
    en.kind = "approval.decided";
    en.subject = a->run_id;
    en.run_id = a->run_id;
    en.step_id = a->step_key;
    json p = {{"approval", a->id}, {"kind", Word(a->kind)}, {"decision", Word(a->status)}};
    if (!reason.empty()) p["reason"] = reason;
    if (edit != nullptr) {
      p["edit"] = *edit;
      p["edit_target"] = edit_target;
    }
    en.payload = CanonicalJson(p);
    KEEL_RETURN_IF_ERROR(txn.Append(en).status());
    KEEL_ASSIGN_OR_RETURN(auto rr, LoadRun(*ws_, a->run_id));
    if (!rr || rr->status != RunStatus::kWaiting) return OkStatus();
    Run& r = *rr;
    KEEL_ASSIGN_OR_RETURN(State st, State::Parse(r.state));
    if (a->kind == ItemKind::kUncertain) {
      std::string token;
      auto ctx = ParseJson(a->context, "context");
      if (ctx.ok()) token = ctx->value("token", "");
      KEEL_ASSIGN_OR_RETURN(auto ob, LoadOutbox(*ws_, token));
      if (ob) {
        ob->state = approve ? OutboxState::kDone : OutboxState::kFailed;
        ob->error =
            approve ? "" : "operator: did not happen" + (reason.empty() ? "" : ": " + reason);
        if (approve) ob->result = CanonicalJson(json{{"confirmed_by", actor}});
        KEEL_RETURN_IF_ERROR(WriteOutbox(txn, *ob));
      }
    } else if (a->kind == ItemKind::kNeedsHuman) {
      if (!approve) {
        KEEL_ASSIGN_OR_RETURN(auto wf, impl_->Version(r.version));
        const Op& op = wf->program[static_cast<size_t>(st.pc)];
        const Step* s = st.compensating ? nullptr : op.step;
        if (s) {
          KEEL_RETURN_IF_ERROR(impl_->FailStep(txn, r, st, *wf, *s, a->step_key,
                                               "rejected by " + actor + ": " + reason));
          r.state = st.Dump();
          return WriteRun(txn, r);
        }
      }
      // Approve: try again from the next attempt (the outbox row is pending).
    }
    r.status = RunStatus::kRunning;
    r.wait_kind = WaitKind::kNone;
    r.due_us = txn.now_us();
    r.state = st.Dump();
    return WriteRun(txn, r);
  }));
  KEEL_CRASH_POINT("approval.recorded.before_resume");
  return OkStatus();
}

Status Engine::Cancel(const std::string& run_id, const std::string& actor, CancelResult* out) {
  CancelResult res;
  KEEL_RETURN_IF_ERROR(ws_->Write([&](store::Txn& txn) -> Status {
    res = CancelResult();
    return impl_->CancelInTxn(txn, run_id, actor, &res, 0);
  }));
  if (out != nullptr) *out = res;
  return OkStatus();
}

Status Engine::Retry(const std::string& run_id, const std::string& actor) {
  return ws_->Write([&](store::Txn& txn) -> Status {
    KEEL_ASSIGN_OR_RETURN(auto rr, LoadRun(*ws_, run_id));
    if (!rr) return NotFound("no run " + run_id);
    if (rr->status != RunStatus::kFailed) {
      return FailedPrecondition("run " + run_id + " is " + std::string(Word(rr->status)) +
                                "; only a failed run can be retried");
    }
    KEEL_ASSIGN_OR_RETURN(State st, State::Parse(rr->state));
    KEEL_ASSIGN_OR_RETURN(auto wf, impl_->Version(rr->version));
    if (!st.cancel.empty()) return impl_->RetryCancelSaga(txn, *rr, st, actor);
    // Resume at the failed step: a failed action's outbox row goes back to pending so the
    // same token is used again.
    const Op& op = wf->program[static_cast<size_t>(st.pc)];
    if (op.step && op.step->kind == StepKind::kAction) {
      KEEL_ASSIGN_OR_RETURN(auto ob, LoadOutbox(*ws_, ActionToken(run_id, KeyFor(*op.step, st))));
      if (ob && ob->state == OutboxState::kFailed) {
        ob->state = OutboxState::kPending;
        KEEL_RETURN_IF_ERROR(WriteOutbox(txn, *ob));
      }
    }
    st.compensating = false;
    st.ci = 0;
    st.comp = json::array();  // compensated steps are not compensated a second time
    st.attempt = 0;
    st.failure.clear();
    st.waiting.clear();
    rr->status = RunStatus::kRunning;
    rr->error.clear();
    rr->due_us = txn.now_us();
    rr->state = st.Dump();
    store::NewEntry en;
    en.actor = actor;
    en.kind = "run.retried";
    en.subject = run_id;
    en.run_id = run_id;
    en.payload = CanonicalJson(json{{"pc", st.pc}});
    KEEL_RETURN_IF_ERROR(txn.Append(en).status());
    return WriteRun(txn, *rr);
  });
}

Status Engine::CheckPauseTarget(const std::string& scope, const std::string& name) {
  if (scope == "adapter") {
    if (reg_.adapters.count(name)) return OkStatus();
    std::string known;
    for (const auto& [n, a] : reg_.adapters) known += (known.empty() ? "" : ", ") + n;
    return NotFound("no adapter named '" + name + "' (adapters: " + known + "); nothing paused");
  }
  if (scope == "agent") {
    if (reg_.agents != nullptr && reg_.agents->HasAgent(name)) return OkStatus();
    return NotFound("no agent named '" + name + "'; nothing paused");
  }
  if (scope == "workflow") {
    // Known if a file in the workflows folder defines it or a run of it was ever started
    // (a run may come from a file elsewhere).
    KEEL_ASSIGN_OR_RETURN(bool ran, store::HasWorkflowNamed(*ws_, name));
    if (ran) return OkStatus();
    for (const auto& [path, wf] : ListWorkflows()) {
      if (wf.ok() && (*wf)->name == name) return OkStatus();
    }
    return NotFound("no workflow named '" + name + "' in " + opts_.workflows_dir +
                    " and no run of one; nothing paused");
  }
  return OkStatus();
}

Status Engine::Pause(const std::string& scope, const std::string& name, const std::string& actor) {
  if (scope != "global" && scope != "workflow" && scope != "agent" && scope != "adapter") {
    return InvalidArgument("pause scope must be global, workflow, agent or adapter");
  }
  if ((scope == "global") != name.empty()) {
    return InvalidArgument(scope == "global" ? "a global pause takes no name"
                                             : "name the " + scope);
  }
  // A misspelt name would pause nothing while the operator believes it paused.
  KEEL_RETURN_IF_ERROR(CheckPauseTarget(scope, name));
  return ws_->Write([&](store::Txn& txn) -> Status {
    KEEL_RETURN_IF_ERROR(store::SetPause(txn, scope, name, true));
    store::NewEntry en;
    en.actor = actor;
    en.kind = "flow.paused";
    en.subject = scope + ":" + name;
    en.payload = CanonicalJson(json{{"scope", scope}, {"name", name}});
    return txn.Append(en).status();
  });
}

Status Engine::Resume(const std::string& scope, const std::string& name, const std::string& actor) {
  if (scope != "global" && scope != "workflow" && scope != "agent" && scope != "adapter") {
    return InvalidArgument("resume scope must be global, workflow, agent or adapter");
  }
  if ((scope == "global") != name.empty()) {
    return InvalidArgument(scope == "global" ? "a global resume takes no name"
                                             : "name the " + scope);
  }
  // Resuming what is not paused is refused: a misspelt name would leave the real pause on.
  KEEL_ASSIGN_OR_RETURN(auto pauses, store::ListPauses(*ws_));
  bool paused = false;
  std::string list;
  for (const auto& [sc, n] : pauses) {
    paused = paused || (sc == scope && n == name);
    list += (list.empty() ? "" : ", ") + sc + (n.empty() ? "" : " " + n);
  }
  if (!paused) {
    return FailedPrecondition((scope == "global" ? std::string("global") : scope + " " + name) +
                              " is not paused; " +
                              (list.empty() ? "nothing is paused" : "paused now: " + list));
  }
  return ws_->Write([&](store::Txn& txn) -> Status {
    KEEL_RETURN_IF_ERROR(store::SetPause(txn, scope, name, false));
    store::NewEntry en;
    en.actor = actor;
    en.kind = "flow.resumed";
    en.subject = scope + ":" + name;
    en.payload = CanonicalJson(json{{"scope", scope}, {"name", name}});
    KEEL_RETURN_IF_ERROR(txn.Append(en).status());
    // Parked runs look again; those still covered by another switch park again.
    KEEL_ASSIGN_OR_RETURN(auto parked,
                          store::RunsWithWaitKind(*ws_, std::string(Word(WaitKind::kPaused))));
    for (const auto& id : parked) {
      KEEL_ASSIGN_OR_RETURN(auto rr, LoadRun(*ws_, id));
      if (!rr) continue;
      rr->status = RunStatus::kRunning;
      rr->wait_kind = WaitKind::kNone;
      rr->due_us = txn.now_us();
      KEEL_RETURN_IF_ERROR(WriteRun(txn, *rr));
    }
    return OkStatus();
  });
}

bool RunIsCanceling(const store::RunRow& r) {
  // A word this build does not know is not a run being canceled; views show the word.
  auto status = ParseRunStatus(r.status);
  if (!status.ok() || IsTerminal(*status)) return false;
  auto st = State::Parse(r.state);
  return st.ok() && !st->cancel.empty();
}

}  // namespace keel::flow
