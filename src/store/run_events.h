// Typed storage for buffered events and run cancellation (src/flow/engine_events.cc,
// engine_saga.cc): events that wait for a run to reach its wait_event step, which run consumed
// which event, the purge of expired events, and the child runs a cancel reaches. Kept apart from
// runs.{h,cc} (the engine's hot path) on purpose.
//
// Writes take a Txn (inside Workspace::Write, with their ledger entries). Reads take the
// Workspace and lock it; inside a Write on the same thread they see the transaction's own
// changes.
//
// Errors: Unavailable (locked, disk full), DataLoss.
// Thread-safety: as Workspace.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/workspace.h"

namespace keel::store {

struct EventRow {
  std::string id, type, key;
  std::string data = "{}";  // canonical JSON
  int64_t received_us = 0;
};

// The earliest event of (type, key) received at or after `since_us` that run `run_id` has
// not consumed yet (ties by id), or nothing.
Result<std::optional<EventRow>> NextEventForRun(Workspace& ws, const std::string& type,
                                                const std::string& key, const std::string& run_id,
                                                int64_t since_us);
// Records that `run_id` consumed `event_id` at its step `step_key`. A second delivery of the
// same event to the same run is refused with AlreadyExists (the caller's bug, not the
// operator's).
Status RecordEventDelivery(Txn& txn, const std::string& event_id, const std::string& run_id,
                           const std::string& step_key);
// The received time of the oldest stored event (nullopt when there is none).
Result<std::optional<int64_t>> OldestEventUs(Workspace& ws);
// Deletes the events received before `before_us` and their delivery rows; returns how many
// events went.
Result<int64_t> PurgeEventsBefore(Txn& txn, int64_t before_us);
// Ids of the runs started by `parent_run` (subflow steps) that are not completed, failed or
// canceled, oldest first.
Result<std::vector<std::string>> ActiveChildRuns(Workspace& ws, const std::string& parent_run);

}  // namespace keel::store
