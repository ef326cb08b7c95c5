// Typed storage for the workflow engine (src/flow/): workflow versions, runs, the step
// journal, the outbox, operator items (approvals), events, pause switches and schedules.
// Rows are plain structs; JSON columns are carried as canonical JSON text.
//
// Writes take a Txn (they happen inside Workspace::Write, with their ledger entries).
// Reads take the Workspace and lock it; they may be called inside a Write on the same
// thread (the workspace lock is recursive) and then see the transaction's own changes.
//
// Errors: Unavailable (locked, disk full), DataLoss, AlreadyExists (duplicate key),
// NotFound where documented.
// Thread-safety: as Workspace.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "store/workspace.h"

namespace keel::store {

// due_us of a run nothing is scheduled for (terminal, parked, waiting without a deadline).
inline constexpr int64_t kNeverUs = 4000000000000000000;

struct RunRow {
  std::string id, workflow, version;
  std::string status;     // running | waiting | completed | failed | canceled
  std::string wait_kind;  // '' | timer | event | approval | paused | child | uncertain | human
  int64_t due_us = kNeverUs;
  int64_t mono_due_us = 0;  // monotonic deadline, valid only in the process `epoch`
  std::string epoch;
  std::string wait_type, wait_key;  // event waits
  std::string state = "{}", input = "{}", output = "null", error;
  std::string parent_run, parent_step;
  std::string lease_owner;
  int64_t lease_until_us = 0;
  int64_t created_us = 0, updated_us = 0;
};

struct JournalRow {
  std::string run_id, step_key, step_id, kind;
  std::string status;  // completed | failed | compensated | skipped
  int64_t attempts = 1;
  std::string output = "null", error;
  int64_t finished_us = 0;
  int64_t seq = 0;
};

struct OutboxRow {
  std::string token, run_id, step_key, adapter, action, params = "{}";
  std::string state;  // pending | sending | done | failed | uncertain
  int64_t attempts = 0;
  std::string result = "null", error;
  bool honours_key = false;
  int64_t created_us = 0, updated_us = 0;
};

struct ApprovalRow {
  std::string id, run_id, step_key;
  std::string kind;    // approval | uncertain | needs_human
  std::string status;  // pending | approved | rejected | expired | canceled
  std::string summary, recommend, context = "{}", decision = "null";
  int64_t deadline_us = 0, remind_us = 0;
  bool reminded = false;
  int64_t created_us = 0, decided_us = 0;
};

struct ScheduleRow {
  std::string workflow, path, cron, tz;
  int64_t next_us = 0, last_us = 0;
};

// Workflow versions (immutable; inserting an existing hash is a no-op).
Status PutWorkflowVersion(Txn& txn, const std::string& hash, const std::string& name,
                          const std::string& path, const std::string& content);
// NotFound if the version was never stored.
Result<std::string> GetWorkflowVersion(Workspace& ws, const std::string& hash);
// True if some version of the workflow `name` was stored (a run of it was started).
Result<bool> HasWorkflowNamed(Workspace& ws, const std::string& name);

// Runs.
Status InsertRun(Txn& txn, const RunRow& r);
// Writes the mutable columns of `r` (found by id). With `before` (the row as read in this
// transaction), only the columns that differ are written: SQLite re-indexes (and
// re-checks) every column named in an UPDATE, changed or not, and a worker round updates
// thousands of runs. NotFound if the run does not exist.
Status UpdateRun(Txn& txn, const RunRow& r, const RunRow* before = nullptr);
Result<std::optional<RunRow>> GetRun(Workspace& ws, const std::string& id);
// Ids of runs with due_us <= bound_us whose lease is free at now_us or held by `owner`,
// earliest first.
Result<std::vector<std::string>> DueRuns(Workspace& ws, int64_t bound_us, int64_t now_us,
                                         const std::string& owner, int limit);
// The smallest due_us of any run (kNeverUs if none).
Result<int64_t> NextDueUs(Workspace& ws);
// Where a page of ListRuns starts: strictly before (created_us, id). The default starts at
// the newest run.
struct RunListCursor {
  int64_t created_us = INT64_MAX;
  std::string id;
};
// Runs filtered by status ("" = all), newest first, starting after `before`.
Result<std::vector<RunRow>> ListRuns(Workspace& ws, const std::string& status, int limit,
                                     const RunListCursor& before = {});
Result<std::vector<std::string>> RunsWaitingForEvent(Workspace& ws, const std::string& type,
                                                     const std::string& key);
Result<std::vector<std::string>> RunsWithWaitKind(Workspace& ws, const std::string& wait_kind);
// Takes the lease on a run if it is free or expired (or already ours): true if taken.
Result<bool> ClaimLease(Txn& txn, const std::string& run_id, const std::string& owner,
                        int64_t now_us, int64_t until_us);
// Counts by status.
Result<std::vector<std::pair<std::string, int64_t>>> CountRuns(Workspace& ws);
// Runs waiting for a time to come: due_us in (now_us, kNeverUs), grouped by (status,
// wait_kind), earliest group first. A range of the due-time index: runs that wait for
// nobody knows when (an operator, an event without timeout) are not read.
struct DueGroup {
  std::string status, wait_kind;
  int64_t count = 0;
  int64_t earliest_us = kNeverUs;
  std::string earliest_run;  // the run due at earliest_us (the smallest id on a tie)
};
Result<std::vector<DueGroup>> FutureDueGroups(Workspace& ws, int64_t now_us);
// Runs due by now_us: those whose lease is free, and those a worker holds a lease on past
// now_us (a step in flight, or claimed by a worker that died: no other worker takes it
// before the lease ends).
struct DueNow {
  int64_t free = 0;
  int64_t leased = 0;
  int64_t first_lease_end_us = kNeverUs;
  std::string first_leased_run;
};
Result<DueNow> CountDueNow(Workspace& ws, int64_t now_us);

// Journal.
Status PutJournal(Txn& txn, const JournalRow& j);
Result<std::optional<JournalRow>> GetJournal(Workspace& ws, const std::string& run_id,
                                             const std::string& step_key);
Result<std::vector<JournalRow>> ListJournal(Workspace& ws, const std::string& run_id);

// Outbox.
Status InsertOutbox(Txn& txn, const OutboxRow& o);
Status UpdateOutbox(Txn& txn, const OutboxRow& o);
Result<std::optional<OutboxRow>> GetOutbox(Workspace& ws, const std::string& token);
// run_id "" = all runs; state "" = all states.
Result<std::vector<OutboxRow>> ListOutbox(Workspace& ws, const std::string& run_id,
                                          const std::string& state);

// Operator items.
Status InsertApproval(Txn& txn, const ApprovalRow& a);
Status UpdateApproval(Txn& txn, const ApprovalRow& a);
Result<std::optional<ApprovalRow>> GetApproval(Workspace& ws, const std::string& id);
Result<std::optional<ApprovalRow>> FindApproval(Workspace& ws, const std::string& run_id,
                                                const std::string& step_key,
                                                const std::string& kind);
// status "" = all; run_id "" = all runs.
Result<std::vector<ApprovalRow>> ListApprovals(Workspace& ws, const std::string& status,
                                               const std::string& run_id);

// Events: false if an event with this id was already received (nothing is written then).
Result<bool> InsertEvent(Txn& txn, const std::string& id, const std::string& type,
                         const std::string& key, const std::string& data, int64_t delivered);

// Ids starting with `prefix` (at most `limit`, in id order), for resolving the short ids
// an operator types.
enum class IdTable { kRuns, kApprovals };
Result<std::vector<std::string>> IdsWithPrefix(Workspace& ws, IdTable table,
                                               const std::string& prefix, int limit);

// Pause switches.
Status SetPause(Txn& txn, const std::string& scope, const std::string& name, bool paused);
Result<std::vector<std::pair<std::string, std::string>>> ListPauses(Workspace& ws);

// Schedules.
Status UpsertSchedule(Txn& txn, const ScheduleRow& s);
Result<std::vector<ScheduleRow>> ListSchedules(Workspace& ws);

}  // namespace keel::store
