// Events (docs/workflows.md "Events"): delivery to waiting runs, buffered events taken by
// runs that reach their wait_event later, and the purge after the retention.
#include <algorithm>

#include "core/crash_point.h"
#include "core/json.h"
#include "flow/engine_internal.h"
#include "store/run_events.h"
#include "store/runs.h"

namespace keel::flow {

// A run reaching wait_event first takes the earliest event of its (type, key) that arrived
// at or after the run started, is younger than the retention, and that this run has not
// consumed yet. True if one was taken (the step completed).
Result<bool> Engine::Impl::TakeBufferedEvent(store::Txn& txn, Run& r, State& st, const Step& s,
                                             const std::string& key, const std::string& event_key,
                                             int next) {
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

}  // namespace keel::flow
