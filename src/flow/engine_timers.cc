// What comes due with time: deadlines of waiting runs (timers, event timeouts, approval
// reminders and deadlines), cron schedules, and the Upcoming view of both.
#include <algorithm>
#include <map>

#include "core/json.h"
#include "flow/cron.h"
#include "flow/engine_internal.h"
#include "store/runs.h"

namespace keel::flow {

using store::kNeverUs;

// A waiting run whose deadline came: a timer fires, an event wait times out, an approval
// reminds or times out (*fired). False if it was not due yet (its wall deadline may have
// been re-anchored) or its kind of wait does nothing on a deadline.
Result<bool> Engine::Impl::Due(store::Txn& txn, Run& r, State& st, const Workflow& wf,
                               bool* fired) {
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
      // An `on_timeout:` branch wins over a default decision; with neither it expires.
      if (s.on_timeout.empty() && !s.default_decision.empty()) {
        a->status = s.default_decision == "approve" ? ItemStatus::kApproved : ItemStatus::kRejected;
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
      KEEL_ASSIGN_OR_RETURN(auto cron,
                            ParseCron(w.schedule_cron, w.schedule_tz, impl_->zones.get()));
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

// Cron schedules due at `now` start their runs in the round's transaction; a schedule whose
// workflow file no longer loads is skipped (and moves on to its next time).
Status Engine::Impl::FireSchedules(store::Txn& txn, const Pauses& pauses, int64_t now,
                                   TickStats* stats) {
  KEEL_ASSIGN_OR_RETURN(auto scheds, store::ListSchedules(*e->ws_));
  for (auto& sc : scheds) {
    if (sc.next_us > now) continue;
    if (pauses.count({"workflow", sc.workflow})) continue;
    auto wf = e->LoadFile(sc.path);
    KEEL_ASSIGN_OR_RETURN(auto cron, ParseCron(sc.cron, sc.tz, zones.get()));
    int64_t fired_for = sc.next_us;
    KEEL_ASSIGN_OR_RETURN(sc.next_us, NextFire(cron, now));
    sc.last_us = fired_for;
    KEEL_RETURN_IF_ERROR(store::UpsertSchedule(txn, sc));
    if (!wf.ok()) {
      KEEL_RETURN_IF_ERROR(Ledger(txn, "schedule.skipped", "", "",
                                  {{"workflow", sc.workflow}, {"error", wf.status().message()}}));
      continue;
    }
    KEEL_ASSIGN_OR_RETURN(
        auto r, StartRun(txn, **wf, json{{"scheduled_for", FormatTimeMicros(fired_for)}}, "", ""));
    KEEL_RETURN_IF_ERROR(Ledger(txn, "schedule.fired", r.id, "",
                                {{"workflow", sc.workflow}, {"for", FormatTimeMicros(fired_for)}}));
    ++stats->schedules;
  }
  return OkStatus();
}

}  // namespace keel::flow
