// The flagship demo (`keel demo`, the README's main job): a fresh sandbox workspace, the
// bundled sample leads imported, the flagship flow run for each, then a checkpoint, a
// snapshot and `verify`. It narrates each step through `say`, one line at a time.
//
// Errors: FailedPrecondition when `dir` exists and is not a demo workspace (the demo deletes
// and recreates only its own folder); the errors of the steps it runs; DataLoss when the
// finished workspace fails verification.
#pragma once

#include <functional>
#include <string>

#include "core/env.h"
#include "core/status.h"

namespace keel::app {

struct DemoRequest {
  std::string dir = "demo-workspace";
  std::string data = "examples/data";  // holds leads.csv
};

Status RunDemo(const DemoRequest& req, const Env& env,
               const std::function<void(const std::string&)>& say);

}  // namespace keel::app
