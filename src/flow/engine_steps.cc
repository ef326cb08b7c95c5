// The step interpreter (phase A of a round): advances a run by one step of its compiled
// program, or starts the step's wait or effect. docs/workflows.md has the step kinds.
#include <algorithm>

#include "core/json.h"
#include "flow/edit.h"
#include "flow/engine_internal.h"
#include "flow/expr.h"
#include "store/runs.h"

namespace keel::flow {

using store::kNeverUs;

// Returns true if a step was completed, started or a wait began.
Result<bool> Engine::Impl::Advance(store::Txn& txn, Run& r, State& st, const Workflow& wf,
                                   const Pauses& pauses, std::vector<Io>* io,
                                   bool* outbox_written) {
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

Result<bool> Engine::Impl::Park(store::Txn& txn, Run& r, State& st, const std::string& why) {
  Wait(r, st, st.waiting, WaitKind::kPaused, kNeverUs);
  KEEL_RETURN_IF_ERROR(Ledger(txn, "run.parked", r.id, "", {{"paused", why}}));
  return true;
}

// Executes (or starts) one step. pc < 0 for a compensation.
Result<bool> Engine::Impl::RunStep(store::Txn& txn, Run& r, State& st, const Workflow& wf,
                                   const Step& s, const std::string& key, int pc,
                                   const Pauses& pauses, std::vector<Io>* io, bool* outbox_written,
                                   bool compensation) {
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

Result<bool> Engine::Impl::ApprovalStep(store::Txn& txn, Run& r, State& st, const Workflow& wf,
                                        const Step& s, const std::string& key, const Op& op,
                                        const json& scope) {
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
          KEEL_RETURN_IF_ERROR(FailStep(
              txn, r, st, wf, s, key, "the approved edit cannot be applied: " + applied.message()));
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

}  // namespace keel::flow
