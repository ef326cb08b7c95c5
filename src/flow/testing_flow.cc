#include "flow/testing_flow.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "app/runs.h"
#include "app/views.h"

namespace keel::flow::testing {

FlowFixture::FlowFixture() {
  env.clock = &clock;
  env.random = &random;
  EXPECT_TRUE(store::Workspace::Init(dir(), store::InitOptions{}, env).ok());
  auto r = store::Workspace::Open(dir(), store::WorkspaceOpenOptions{}, env);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  ws = std::move(r).value();
  ::mkdir((dir() + "/workflows").c_str(), 0755);
  engine = NewEngine("w1");
}

Registry FlowFixture::registry() {
  Registry reg;
  reg.agents = &agents;
  reg.adapters = {{"log", &log}, {"fake_keyed", &keyed}, {"fake_smtp", &smtp}};
  return reg;
}

std::unique_ptr<Engine> FlowFixture::NewEngine(const std::string& worker, int64_t lease_us) {
  EngineOptions o;
  o.worker_id = worker;
  o.executor = std::make_shared<InlineExecutor>();  // a round records its own effects
  if (lease_us) o.lease_us = lease_us;
  return std::make_unique<Engine>(ws.get(), registry(), o);
}

void FlowFixture::AddWorkflow(const std::string& name, const std::string& yaml) {
  keel::testing::WriteFile(dir() + "/workflows/" + name + ".yaml", yaml);
}

std::string FlowFixture::Start(const std::string& wf, const nlohmann::json& input) {
  auto r = engine->Start(wf, input);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : "";
}

std::string FlowFixture::Status(const std::string& run_id) {
  auto r = store::GetRun(*ws, run_id);
  if (!r.ok() || !*r) return "missing";
  return (*r)->status;
}

nlohmann::json FlowFixture::Show(const std::string& run_id) {
  // The run as every face shows it (test support may use the layer above).
  auto r = app::LoadRunDetail(*ws, run_id);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? app::views::Run(*r) : nlohmann::json();
}

void FlowFixture::Drive(int64_t total_us, int64_t step_us) {
  for (int64_t t = 0; t <= total_us; t += step_us) {
    auto r = engine->RunUntilIdle();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    clock.Advance(step_us);
  }
}

std::vector<store::ApprovalRow> FlowFixture::Pending() {
  auto r = store::ListApprovals(*ws, "pending", "");
  EXPECT_TRUE(r.ok());
  return r.ok() ? *r : std::vector<store::ApprovalRow>{};
}

}  // namespace keel::flow::testing
