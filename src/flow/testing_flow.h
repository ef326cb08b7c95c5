// Test fixture for the flow engine (linked only into tests): a workspace in a temp folder,
// a simulated clock, seeded randomness, the built-in counting agents and adapters.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/env.h"
#include "core/testing_util.h"
#include "flow/builtins.h"
#include "flow/engine.h"
#include "flow/testing_adapters.h"
#include "store/runs.h"
#include "store/workspace.h"

namespace keel::flow::testing {

// Durations in microseconds, the unit of the Clock.
inline constexpr int64_t kSec = 1000000;
inline constexpr int64_t kMin = 60 * kSec;
inline constexpr int64_t kHour = 60 * kMin;
inline constexpr int64_t kDay = 24 * kHour;

struct FlowFixture {
  keel::testing::TempDir tmp;
  SimulatedClock clock;
  SeededRandom random{7};
  Env env;
  std::unique_ptr<store::Workspace> ws;
  BuiltinAgents agents;
  CountingAdapter log{"log", true};
  CountingAdapter keyed{"fake_keyed", true};
  CountingAdapter smtp{"fake_smtp", false};
  std::unique_ptr<Engine> engine;

  FlowFixture();
  std::string dir() const { return tmp.Sub("ws"); }
  // Writes workflows/<name>.yaml.
  void AddWorkflow(const std::string& name, const std::string& yaml);
  // A new engine (a restarted worker) on the same workspace; `worker` names its leases.
  std::unique_ptr<Engine> NewEngine(const std::string& worker = "", int64_t lease_us = 0);
  Registry registry();
  std::string Start(const std::string& wf, const nlohmann::json& input = nlohmann::json::object());
  std::string Status(const std::string& run_id);
  nlohmann::json Show(const std::string& run_id);
  // Ticks the engine until idle; then advances the clock by `step_us` and repeats, up to
  // `total_us` of simulated time.
  void Drive(int64_t total_us, int64_t step_us);
  std::vector<store::ApprovalRow> Pending();
};

}  // namespace keel::flow::testing
