// Application services for workflows, runs, events, the worker, operator items and
// switches. Every face calls these; none reads the engine's tables itself.
//
// Thread-safety: as the Runtime (one thread at a time per Runtime).
// Errors: those of the engine (flow/engine.h) plus InvalidArgument for a bad request and
// NotFound for an unknown id (messages name what to run to find the right one).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "app/runtime.h"
#include "app/views.h"
#include "core/status.h"
#include "flow/engine.h"
#include "flow/workflow.h"

namespace keel::app {

// --- workflows
struct WorkflowListing {
  std::string path;
  Result<std::shared_ptr<const flow::Workflow>> workflow;
};
Result<std::vector<WorkflowListing>> ListWorkflows(Runtime& rt);
Result<std::shared_ptr<const flow::Workflow>> ShowWorkflow(Runtime& rt, const std::string& name);
// Validates the named files or names (all under workflows/ when empty); each result pairs
// what was asked with the workflow or its error.
Result<std::vector<WorkflowListing>> ValidateWorkflows(Runtime& rt,
                                                       const std::vector<std::string>& names);

// --- runs
struct StartRunRequest {
  std::string workflow;                             // a name under workflows/ or a file
  nlohmann::json input = nlohmann::json::object();  // must be an object
};
Result<std::string> StartRun(Runtime& rt, const StartRunRequest& req);

struct ListRunsRequest {
  std::string status;  // "" = all; else running | waiting | completed | failed | canceled
  int limit = 50;      // 1..100000
  std::string cursor;  // from a previous page's `next`
};
struct RunPage {
  std::vector<store::RunRow> runs;
  std::string next;  // empty at the end
};
// InvalidArgument: a bad status, limit or cursor.
Result<RunPage> ListRuns(Runtime& rt, const ListRunsRequest& req);

// The run with its journal, ledger timeline, operator items and outbox. NotFound.
Result<RunDetail> ShowRun(Runtime& rt, const std::string& run_id);
// The same over a workspace (tests of the flow layer use it through app/views.h).
Result<RunDetail> LoadRunDetail(store::Workspace& ws, const std::string& run_id);

Result<flow::CancelResult> CancelRun(Runtime& rt, const std::string& run_id);
Status RetryRun(Runtime& rt, const std::string& run_id);

// --- events
struct SendEventRequest {
  std::string type, key, id;
  nlohmann::json data = nlohmann::json::object();
};
Result<flow::EventResult> SendEvent(Runtime& rt, const SendEventRequest& req);

// --- the worker
struct WorkerRequest {
  bool until_idle = false;
  int batch = 64;
  int poll_ms = 200;
  int64_t lease_ms = 0;
};
struct WorkerReport {
  int64_t steps = 0;
  int64_t purged_events = 0;
  bool stopped = false;  // ended by `stop`
  // What still waits for a time when the worker exits (retries, timers, deadlines,
  // schedules, leases), earliest first: an --until-idle worker says so.
  flow::UpcomingWork upcoming;
};
// Runs the worker loop until `stop` is set (or, with until_idle, nothing is due now).
// The first worker of a workspace holds its worker lock (.worker.lock) and works as
// "primary": after a crash the next primary takes the dead worker's leases back at once.
// `log` receives progress lines meant for the operator (purged events).
Result<WorkerReport> RunWorker(Runtime& rt, const WorkerRequest& req, const std::atomic<bool>& stop,
                               const std::function<void(const std::string&)>& log);
// True if a worker process holds the workspace's worker lock now.
bool WorkerRunning(Runtime& rt);

// --- operator items (one inbox: approvals, uncertain actions, needs-human steps)
struct ListItemsRequest {
  bool all = false;    // include decided, expired and canceled items
  std::string run_id;  // only this run's
};
Result<std::vector<store::ApprovalRow>> ListItems(Runtime& rt, const ListItemsRequest& req);
// Accepts a unique prefix of an item id. NotFound / InvalidArgument (ambiguous).
Result<store::ApprovalRow> ShowItem(Runtime& rt, const std::string& id);

struct DecideRequest {
  std::vector<std::string> ids;  // one or more; prefixes accepted
  bool approve = true;
  std::optional<nlohmann::json> edit;  // approve only
  std::string reason;                  // reject: required
  std::string actor = "operator";
};
struct Decided {
  std::string id;
  Status status;       // ok, or why this item was not decided
  std::string run_id;  // the run it belongs to
  std::string next;    // what happens next, for the operator
};
// Decides each item in turn; one failure does not stop the others (each result says).
// InvalidArgument when the request itself is bad (no ids, reject without a reason).
Result<std::vector<Decided>> DecideItems(Runtime& rt, const DecideRequest& req);

// --- switches
struct SwitchRequest {
  bool pause = true;
  std::string scope = "global";  // global | workflow | agent | adapter
  std::string name;
};
Status SetPause(Runtime& rt, const SwitchRequest& req);

struct AdapterState {
  std::string name;
  AdapterEntry entry;
  bool paused = false;
};
Result<std::vector<AdapterState>> ListAdapters(Runtime& rt);
// Switches one adapter to live or sandbox: an `adapter.mode` ledger entry (authoritative
// from then on). NotFound: no such adapter; FailedPrecondition: the adapter has no live
// mode (log) or is already in that mode.
Status SetAdapterMode(Runtime& rt, const std::string& name, AdapterMode mode,
                      const std::string& actor = "operator");

}  // namespace keel::app
