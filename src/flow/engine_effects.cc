// Effects (agent calls and adapter actions): the claim and outbox row written in phase A,
// submission to the EffectExecutor (phase B), lease renewal, and the recording of outcomes
// fenced by the lease (phase C). No effect starts before its outbox row is durable. All
// of it runs on the worker thread, except what Submit hands to the executor.
#include <algorithm>

#include "core/crash_point.h"
#include "core/json.h"
#include "flow/engine_internal.h"
#include "store/leases.h"
#include "store/runs.h"

namespace keel::flow {

using store::kNeverUs;

// Room for one more effect in `lane`: at most its limit running plus one batch queued.
bool Engine::Impl::HasRoom(const std::string& lane) {
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

Result<bool> Engine::Impl::StartIo(store::Txn& txn, Run& r, State& st, const Step& s,
                                   const std::string& key, int pc, const json& scope,
                                   const Pauses& pauses, std::vector<Io>* io, bool* outbox_written,
                                   bool compensation) {
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

// What the operator sees of an action whose outcome is unknown: the outbox row and why.
std::string Engine::Impl::UncertainContext(const Outbox& ob, const std::string& run_id,
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

Status Engine::Impl::MarkUncertain(store::Txn& txn, Run& r, State& st, Outbox ob,
                                   const std::string& why) {
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

Result<bool> Engine::Impl::FinishIoOk(store::Txn& txn, Run& r, State& st, const Step& s,
                                      const std::string& key, int pc, bool compensation,
                                      const json& out) {
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

// Takes the effects a round claimed as in flight, then hands them to the executor one by
// one. Before each, leases half gone are renewed: with an inline executor a slow effect
// delays the next, whose lease another worker may have taken over meanwhile (it is then
// not started). Outcomes reach `done`; RecordDone records them.
Status Engine::Impl::SubmitAll(std::vector<Io>* io) {
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
    Submit(fresh[i]);
  }
  return OkStatus();
}

void Engine::Impl::Forget(const Effect& fx) {
  in_flight.erase(fx.io.run_id);
  if (--lane_claims[fx.lane] <= 0) lane_claims.erase(fx.lane);
}

void Engine::Impl::Submit(const std::shared_ptr<Effect>& fx) {
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
Status Engine::Impl::RecordDone(TickStats* stats) {
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

// Renews, in one transaction, the leases of the effects in flight that are half gone, so
// another worker does not take their runs over while this one is alive. Only a lease still
// ours is renewed (store/leases.h): an effect whose lease was taken over is marked lost
// and does not start if it has not yet.
Status Engine::Impl::RenewLeases() {
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
Status Engine::Impl::ReclaimOwnLeases() {
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

Status Engine::Impl::Record(store::Txn& txn, const Io& it, const Outcome& oc, const json& out) {
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

}  // namespace keel::flow
