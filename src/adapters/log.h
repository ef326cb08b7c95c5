// The `log` adapter: a sandbox channel that performs nothing outside keel. Every action it
// is asked for is recorded the way every adapter's actions are (the outbox row with its
// idempotency token and the ledger entries of the step), and it answers with what it was
// asked to do. Example workflows and a new workspace's first runs use it; it can never go
// live (app::Runtime refuses the switch).
//
// Thread-safety: stateless; safe from any thread.
#pragma once

#include <string>
#include <vector>

#include "flow/interfaces.h"

namespace keel::adapters {

class LogAdapter final : public flow::ActionAdapter {
 public:
  std::string name() const override { return "log"; }
  // Nothing is sent, so a repeat with the same token cannot act twice.
  bool honours_idempotency_key() const override { return true; }
  // The verbs a workflow may record through `log` before a real channel exists for them:
  // messages (send, write, notify, nudge), money (pay, charge, refund), bookings (reserve,
  // release, book, unbook), shipping and publishing.
  std::vector<std::string> actions() const override;
  // Result: {"adapter": "log", "action", "token", "logged": true}.
  Outcome Perform(const std::string& token, const std::string& action, const nlohmann::json& params,
                  const flow::CallContext& ctx, nlohmann::json* result) override;
};

}  // namespace keel::adapters
