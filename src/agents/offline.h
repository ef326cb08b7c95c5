// The offline model provider: no network, no key, deterministic, and useful on its own.
// It reads the request's `task` and structured `input` (never the prompt text, so nothing
// in a page can steer it) and answers with one JSON object:
//
//   research    facts from memory/extract.h over each page (with the page URL as citation
//               and the byte span), a one-paragraph summary, and a transparent lead score:
//               each rule that fired adds or removes points and says so in `reasons`
//   draft       an email or proposal from a template filled with the record and the facts
//   outreach    the next step of the sequence, or wait/stop (opt-out, bounce, reply, cap)
//   accountant  invoice drafts for won deals without one, payment reconciliation, anomalies
//
// Any other task is FailedPrecondition ("configure a model provider"). Token counts are
// estimates (bytes / 4) so budgets behave as with a real model; cost is zero.
//
// Thread-safety: stateless; safe from any thread.
#pragma once

#include <memory>

#include "agents/provider.h"

namespace keel::agents {

std::unique_ptr<ModelProvider> NewOfflineProvider();

// The lead-scoring rules, exposed for tests and docs: points and the reason for each.
struct ScoreRule {
  const char* id;
  int points;
  const char* reason;
};
const std::vector<ScoreRule>& LeadScoreRules();

}  // namespace keel::agents
