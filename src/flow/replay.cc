#include "flow/replay.h"

#include <nlohmann/json.hpp>

#include "core/json.h"
#include "flow/edit.h"
#include "flow/expr.h"

namespace keel::flow {

using nlohmann::json;

namespace {

struct Frame {
  int head;
  json items;
  int64_t i;
  std::string as;
};

std::string Key(const Step& s, const std::vector<Frame>& loops) {
  if (loops.empty()) return s.id;
  std::string k = s.id + "#";
  for (size_t i = 0; i < loops.size(); ++i) k += (i ? "." : "") + std::to_string(loops[i].i);
  return k;
}

Status Diverge(const std::string& key, const std::string& why) {
  return FailedPrecondition("replay diverges at step " + key + ": " + why);
}

}  // namespace

Status Replay(const Workflow& wf, const json& input,
              const std::vector<store::JournalRow>& journal) {
  int pc = 0;
  std::vector<Frame> loops;
  json steps = json::object(), vars = json::object();
  std::vector<std::string> comp;  // keys of completed steps with a compensation
  size_t idx = 0;
  auto scope = [&]() {
    json s = {{"input", input}, {"steps", steps}, {"vars", vars}};
    for (const auto& f : loops) {
      s[f.as] = f.items[static_cast<size_t>(f.i)];
      s["loop"] = {{"index", f.i}};
    }
    return s;
  };
  for (int guard = 0; guard < 10000000; ++guard) {
    if (pc < 0 || pc >= static_cast<int>(wf.program.size())) return Diverge("?", "pc out of range");
    const Op& op = wf.program[static_cast<size_t>(pc)];
    if (op.type == Op::kEnd) break;
    if (op.type == Op::kJump) {
      pc = op.next;
      continue;
    }
    if (op.type == Op::kLoopNext) {
      Frame& f = loops.back();
      if (++f.i < static_cast<int64_t>(f.items.size())) {
        pc = f.head + 1;
      } else {
        loops.pop_back();
        ++pc;
      }
      continue;
    }
    const Step& s = *op.step;
    std::string key = Key(s, loops);
    if (idx >= journal.size()) return OkStatus();  // the run is still in flight here
    const store::JournalRow& row = journal[idx++];
    if (row.step_key != key) return Diverge(key, "the journal has " + row.step_key + " next");
    if (row.kind != StepKindName(s.kind)) {
      return Diverge(key,
                     "kind " + std::string(StepKindName(s.kind)) + " but journal has " + row.kind);
    }
    if (row.status == "failed") {
      // The rest must be the compensations, newest first.
      for (auto it = comp.rbegin(); it != comp.rend(); ++it) {
        if (idx >= journal.size()) return OkStatus();
        if (journal[idx].step_key != "comp:" + *it) {
          return Diverge(journal[idx].step_key, "expected compensation comp:" + *it);
        }
        ++idx;
      }
      break;
    }
    KEEL_ASSIGN_OR_RETURN(json out, ParseJson(row.output, "journaled output of " + key));
    int next = op.next;
    switch (s.kind) {
      case StepKind::kSet: {
        KEEL_ASSIGN_OR_RETURN(json v, RenderTemplate(*s.params, scope()));
        if (v != out) return Diverge(key, "set gives " + v.dump() + ", journal has " + out.dump());
        for (auto it = v.begin(); it != v.end(); ++it) vars[it.key()] = it.value();
        break;
      }
      case StepKind::kBranch: {
        KEEL_ASSIGN_OR_RETURN(bool c, EvalCondition(*s.condition, scope()));
        if (out.value("branch", "") != (c ? "then" : "else")) return Diverge(key, "branch differs");
        if (!c) next = op.alt;
        break;
      }
      case StepKind::kForeach: {
        KEEL_ASSIGN_OR_RETURN(json list, EvalExpr(*s.condition, scope()));
        if (!list.is_array() || out.value("count", -1) != static_cast<int64_t>(list.size())) {
          return Diverge(key, "foreach list differs");
        }
        if (list.empty()) {
          next = op.alt;
        } else {
          loops.push_back(Frame{pc, list, 0, s.as});
        }
        break;
      }
      case StepKind::kNoop:
        if (!out.is_null()) return Diverge(key, "noop with an output");
        break;
      case StepKind::kWaitEvent:
        if (out.value("timed_out", false) && !s.on_timeout.empty()) next = op.alt;
        break;
      case StepKind::kApproval:
        if (out.value("decision", "") == "timeout") next = op.alt;
        // An approved edit replaced the declared value for the later steps (as the engine
        // did when the approval completed).
        if (!s.edit_path.empty() && out.value("decision", "") == "approved" &&
            out.contains("edit")) {
          Status applied = ApplyEdit(s, out["edit"], &steps, &vars);
          if (!applied.ok()) return Diverge(key, "the approved edit: " + applied.message());
        }
        break;
      default:
        break;  // agent, action, wait, subflow: the journaled output is the truth
    }
    if (!out.is_null()) steps[s.id] = out;
    if (!s.compensate.empty()) comp.push_back(key);
    pc = next;
  }
  for (; idx < journal.size(); ++idx) {
    if (journal[idx].step_key.rfind("comp:", 0) != 0) {
      return Diverge(journal[idx].step_key, "the journal has steps after the end of the workflow");
    }
  }
  return OkStatus();
}

}  // namespace keel::flow
