// The saga and Cancel (docs/workflows.md "Cancel"): compensations of completed steps run
// newest first after a failure or a cancel; a cancel also settles the run's operator items,
// outbox rows and child runs.
#include "core/json.h"
#include "flow/engine_internal.h"
#include "store/run_events.h"
#include "store/runs.h"

namespace keel::flow {

// A compensation of the saga completed: journaled, and the saga moves to the next one.
Status Engine::Impl::CompleteCompensation(store::Txn& txn, Run& r, State& st, const Step& s,
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

// An attempt that had started when the run was canceled (outbox row `sending`): its
// result will be dropped (the cancel took the lease), so its outcome is unknown. It goes
// to the operator like any uncertain action; the run does not wait for it.
Status Engine::Impl::SurfaceCanceledAttempt(store::Txn& txn, const store::RunRow& r, Outbox ob,
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
Status Engine::Impl::CancelInTxn(store::Txn& txn, const std::string& run_id,
                                 const std::string& actor, CancelResult* res, int depth) {
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
    KEEL_RETURN_IF_ERROR(
        Ledger(txn, "run.compensating", r.id, "", {{"reason", "canceled"}, {"compensations", n}}));
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
Status Engine::Impl::RetryCancelSaga(store::Txn& txn, Run& r, State& st, const std::string& actor) {
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

Status Engine::Cancel(const std::string& run_id, const std::string& actor, CancelResult* out) {
  CancelResult res;
  KEEL_RETURN_IF_ERROR(ws_->Write([&](store::Txn& txn) -> Status {
    res = CancelResult();
    return impl_->CancelInTxn(txn, run_id, actor, &res, 0);
  }));
  if (out != nullptr) *out = res;
  return OkStatus();
}

bool RunIsCanceling(const store::RunRow& r) {
  // A word this build does not know is not a run being canceled; views show the word.
  auto status = ParseRunStatus(r.status);
  if (!status.ok() || IsTerminal(*status)) return false;
  auto st = State::Parse(r.state);
  return st.ok() && !st->cancel.empty();
}

}  // namespace keel::flow
