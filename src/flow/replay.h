// Replay: checks that a run's journal (made by any earlier build) is what the current build
// would do with the same workflow version, input and recorded outputs of the steps that
// touch the world (agents, actions, waits, events, approvals, subflows). Pure steps (set,
// branch, foreach, noop) are recomputed and compared; the order of step keys must match.
// A divergence means a new build would drive runs in flight differently: the safe-deploy
// gate refuses it (tests/fixtures/flow/ holds journals of example runs; flow_replay_test).
//
// Thread-safety: pure function.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "core/status.h"
#include "flow/workflow.h"
#include "store/runs.h"

namespace keel::flow {

// Ok if the journal replays without divergence; FailedPrecondition naming the first
// divergent step otherwise. `journal` is in journal order (seq).
Status Replay(const Workflow& wf, const nlohmann::json& input,
              const std::vector<store::JournalRow>& journal);

}  // namespace keel::flow
