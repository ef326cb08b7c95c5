// Operator decisions and switches: Decide (approvals, uncertain actions, needs-human
// items, with an edit), Retry, Pause and Resume.
#include "core/crash_point.h"
#include "core/json.h"
#include "flow/edit.h"
#include "flow/engine_internal.h"
#include "store/runs.h"

namespace keel::flow {

// OK if `edit` may go with this decision of item `a`: only an approval gate that
// declares an editable value takes one, checked against the run's data now
// (docs/workflows.md "Editing at an approval").
// On success `*target` is the path the edit replaces ("steps.draft").
Status Engine::Impl::CheckDecisionEdit(const Item& a, bool approve, const json& edit,
                                       std::string* target) {
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

}  // namespace keel::flow
