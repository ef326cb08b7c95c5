#include "app/agents.h"

#include "core/clock.h"

namespace keel::app {

Result<std::vector<const agents::AgentContract*>> ListAgents(Runtime& rt) {
  KEEL_ASSIGN_OR_RETURN(agents::AgentRunner * runner, rt.agents());
  return runner->List();
}

Result<const agents::AgentContract*> ShowAgent(Runtime& rt, const std::string& name) {
  KEEL_ASSIGN_OR_RETURN(agents::AgentRunner * runner, rt.agents());
  const agents::AgentContract* c = runner->Find(name);
  if (c == nullptr) return NotFound("no agent named '" + name + "' (see `keel agent list`)");
  return c;
}

Result<agents::AgentOutcome> RunAgent(Runtime& rt, const RunAgentRequest& req) {
  KEEL_ASSIGN_OR_RETURN(agents::AgentRunner * runner, rt.agents());
  agents::AgentContext ac;
  ac.record_id = req.record_id;
  ac.run_id = req.run_id;
  ac.step_id = req.step_id;
  ac.provider = req.provider;
  ac.untrusted = req.untrusted;
  ac.use_cache = req.use_cache;
  return runner->Run(req.agent, req.input_json, ac);
}

Result<store::CostReport> QueryCost(Runtime& rt, const CostRequest& req) {
  store::CostQuery q;
  q.record_id = req.record_id;
  q.run_id = req.run_id;
  q.agent = req.agent;
  if (!req.since.empty() && !ParseTimeMicros(req.since, &q.since_us)) {
    return InvalidArgument("--since '" + req.since +
                           "' is not a date (want 2026-01-31 or RFC 3339)");
  }
  return store::QueryCost(rt.ws(), q);
}

}  // namespace keel::app
