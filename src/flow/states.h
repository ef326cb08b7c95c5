// The states the engine keeps for runs, their waits, outbox rows and operator items, and the
// one mapping between them and the words stored in the workspace.
//
// Engine code compares and assigns these enums; the words exist only where a state is
// stored (the TEXT columns of store/runs.h) or printed (ledger payloads, views, errors). The
// words never change: workspaces written by earlier builds keep opening, and what users see
// stays the same. A stored word this build does not know (a damaged row, or a workspace
// written by a newer keel) is DataLoss, never a silent default.
#pragma once

#include <string_view>

#include "core/status.h"

namespace keel::flow {

// runs.status
enum class RunStatus { kRunning, kWaiting, kCompleted, kFailed, kCanceled };

// runs.wait_kind: what a waiting run waits for. kNone (the empty word) for a run that does
// not wait. kPaused: parked by a pause switch (the run is `waiting` until a resume).
enum class WaitKind { kNone, kTimer, kEvent, kApproval, kChild, kUncertain, kHuman, kPaused };

// outbox.state: an action's delivery. pending = a retry is due; sending = an attempt was
// claimed (and may have started); done / failed = its outcome is known; uncertain = the
// operator must say whether it happened.
enum class OutboxState { kPending, kSending, kDone, kFailed, kUncertain };

// approvals.kind: an approval gate, an action of unknown outcome, or a step that needs a
// person.
enum class ItemKind { kApproval, kUncertain, kNeedsHuman };

// approvals.status
enum class ItemStatus { kPending, kApproved, kRejected, kExpired, kCanceled };

// The stored (and printed) word of a state.
std::string_view Word(RunStatus s);
std::string_view Word(WaitKind k);
std::string_view Word(OutboxState s);
std::string_view Word(ItemKind k);
std::string_view Word(ItemStatus s);

// The state a stored word names. DataLoss, naming the column and the word, for a word that
// names none.
Result<RunStatus> ParseRunStatus(std::string_view word);
Result<WaitKind> ParseWaitKind(std::string_view word);
Result<OutboxState> ParseOutboxState(std::string_view word);
Result<ItemKind> ParseItemKind(std::string_view word);
Result<ItemStatus> ParseItemStatus(std::string_view word);

// A run in one of these states never moves again (`keel run retry` aside).
inline bool IsTerminal(RunStatus s) {
  return s == RunStatus::kCompleted || s == RunStatus::kFailed || s == RunStatus::kCanceled;
}

}  // namespace keel::flow
