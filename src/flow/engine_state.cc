// A run's state and its transitions: the in-memory state, the typed store rows, the
// journal and ledger entries, and the moves every kind of step shares (complete, wait,
// fail, finish, start). docs/architecture.md "Flow".
#include <algorithm>
#include <utility>

#include "core/hash.h"
#include "core/json.h"
#include "flow/engine_internal.h"
#include "store/runs.h"

namespace keel::flow {

using store::kNeverUs;

namespace {

constexpr char kActor[] = "flow";
// How long a run that stays due keeps its place in the queue before going to the back
// (Impl::Complete).
constexpr int64_t kRequeueUs = 50000;

std::string Payload(const json& j) {
  return CanonicalJson(j);
}

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

}  // namespace

Result<State> State::Parse(const std::string& text) {
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

std::string State::Dump() const {
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

std::string KeyFor(const Step& s, const State& st) {
  if (st.loops.empty()) return s.id;
  std::string k = s.id + "#";
  for (size_t i = 0; i < st.loops.size(); ++i) {
    if (i) k += ".";
    k += std::to_string(st.loops[i].i);
  }
  return k;
}

json LedgerOutput(const std::string& canonical) {
  if (canonical.size() <= 2048) {
    auto p = ParseJson(canonical, "output");
    if (p.ok()) return *p;
  }
  return json{{"sha256", Sha256Hex(canonical)}, {"bytes", canonical.size()}};
}

Result<Run> Run::From(store::RunRow row) {
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

Result<Outbox> Outbox::From(store::OutboxRow row) {
  auto state = ParseOutboxState(row.state);
  if (!state.ok()) return state.status().WithContext("outbox row " + row.token);
  Outbox ob;
  static_cast<store::OutboxRow&>(ob) = std::move(row);
  ob.state = *state;
  return ob;
}

Result<Item> Item::From(store::ApprovalRow row) {
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
Result<std::optional<Run>> LoadRun(store::Workspace& ws, const std::string& id) {
  return Typed<Run>(store::GetRun(ws, id));
}
Status AddRun(store::Txn& txn, Run& r) {
  return store::InsertRun(txn, r.Stored());
}
Status WriteRun(store::Txn& txn, Run& r, const Run* before) {
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

Result<State> Engine::Impl::ParseState(const store::RunRow& r) {
  auto it = parsed.find(r.id);
  if (it != parsed.end() && it->second.first == r.state) return it->second.second;
  return State::Parse(r.state);
}

Result<std::shared_ptr<const Workflow>> Engine::Impl::Version(const std::string& hash) {
  {
    std::lock_guard<std::mutex> l(cache_mu);
    auto it = by_version.find(hash);
    if (it != by_version.end()) return it->second;
  }
  KEEL_ASSIGN_OR_RETURN(std::string content, store::GetWorkflowVersion(*e->ws_, hash));
  KEEL_ASSIGN_OR_RETURN(auto wf, ParseWorkflow(content, "workflow version " + hash.substr(0, 12)));
  std::lock_guard<std::mutex> l(cache_mu);
  by_version[hash] = wf;
  return wf;
}

json Engine::Impl::Scope(const store::RunRow& r, const State& st) {
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

Status Engine::Impl::Ledger(store::Txn& txn, const std::string& kind, const std::string& run_id,
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

Status Engine::Impl::Journal(store::Txn& txn, const store::RunRow& r, State& st,
                             const std::string& key, const Step& s, const std::string& status,
                             int attempts, const json& output, const std::string& error) {
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
Status Engine::Impl::Complete(store::Txn& txn, Run& r, State& st, const Step& s,
                              const std::string& key, const json& output, int next_pc) {
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

void Engine::Impl::Wait(Run& r, State& st, const std::string& key, WaitKind kind, int64_t due_us) {
  r.status = RunStatus::kWaiting;
  r.wait_kind = kind;
  r.due_us = due_us;
  r.lease_owner.clear();
  r.lease_until_us = 0;
  st.waiting = key;
}

// Ends the run (completed / failed / canceled) and wakes a parent waiting for it.
Status Engine::Impl::Finish(store::Txn& txn, Run& r, State& st, RunStatus status_in,
                            const std::string& error) {
  // The saga of a canceled run ends `canceled` once every compensation is done (Advance
  // finishes a saga as `failed`); a compensation that fails leaves the run `failed`
  // (FailStep clears `compensating` first), so the operator sees it.
  const RunStatus status = status_in == RunStatus::kFailed && st.compensating && !st.cancel.empty()
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
    if (parent && parent->status == RunStatus::kWaiting && parent->wait_kind == WaitKind::kChild) {
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
Status Engine::Impl::FailStep(store::Txn& txn, Run& r, State& st, const Workflow& wf, const Step& s,
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

std::shared_ptr<const Workflow> Engine::Impl::CurrentWf(const store::RunRow& r) {
  auto v = Version(r.version);
  return v.ok() ? *v : nullptr;
}

Result<Run> Engine::Impl::StartRun(store::Txn& txn, const Workflow& wf, const json& input,
                                   const std::string& parent, const std::string& parent_step) {
  if (!input.is_object()) return InvalidArgument("the run input must be a JSON object");
  for (const auto& req : wf.required_inputs) {
    if (!input.contains(req)) {
      return InvalidArgument("workflow " + wf.name + " needs input field '" + req + "'");
    }
  }
  KEEL_RETURN_IF_ERROR(store::PutWorkflowVersion(txn, wf.version, wf.name, wf.source, wf.content));
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

}  // namespace keel::flow
