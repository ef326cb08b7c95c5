#include "app/runs.h"

#include <algorithm>

#include "core/json.h"
#include "store/runs.h"
#include "store/workspace.h"

namespace keel::app {

using nlohmann::json;

namespace {

// Resolves what an operator typed (a whole id or a unique prefix of one).
Result<std::string> ResolveId(Runtime& rt, store::IdTable table, const std::string& typed,
                              const char* what, const char* list_cmd) {
  if (typed.empty()) return InvalidArgument(std::string("name the ") + what);
  // Ids are short ASCII; a huge or binary argument is refused, not echoed back whole.
  if (typed.size() > 128) {
    return InvalidArgument(std::string("a ") + what + " id is at most 128 characters, not " +
                           std::to_string(typed.size()));
  }
  KEEL_ASSIGN_OR_RETURN(auto ids, store::IdsWithPrefix(rt.ws(), table, typed, 6));
  if (std::find(ids.begin(), ids.end(), typed) != ids.end()) return typed;
  if (ids.empty()) {
    return NotFound(std::string("no ") + what + " " + typed + " (list them with `" + list_cmd +
                    "`)");
  }
  if (ids.size() > 1) {
    std::string some;
    for (size_t i = 0; i < ids.size() && i < 5; ++i) some += (i ? ", " : "") + ids[i];
    return InvalidArgument("'" + typed + "' is the start of several " + what + " ids (" + some +
                           (ids.size() > 5 ? ", ..." : "") + "); type more of it");
  }
  return ids[0];
}

std::string EncodeCursor(const store::RunRow& r) {
  return std::to_string(r.created_us) + "." + r.id;
}

Result<store::RunListCursor> DecodeCursor(const std::string& c) {
  store::RunListCursor out;
  if (c.empty()) return out;
  auto dot = c.find('.');
  if (dot == std::string::npos || dot == 0) {
    return InvalidArgument("cursor '" + c + "' is not one keel printed (use the `next` value)");
  }
  try {
    size_t used = 0;
    out.created_us = std::stoll(c.substr(0, dot), &used);
    if (used != dot) throw std::invalid_argument("trailing");
  } catch (const std::exception&) {
    return InvalidArgument("cursor '" + c + "' is not one keel printed (use the `next` value)");
  }
  out.id = c.substr(dot + 1);
  return out;
}

}  // namespace

// --- workflows

Result<std::vector<WorkflowListing>> ListWorkflows(Runtime& rt) {
  KEEL_ASSIGN_OR_RETURN(flow::Engine * e, rt.engine());
  std::vector<WorkflowListing> out;
  for (auto& [path, w] : e->ListWorkflows()) out.push_back({path, std::move(w)});
  return out;
}

Result<std::shared_ptr<const flow::Workflow>> ShowWorkflow(Runtime& rt, const std::string& name) {
  KEEL_ASSIGN_OR_RETURN(flow::Engine * e, rt.engine());
  return e->Resolve(name);
}

Result<std::vector<WorkflowListing>> ValidateWorkflows(Runtime& rt,
                                                       const std::vector<std::string>& names) {
  if (names.empty()) return ListWorkflows(rt);
  KEEL_ASSIGN_OR_RETURN(flow::Engine * e, rt.engine());
  std::vector<WorkflowListing> out;
  out.reserve(names.size());
  for (const auto& n : names) out.push_back({n, e->Resolve(n)});
  return out;
}

// --- runs

Result<std::string> StartRun(Runtime& rt, const StartRunRequest& req) {
  if (req.workflow.empty()) {
    return InvalidArgument("name a workflow: keel run WORKFLOW [--input JSON]");
  }
  if (!req.input.is_object()) return InvalidArgument("a run's input must be a JSON object");
  KEEL_ASSIGN_OR_RETURN(flow::Engine * e, rt.engine());
  return e->Start(req.workflow, req.input);
}

Result<RunPage> ListRuns(Runtime& rt, const ListRunsRequest& req) {
  static const char* kStatuses[] = {"", "running", "waiting", "completed", "failed", "canceled"};
  if (std::find(std::begin(kStatuses), std::end(kStatuses), req.status) == std::end(kStatuses)) {
    return InvalidArgument("status must be running, waiting, completed, failed or canceled, not '" +
                           req.status + "'");
  }
  if (req.limit < 1 || req.limit > 100000) {
    return InvalidArgument("limit must be between 1 and 100000");
  }
  KEEL_ASSIGN_OR_RETURN(store::RunListCursor cur, DecodeCursor(req.cursor));
  // One more than asked tells whether another page exists.
  KEEL_ASSIGN_OR_RETURN(auto rows, store::ListRuns(rt.ws(), req.status, req.limit + 1, cur));
  RunPage page;
  if (static_cast<int>(rows.size()) > req.limit) {
    rows.resize(req.limit);
    page.next = EncodeCursor(rows.back());
  }
  page.runs = std::move(rows);
  return page;
}

Result<RunDetail> LoadRunDetail(store::Workspace& ws, const std::string& run_id) {
  KEEL_ASSIGN_OR_RETURN(auto rr, store::GetRun(ws, run_id));
  if (!rr) return NotFound("no run " + run_id + " (list runs with `keel runs`)");
  RunDetail d;
  d.run = std::move(*rr);
  d.canceling = flow::RunIsCanceling(d.run);
  KEEL_ASSIGN_OR_RETURN(d.steps, store::ListJournal(ws, run_id));
  store::LedgerQuery q;
  q.run_id = run_id;
  KEEL_ASSIGN_OR_RETURN(d.timeline, ws.QueryLedger(q));
  KEEL_ASSIGN_OR_RETURN(d.items, store::ListApprovals(ws, "", run_id));
  KEEL_ASSIGN_OR_RETURN(d.outbox, store::ListOutbox(ws, run_id, ""));
  return d;
}

Result<RunDetail> ShowRun(Runtime& rt, const std::string& run_id) {
  KEEL_ASSIGN_OR_RETURN(std::string id,
                        ResolveId(rt, store::IdTable::kRuns, run_id, "run", "keel runs"));
  return LoadRunDetail(rt.ws(), id);
}

Result<flow::CancelResult> CancelRun(Runtime& rt, const std::string& run_id) {
  KEEL_ASSIGN_OR_RETURN(std::string id,
                        ResolveId(rt, store::IdTable::kRuns, run_id, "run", "keel runs"));
  KEEL_ASSIGN_OR_RETURN(flow::Engine * e, rt.engine());
  flow::CancelResult r;
  KEEL_RETURN_IF_ERROR(e->Cancel(id, "operator", &r));
  return r;
}

Status RetryRun(Runtime& rt, const std::string& run_id) {
  KEEL_ASSIGN_OR_RETURN(std::string id,
                        ResolveId(rt, store::IdTable::kRuns, run_id, "run", "keel runs"));
  KEEL_ASSIGN_OR_RETURN(flow::Engine * e, rt.engine());
  return e->Retry(id);
}

// --- events

Result<flow::EventResult> SendEvent(Runtime& rt, const SendEventRequest& req) {
  if (!req.data.is_object()) return InvalidArgument("event data must be a JSON object");
  KEEL_ASSIGN_OR_RETURN(flow::Engine * e, rt.engine());
  return e->SendEvent(req.type, req.key, req.id, req.data);
}

// --- the worker

bool WorkerRunning(Runtime& rt) {
  return rt.WorkerLockHeldElsewhere();
}

Result<WorkerReport> RunWorker(Runtime& rt, const WorkerRequest& req, const std::atomic<bool>& stop,
                               const std::function<void(const std::string&)>& log) {
  if (req.batch < 1 || req.batch > 10000) return InvalidArgument("batch must be 1..10000");
  if (req.poll_ms < 1 || req.poll_ms > 60000) return InvalidArgument("poll must be 1..60000 ms");
  if (req.lease_ms < 0 || req.lease_ms > 86400000) {
    return InvalidArgument("lease must be 1..86400000 ms");
  }
  EngineSettings es;
  es.batch = req.batch;
  es.lease_us = req.lease_ms * 1000;
  // The first worker of a workspace works as "primary": after a crash (the kernel drops
  // the lock) the next primary takes the dead worker's leases back at once instead of
  // waiting for them to expire. Other workers get random ids and respect every live lease.
  es.worker_id = rt.TakeWorkerLock() ? "primary" : "";
  KEEL_ASSIGN_OR_RETURN(flow::Engine * e, rt.engine(es));
  KEEL_RETURN_IF_ERROR(e->SyncSchedules());
  Clock* clock = rt.env().clock;
  WorkerReport rep;
  while (!stop.load()) {
    KEEL_ASSIGN_OR_RETURN(flow::TickStats t, e->Tick());
    rep.steps += t.steps;
    if (t.progressed()) continue;
    // Idle: expired events go (a read, and a transaction only when some expired).
    KEEL_ASSIGN_OR_RETURN(int64_t purged, e->PurgeExpiredEvents());
    rep.purged_events += purged;
    if (purged > 0) log("purged " + std::to_string(purged) + " expired event(s)");
    // What the busy rounds committed is made durable before the worker sleeps or exits
    // (a round is pipelined: flow/engine.h).
    KEEL_RETURN_IF_ERROR(e->WaitDurable());
    if (req.until_idle && e->InFlight() == 0) break;
    KEEL_ASSIGN_OR_RETURN(int64_t wake, e->NextWakeUs());
    int64_t poll = int64_t{req.poll_ms} * 1000;
    // Runs left waiting for room in a full lane are due now, yet nothing can be done for
    // them until an effect ends: Sleep wakes then.
    int64_t sleep = t.deferred > 0 ? poll : std::min<int64_t>(wake - clock->NowMicros(), poll);
    e->Sleep(sleep);  // ends early when an effect in flight ends
  }
  // Stopped by a signal: the effects in flight end and are recorded (none is left for an
  // operator to judge), then everything committed is made durable.
  KEEL_RETURN_IF_ERROR(e->Drain());
  rep.stopped = stop.load();
  KEEL_ASSIGN_OR_RETURN(rep.upcoming, e->Upcoming());
  return rep;
}

// --- operator items

Result<std::vector<store::ApprovalRow>> ListItems(Runtime& rt, const ListItemsRequest& req) {
  std::string run;
  if (!req.run_id.empty()) {
    KEEL_ASSIGN_OR_RETURN(run,
                          ResolveId(rt, store::IdTable::kRuns, req.run_id, "run", "keel runs"));
  }
  return store::ListApprovals(rt.ws(), req.all ? "" : "pending", run);
}

Result<store::ApprovalRow> ShowItem(Runtime& rt, const std::string& id_in) {
  KEEL_ASSIGN_OR_RETURN(std::string id, ResolveId(rt, store::IdTable::kApprovals, id_in,
                                                  "operator item", "keel approvals --all"));
  KEEL_ASSIGN_OR_RETURN(auto a, store::GetApproval(rt.ws(), id));
  if (!a) return NotFound("no operator item " + id);
  return *a;
}

Result<std::vector<Decided>> DecideItems(Runtime& rt, const DecideRequest& req) {
  if (req.ids.empty()) return InvalidArgument("name at least one item (see `keel approvals`)");
  if (!req.approve && req.reason.empty()) return InvalidArgument("a rejection needs a reason");
  if (!req.approve && req.edit) return InvalidArgument("only an approval takes an edit");
  KEEL_ASSIGN_OR_RETURN(flow::Engine * e, rt.engine());
  const bool worker = WorkerRunning(rt);
  std::vector<Decided> out;
  for (const auto& typed : req.ids) {
    Decided d;
    d.id = typed;
    auto item = ShowItem(rt, typed);
    if (!item.ok()) {
      d.status = item.status();
      out.push_back(std::move(d));
      continue;
    }
    d.id = item->id;
    d.run_id = item->run_id;
    d.status =
        e->Decide(item->id, req.approve, req.edit ? &*req.edit : nullptr, req.reason, req.actor);
    if (d.status.ok()) {
      d.next = "run " + item->run_id +
               (worker ? " continues in the running worker"
                       : " continues when a worker runs (`keel worker`, or `keel worker "
                         "--until-idle` once)");
    }
    out.push_back(std::move(d));
  }
  return out;
}

// --- switches

Status SetPause(Runtime& rt, const SwitchRequest& req) {
  KEEL_ASSIGN_OR_RETURN(flow::Engine * e, rt.engine());
  return req.pause ? e->Pause(req.scope, req.name) : e->Resume(req.scope, req.name);
}

Result<std::vector<AdapterState>> ListAdapters(Runtime& rt) {
  KEEL_ASSIGN_OR_RETURN(auto pauses, store::ListPauses(rt.ws()));
  std::vector<AdapterState> out;
  for (const auto& [name, e] : rt.adapters()) {
    AdapterState s;
    s.name = name;
    s.entry = e;
    for (const auto& [scope, n] : pauses) s.paused = s.paused || (scope == "adapter" && n == name);
    out.push_back(std::move(s));
  }
  return out;
}

Status SetAdapterMode(Runtime& rt, const std::string& name, AdapterMode mode,
                      const std::string& actor) {
  auto it = rt.adapters().find(name);
  if (it == rt.adapters().end()) {
    std::string list;
    for (const auto& [n, e] : rt.adapters()) list += (list.empty() ? "" : ", ") + n;
    return NotFound("no adapter named '" + name + "' (adapters: " + list + ")");
  }
  const AdapterEntry& e = it->second;
  if (mode == AdapterMode::kLive && !e.can_go_live) {
    return FailedPrecondition("adapter " + name +
                              " only records what it is asked to do; it has no live mode");
  }
  if (e.requested == mode) {
    return FailedPrecondition("adapter " + name + " is already switched " + AdapterModeName(mode) +
                              " (" + e.mode_source + ")");
  }
  KEEL_RETURN_IF_ERROR(rt.ws().Write([&](store::Txn& txn) -> Status {
    store::NewEntry en;
    en.actor = actor;
    en.kind = "adapter.mode";
    en.subject = "adapter:" + name;
    en.payload = CanonicalJson(json{
        {"adapter", name}, {"mode", AdapterModeName(mode)}, {"was", AdapterModeName(e.requested)}});
    return txn.Append(en).status();
  }));
  return rt.ReloadAdapterModes();
}

}  // namespace keel::app
