// Workflow definitions: the YAML format (docs/workflows.md), validation with errors that
// name the file, line and field, content-hash versions, and the flat program the engine
// executes.
//
// A workflow is a tree of steps (branches, loops and timeout branches nest lists of steps).
// Compile() flattens it into a vector of Ops addressed by index (the run's program counter),
// so a run's position is one integer plus its loop indexes, both journaled with each step.
//
// Ownership: values; a Workflow is immutable once loaded and shared (shared_ptr) by runs.
// Thread-safety: immutable values are safe to share between threads.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "flow/expr.h"

namespace keel::flow {

// Names of `keel run` subcommands (`keel run show ID`, `keel run cancel ID`, `keel run retry
// ID`). A workflow with one of these names could not be started by name (`keel run retry`
// would run the subcommand), so Engine::Check refuses it. The CLI builds its subcommands
// from the same list. Stored versions of such workflows (runs in flight) still load.
inline constexpr std::string_view kReservedWorkflowNames[] = {"show", "cancel", "retry"};
// True if `name` is one of kReservedWorkflowNames.
bool IsReservedWorkflowName(std::string_view name);

enum class StepKind {
  kAgent,      // call an agent
  kAction,     // perform an adapter action (through the outbox)
  kApproval,   // a gate decided by the operator (when its policy fires)
  kWait,       // wait for a duration or until a time
  kWaitEvent,  // wait for an event (type + key) with a timeout branch
  kBranch,     // if / then / else
  kSubflow,    // start a child run and wait for it
  kForeach,    // run a body once per item of a list
  kSet,        // assign values to vars
  kNoop,       // do nothing (journaled: useful for benchmarks and placeholders)
  kFail,       // fail the run with a message (tests compensation paths)
};
std::string_view StepKindName(StepKind k);

struct RetryPolicy {
  int max_attempts = 3;
  int64_t initial_us = 1000000;  // 1 s
  int64_t max_us = 300000000;    // 5 min cap
  double multiplier = 2.0;
  double jitter = 0.2;  // +-20 %
};

struct Step;
using StepList = std::vector<std::shared_ptr<const Step>>;

struct Step {
  std::string id;
  StepKind kind = StepKind::kNoop;
  int line = 0;  // 1-based line in the file
  // agent / action
  std::string agent;
  std::string adapter, action;                   // "log.write" -> adapter "log", action "write"
  std::shared_ptr<const nlohmann::json> params;  // template (input:/params:/set:)
  RetryPolicy retry;
  std::string compensate;  // name of a step under `compensations:`
  // approval
  std::shared_ptr<const Expr> policy;  // fires the gate when true; null = always
  std::shared_ptr<const nlohmann::json> summary, context;  // templates
  std::string recommend = "approve";
  std::string default_decision;  // at timeout when there is no on_timeout branch
  int64_t remind_after_us = 0;
  std::string on_reject = "fail";  // fail | continue
  // `approval: {edit: steps.draft}`: the value the operator may edit with `keel approve
  // --edit`; the approved edit replaces it for every later step. A path into the run data:
  // "steps" or "vars", then a step id or var name, then fields ({"steps", "draft", "email"}).
  // Empty: the approval takes no edit (Engine::Decide refuses one).
  std::vector<std::string> edit_path;
  std::string edit;  // the path as written, for messages
  // wait / wait_event / approval timeouts
  int64_t duration_us = 0;
  std::shared_ptr<const nlohmann::json> until;  // template giving an RFC 3339 time
  std::string event_type;
  std::shared_ptr<const nlohmann::json> event_key;  // template
  int64_t timeout_us = 0;
  StepList on_timeout;
  // branch / foreach
  std::shared_ptr<const Expr> condition;  // if / foreach list
  StepList then_steps, else_steps, body;
  std::string as = "item";
  // subflow
  std::string subflow;
  // fail
  std::string message;
};

// One instruction of the compiled program.
struct Op {
  enum Type { kStep, kJump, kLoopNext, kEnd } type = kStep;
  const Step* step = nullptr;
  int next = -1;  // kStep: where to go on normal completion; kJump: target
  int alt = -1;   // branch: else; wait_event/approval: timeout branch; foreach: after loop
  int head = -1;  // kLoopNext: the foreach op
};

struct Workflow {
  std::string name;
  int name_line = 0;  // 1-based line of `name:` (for messages)
  std::string description;
  std::string version;  // SHA-256 hex of the file content
  std::string source;   // the file path it was loaded from (for messages)
  std::string content;  // the exact text (kept with every run)
  std::string schedule_cron, schedule_tz;
  std::vector<std::string> required_inputs;
  StepList steps;
  StepList compensations;
  std::vector<Op> program;       // compiled from `steps`
  std::vector<Op> comp_program;  // one kStep op per compensation, in definition order
  // Names referenced by `subflow:` steps (resolved and pinned when a run starts).
  std::vector<std::string> subflows;
  std::vector<std::string> agents, adapters;

  const Step* FindCompensation(const std::string& name) const;
};

// Parses and validates `content` (the text of `path`). InvalidArgument names the file,
// line and field: "workflows/a.yaml:7: steps[1].retry.max_attempts: must be 1..100".
Result<std::shared_ptr<const Workflow>> ParseWorkflow(const std::string& content,
                                                      const std::string& path);

// Parses "250ms", "30s", "5m", "2h", "3d", "1w" (also plain seconds as a number).
Result<int64_t> ParseDuration(const std::string& text);

// Workflow files in a folder: "*.yaml" / "*.yml", sorted by name.
std::vector<std::string> ListWorkflowFiles(const std::string& dir);

}  // namespace keel::flow
