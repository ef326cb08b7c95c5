#include "flow/workflow.h"

#include <dirent.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "core/hash.h"

namespace keel::flow {

bool IsReservedWorkflowName(std::string_view name) {
  for (std::string_view r : kReservedWorkflowNames)
    if (name == r) return true;
  return false;
}

std::string_view StepKindName(StepKind k) {
  switch (k) {
    case StepKind::kAgent:
      return "agent";
    case StepKind::kAction:
      return "action";
    case StepKind::kApproval:
      return "approval";
    case StepKind::kWait:
      return "wait";
    case StepKind::kWaitEvent:
      return "wait_event";
    case StepKind::kBranch:
      return "branch";
    case StepKind::kSubflow:
      return "subflow";
    case StepKind::kForeach:
      return "foreach";
    case StepKind::kSet:
      return "set";
    case StepKind::kNoop:
      return "noop";
    case StepKind::kFail:
      return "fail";
  }
  return "noop";
}

const Step* Workflow::FindCompensation(const std::string& n) const {
  for (const auto& s : compensations)
    if (s->id == n) return s.get();
  return nullptr;
}

Result<int64_t> ParseDuration(const std::string& t) {
  if (t.empty()) return InvalidArgument("empty duration");
  size_t i = 0;
  while (i < t.size() && (std::isdigit(static_cast<unsigned char>(t[i])) || t[i] == '.')) ++i;
  if (i == 0) return InvalidArgument("duration '" + t + "' must start with a number");
  double n;
  try {
    n = std::stod(t.substr(0, i));
  } catch (...) {
    return InvalidArgument("bad duration '" + t + "'");
  }
  std::string unit = t.substr(i);
  double mult;
  if (unit == "ms")
    mult = 1e3;
  else if (unit == "s" || unit.empty())
    mult = 1e6;
  else if (unit == "m")
    mult = 60e6;
  else if (unit == "h")
    mult = 3600e6;
  else if (unit == "d")
    mult = 86400e6;
  else if (unit == "w")
    mult = 7 * 86400e6;
  else
    return InvalidArgument("duration '" + t + "': unit must be ms, s, m, h, d or w");
  double us = n * mult;
  if (!(us >= 0) || us > 3.2e15) return InvalidArgument("duration '" + t + "' is out of range");
  return static_cast<int64_t>(std::llround(us));
}

std::vector<std::string> ListWorkflowFiles(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    auto ends = [&](const std::string& s) {
      return n.size() > s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0;
    };
    if (ends(".yaml") || ends(".yml")) out.push_back(dir + "/" + n);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

namespace {

nlohmann::json ToJson(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json o = nlohmann::json::object();
      for (auto it = n.begin(); it != n.end(); ++it) o[it->first.Scalar()] = ToJson(it->second);
      return o;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& x : n) a.push_back(ToJson(x));
      return a;
    }
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (n.Tag() == "!") return s;  // quoted: always a string
      if (s == "true" || s == "True") return true;
      if (s == "false" || s == "False") return false;
      if (s == "null" || s == "~") return nullptr;
      if (!s.empty() && (std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-')) {
        char* end = nullptr;
        long long v = std::strtoll(s.c_str(), &end, 10);
        if (*end == '\0') return v;
        double d = std::strtod(s.c_str(), &end);
        if (*end == '\0') return d;
      }
      return s;
    }
    default:
      return nullptr;
  }
}

class Loader {
 public:
  Loader(const std::string& path) : path_(path) {}

  Status Err(const YAML::Node& n, const std::string& field, const std::string& msg) {
    int line = n.IsDefined() ? n.Mark().line + 1 : 0;
    return InvalidArgument(path_ + ":" + std::to_string(line) + ": " + field + ": " + msg);
  }

  Result<std::string> Str(const YAML::Node& n, const std::string& field) {
    if (!n.IsScalar()) return Err(n, field, "must be a text value");
    return n.Scalar();
  }

  Result<int64_t> Duration(const YAML::Node& n, const std::string& field) {
    KEEL_ASSIGN_OR_RETURN(std::string s, Str(n, field));
    auto d = ParseDuration(s);
    if (!d.ok()) return Err(n, field, d.status().message());
    return *d;
  }

  Result<std::shared_ptr<const Expr>> Expression(const YAML::Node& n, const std::string& field) {
    KEEL_ASSIGN_OR_RETURN(std::string s, Str(n, field));
    auto e = ParseExpr(s);
    if (!e.ok()) return Err(n, field, e.status().message());
    return *e;
  }

  Result<std::shared_ptr<const nlohmann::json>> Template(const YAML::Node& n,
                                                         const std::string& field) {
    auto j = std::make_shared<const nlohmann::json>(ToJson(n));
    Status s = ValidateTemplate(*j);
    if (!s.ok()) return Err(n, field, s.message());
    return j;
  }

  Result<StepList> Steps(const YAML::Node& n, const std::string& field) {
    if (!n.IsSequence()) return Err(n, field, "must be a list of steps");
    StepList out;
    for (size_t i = 0; i < n.size(); ++i) {
      KEEL_ASSIGN_OR_RETURN(auto s, OneStep(n[i], field + "[" + std::to_string(i) + "]"));
      out.push_back(std::move(s));
    }
    return out;
  }

  Result<std::shared_ptr<const Step>> OneStep(const YAML::Node& n, const std::string& f) {
    if (!n.IsMap()) return Err(n, f, "a step must be a mapping with an `id`");
    auto s = std::make_shared<Step>();
    s->line = n.Mark().line + 1;
    static const std::set<std::string> kKnown = {
        "id",         "agent", "action",     "approval",   "wait",      "until",
        "wait_event", "if",    "then",       "else",       "subflow",   "foreach",
        "as",         "do",    "set",        "noop",       "fail",      "input",
        "params",     "retry", "compensate", "on_timeout", "on_reject", "description"};
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string k = it->first.Scalar();
      if (!kKnown.count(k)) return Err(it->first, f + "." + k, "unknown field");
    }
    if (!n["id"]) return Err(n, f + ".id", "every step needs an id");
    KEEL_ASSIGN_OR_RETURN(s->id, Str(n["id"], f + ".id"));
    if (s->id.empty() || s->id.find_first_of("#/:. ") != std::string::npos) {
      return Err(n["id"], f + ".id", "must be non-empty without '#', '/', ':', '.' or spaces");
    }
    if (!ids_.insert(s->id).second)
      return Err(n["id"], f + ".id", "duplicate step id '" + s->id + "'");
    int kinds = 0;
    for (const char* k : {"agent", "action", "approval", "wait", "until", "wait_event", "if",
                          "subflow", "foreach", "set", "noop", "fail"})
      if (n[k]) ++kinds;
    if (kinds != 1) {
      return Err(n, f,
                 "a step needs exactly one of agent, action, approval, wait, until, "
                 "wait_event, if, subflow, foreach, set, noop, fail");
    }
    if (n["input"]) {
      KEEL_ASSIGN_OR_RETURN(s->params, Template(n["input"], f + ".input"));
    }
    if (n["params"]) {
      KEEL_ASSIGN_OR_RETURN(s->params, Template(n["params"], f + ".params"));
    }
    if (n["compensate"]) {
      KEEL_ASSIGN_OR_RETURN(s->compensate, Str(n["compensate"], f + ".compensate"));
      comp_refs_.push_back({s->compensate, n["compensate"], f + ".compensate"});
    }
    if (n["retry"]) KEEL_RETURN_IF_ERROR(Retry(n["retry"], f + ".retry", &s->retry));
    if (n["agent"]) {
      s->kind = StepKind::kAgent;
      KEEL_ASSIGN_OR_RETURN(s->agent, Str(n["agent"], f + ".agent"));
      wf_->agents.push_back(s->agent);
    } else if (n["action"]) {
      s->kind = StepKind::kAction;
      KEEL_ASSIGN_OR_RETURN(std::string a, Str(n["action"], f + ".action"));
      auto dot = a.find('.');
      if (dot == std::string::npos || dot == 0 || dot + 1 == a.size()) {
        return Err(n["action"], f + ".action", "must be ADAPTER.ACTION (e.g. log.write)");
      }
      s->adapter = a.substr(0, dot);
      s->action = a.substr(dot + 1);
      wf_->adapters.push_back(s->adapter);
    } else if (n["approval"]) {
      s->kind = StepKind::kApproval;
      KEEL_RETURN_IF_ERROR(Approval(n["approval"], f + ".approval", s.get()));
    } else if (n["wait"]) {
      s->kind = StepKind::kWait;
      KEEL_ASSIGN_OR_RETURN(s->duration_us, Duration(n["wait"], f + ".wait"));
    } else if (n["until"]) {
      s->kind = StepKind::kWait;
      KEEL_ASSIGN_OR_RETURN(s->until, Template(n["until"], f + ".until"));
    } else if (n["wait_event"]) {
      s->kind = StepKind::kWaitEvent;
      const YAML::Node& w = n["wait_event"];
      if (!w.IsMap()) return Err(w, f + ".wait_event", "must be a mapping with type, key, timeout");
      if (!w["type"]) return Err(w, f + ".wait_event.type", "is required");
      KEEL_ASSIGN_OR_RETURN(s->event_type, Str(w["type"], f + ".wait_event.type"));
      if (!w["key"]) return Err(w, f + ".wait_event.key", "is required");
      KEEL_ASSIGN_OR_RETURN(s->event_key, Template(w["key"], f + ".wait_event.key"));
      if (w["timeout"]) {
        KEEL_ASSIGN_OR_RETURN(s->timeout_us, Duration(w["timeout"], f + ".wait_event.timeout"));
      }
    } else if (n["if"]) {
      s->kind = StepKind::kBranch;
      KEEL_ASSIGN_OR_RETURN(s->condition, Expression(n["if"], f + ".if"));
      if (!n["then"]) return Err(n, f + ".then", "an `if` step needs `then`");
      KEEL_ASSIGN_OR_RETURN(s->then_steps, Steps(n["then"], f + ".then"));
      if (n["else"]) {
        KEEL_ASSIGN_OR_RETURN(s->else_steps, Steps(n["else"], f + ".else"));
      }
    } else if (n["subflow"]) {
      s->kind = StepKind::kSubflow;
      KEEL_ASSIGN_OR_RETURN(s->subflow, Str(n["subflow"], f + ".subflow"));
      wf_->subflows.push_back(s->subflow);
    } else if (n["foreach"]) {
      s->kind = StepKind::kForeach;
      KEEL_ASSIGN_OR_RETURN(s->condition, Expression(n["foreach"], f + ".foreach"));
      if (n["as"]) {
        KEEL_ASSIGN_OR_RETURN(s->as, Str(n["as"], f + ".as"));
      }
      if (!n["do"]) return Err(n, f + ".do", "a `foreach` step needs `do`");
      KEEL_ASSIGN_OR_RETURN(s->body, Steps(n["do"], f + ".do"));
    } else if (n["set"]) {
      s->kind = StepKind::kSet;
      if (!n["set"].IsMap())
        return Err(n["set"], f + ".set", "must be a mapping of names to values");
      KEEL_ASSIGN_OR_RETURN(s->params, Template(n["set"], f + ".set"));
    } else if (n["noop"]) {
      s->kind = StepKind::kNoop;
    } else if (n["fail"]) {
      s->kind = StepKind::kFail;
      KEEL_ASSIGN_OR_RETURN(s->message, Str(n["fail"], f + ".fail"));
    }
    if (n["on_timeout"]) {
      if (s->kind != StepKind::kWaitEvent && s->kind != StepKind::kApproval) {
        return Err(n["on_timeout"], f + ".on_timeout",
                   "only wait_event and approval steps time out");
      }
      KEEL_ASSIGN_OR_RETURN(s->on_timeout, Steps(n["on_timeout"], f + ".on_timeout"));
    }
    if (n["on_reject"]) {
      KEEL_ASSIGN_OR_RETURN(s->on_reject, Str(n["on_reject"], f + ".on_reject"));
      if (s->on_reject != "fail" && s->on_reject != "continue") {
        return Err(n["on_reject"], f + ".on_reject", "must be fail or continue");
      }
    }
    if (s->kind == StepKind::kWaitEvent && !s->on_timeout.empty() && s->timeout_us == 0) {
      return Err(n, f + ".wait_event.timeout", "on_timeout needs a timeout");
    }
    return std::shared_ptr<const Step>(s);
  }

  Status Retry(const YAML::Node& r, const std::string& f, RetryPolicy* p) {
    if (!r.IsMap()) return Err(r, f, "must be a mapping");
    for (auto it = r.begin(); it != r.end(); ++it) {
      std::string k = it->first.Scalar();
      const YAML::Node& v = it->second;
      if (k == "max_attempts") {
        int64_t n = 0;
        char* end = nullptr;
        n = v.IsScalar() ? std::strtoll(v.Scalar().c_str(), &end, 10) : -1;
        if (end == nullptr || *end != '\0') n = -1;
        if (n < 1 || n > 100) return Err(v, f + ".max_attempts", "must be a whole number 1..100");
        p->max_attempts = static_cast<int>(n);
      } else if (k == "backoff") {
        KEEL_ASSIGN_OR_RETURN(p->initial_us, Duration(v, f + ".backoff"));
      } else if (k == "max_backoff") {
        KEEL_ASSIGN_OR_RETURN(p->max_us, Duration(v, f + ".max_backoff"));
      } else if (k == "multiplier" || k == "jitter") {
        double d = -1;
        char* end = nullptr;
        if (v.IsScalar()) d = std::strtod(v.Scalar().c_str(), &end);
        if (end == nullptr || *end != '\0') d = -1;
        if (k == "multiplier" && (d < 1 || d > 10))
          return Err(v, f + ".multiplier", "must be 1..10");
        if (k == "jitter" && (d < 0 || d > 1)) return Err(v, f + ".jitter", "must be 0..1");
        (k == "multiplier" ? p->multiplier : p->jitter) = d;
      } else {
        return Err(it->first, f + "." + k,
                   "unknown field (max_attempts, backoff, max_backoff, "
                   "multiplier, jitter)");
      }
    }
    return OkStatus();
  }

  Status Approval(const YAML::Node& a, const std::string& f, Step* s) {
    if (!a.IsMap()) return Err(a, f, "must be a mapping (when, summary, recommend, timeout, ...)");
    for (auto it = a.begin(); it != a.end(); ++it) {
      std::string k = it->first.Scalar();
      const YAML::Node& v = it->second;
      if (k == "when") {
        KEEL_ASSIGN_OR_RETURN(s->policy, Expression(v, f + ".when"));
      } else if (k == "summary") {
        KEEL_ASSIGN_OR_RETURN(s->summary, Template(v, f + ".summary"));
      } else if (k == "context") {
        KEEL_ASSIGN_OR_RETURN(s->context, Template(v, f + ".context"));
      } else if (k == "recommend") {
        KEEL_ASSIGN_OR_RETURN(s->recommend, Str(v, f + ".recommend"));
        if (s->recommend != "approve" && s->recommend != "reject") {
          return Err(v, f + ".recommend", "must be approve or reject");
        }
      } else if (k == "timeout") {
        KEEL_ASSIGN_OR_RETURN(s->timeout_us, Duration(v, f + ".timeout"));
      } else if (k == "remind_after") {
        KEEL_ASSIGN_OR_RETURN(s->remind_after_us, Duration(v, f + ".remind_after"));
      } else if (k == "default") {
        KEEL_ASSIGN_OR_RETURN(s->default_decision, Str(v, f + ".default"));
        if (s->default_decision != "approve" && s->default_decision != "reject") {
          return Err(v, f + ".default", "must be approve or reject");
        }
      } else if (k == "edit") {
        KEEL_RETURN_IF_ERROR(EditPath(v, f + ".edit", s));
      } else {
        return Err(it->first, f + "." + k,
                   "unknown field (when, summary, context, recommend, "
                   "timeout, remind_after, default, edit)");
      }
    }
    if (!s->summary) return Err(a, f + ".summary", "an approval needs a summary");
    return OkStatus();
  }

  // `edit: steps.ID[.field...]` or `vars.NAME[.field...]`: a value of the run data that an
  // earlier step produced (the operator edits what the run already has, never a value that
  // appears later, which the edit would not reach).
  Status EditPath(const YAML::Node& v, const std::string& f, Step* s) {
    KEEL_ASSIGN_OR_RETURN(s->edit, Str(v, f));
    std::vector<std::string> parts;
    size_t at = 0;
    while (true) {
      size_t dot = s->edit.find('.', at);
      parts.push_back(s->edit.substr(at, dot == std::string::npos ? std::string::npos : dot - at));
      if (dot == std::string::npos) break;
      at = dot + 1;
    }
    bool ok = parts.size() >= 2 && (parts[0] == "steps" || parts[0] == "vars");
    for (const auto& p : parts) {
      ok = ok && !p.empty() && p.find_first_of(" \t[]()'\"$") == std::string::npos;
    }
    if (!ok) {
      return Err(v, f,
                 "must name a value of the run: steps.ID (a step's output), vars.NAME, "
                 "optionally with fields (steps.draft.email)");
    }
    if (parts[0] == "steps" && (parts[1] == s->id || !ids_.count(parts[1]))) {
      return Err(v, f,
                 "no step '" + parts[1] +
                     "' before this approval; the edit replaces the output of an earlier step");
    }
    s->edit_path = std::move(parts);
    return OkStatus();
  }

  Result<std::shared_ptr<const Workflow>> Load(const std::string& content) {
    auto wf = std::make_shared<Workflow>();
    wf_ = wf.get();
    wf->content = content;
    wf->source = path_;
    wf->version = Sha256Hex(content);
    YAML::Node root;
    try {
      root = YAML::Load(content);
    } catch (const YAML::Exception& e) {
      return InvalidArgument(path_ + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
    if (!root.IsMap()) return InvalidArgument(path_ + ":1: a workflow must be a YAML mapping");
    try {
      for (auto it = root.begin(); it != root.end(); ++it) {
        std::string k = it->first.Scalar();
        static const std::set<std::string> kTop = {
            "name", "description", "input", "steps", "compensations", "schedule", "version"};
        if (!kTop.count(k))
          return Err(it->first, k,
                     "unknown field (name, description, input, "
                     "steps, compensations, schedule)");
      }
      if (!root["name"]) return Err(root, "name", "is required");
      KEEL_ASSIGN_OR_RETURN(wf->name, Str(root["name"], "name"));
      wf->name_line = root["name"].Mark().line + 1;
      if (wf->name.empty() || wf->name.find_first_of("/ ") != std::string::npos) {
        return Err(root["name"], "name", "must be non-empty without '/' or spaces");
      }
      if (root["description"]) {
        KEEL_ASSIGN_OR_RETURN(wf->description, Str(root["description"], "description"));
      }
      if (const YAML::Node& in = root["input"]) {
        if (!in.IsMap()) return Err(in, "input", "must be a mapping (required: [names])");
        if (const YAML::Node& req = in["required"]) {
          if (!req.IsSequence()) return Err(req, "input.required", "must be a list of names");
          for (const auto& r : req) {
            KEEL_ASSIGN_OR_RETURN(auto nm, Str(r, "input.required"));
            wf->required_inputs.push_back(nm);
          }
        }
      }
      if (const YAML::Node& sc = root["schedule"]) {
        if (!sc.IsMap() || !sc["cron"])
          return Err(sc, "schedule", "must be a mapping with cron (and tz)");
        KEEL_ASSIGN_OR_RETURN(wf->schedule_cron, Str(sc["cron"], "schedule.cron"));
        wf->schedule_tz = "UTC";
        if (sc["tz"]) {
          KEEL_ASSIGN_OR_RETURN(wf->schedule_tz, Str(sc["tz"], "schedule.tz"));
        }
      }
      if (!root["steps"]) return Err(root, "steps", "is required");
      KEEL_ASSIGN_OR_RETURN(wf->steps, Steps(root["steps"], "steps"));
      if (wf->steps.empty()) return Err(root["steps"], "steps", "needs at least one step");
      if (root["compensations"]) {
        KEEL_ASSIGN_OR_RETURN(wf->compensations, Steps(root["compensations"], "compensations"));
        for (size_t i = 0; i < wf->compensations.size(); ++i) {
          const Step& c = *wf->compensations[i];
          if (c.kind != StepKind::kAgent && c.kind != StepKind::kAction &&
              c.kind != StepKind::kSet && c.kind != StepKind::kNoop) {
            return Err(root["compensations"][i], "compensations[" + std::to_string(i) + "]",
                       "a compensation must be an agent, action, set or noop step");
          }
        }
      }
      for (const auto& ref : comp_refs_) {
        if (!wf->FindCompensation(ref.name)) {
          return Err(ref.node, ref.field,
                     "no compensation named '" + ref.name + "' under compensations:");
        }
      }
    } catch (const YAML::Exception& e) {
      return InvalidArgument(path_ + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
    Compile(wf->steps, &wf->program);
    wf->program.push_back(Op{Op::kEnd, nullptr, -1, -1, -1});
    for (const auto& c : wf->compensations) {
      Op op;
      op.step = c.get();
      wf->comp_program.push_back(op);
    }
    return std::shared_ptr<const Workflow>(wf);
  }

 private:
  // Appends `steps` to `prog`; each list falls through to whatever follows it.
  void Compile(const StepList& steps, std::vector<Op>* prog) {
    for (const auto& sp : steps) {
      const Step* s = sp.get();
      int at = static_cast<int>(prog->size());
      prog->push_back(Op{Op::kStep, s, -1, -1, -1});
      switch (s->kind) {
        case StepKind::kBranch: {
          Compile(s->then_steps, prog);
          int jump = static_cast<int>(prog->size());
          prog->push_back(Op{Op::kJump, s, -1, -1, -1});
          (*prog)[at].next = at + 1;
          (*prog)[at].alt = static_cast<int>(prog->size());
          Compile(s->else_steps, prog);
          (*prog)[jump].next = static_cast<int>(prog->size());
          break;
        }
        case StepKind::kForeach: {
          Compile(s->body, prog);
          prog->push_back(Op{Op::kLoopNext, s, -1, -1, at});
          (*prog)[at].next = at + 1;
          (*prog)[at].alt = static_cast<int>(prog->size());
          break;
        }
        case StepKind::kWaitEvent:
        case StepKind::kApproval: {
          if (s->on_timeout.empty()) {
            (*prog)[at].next = at + 1;
            break;
          }
          int jump = static_cast<int>(prog->size());
          prog->push_back(Op{Op::kJump, s, -1, -1, -1});
          (*prog)[at].next = jump;
          (*prog)[at].alt = static_cast<int>(prog->size());
          Compile(s->on_timeout, prog);
          (*prog)[jump].next = static_cast<int>(prog->size());
          break;
        }
        default:
          (*prog)[at].next = at + 1;
      }
    }
  }

  struct CompRef {
    std::string name;
    YAML::Node node;
    std::string field;
  };
  std::string path_;
  Workflow* wf_ = nullptr;
  std::set<std::string> ids_;
  std::vector<CompRef> comp_refs_;
};

}  // namespace

Result<std::shared_ptr<const Workflow>> ParseWorkflow(const std::string& content,
                                                      const std::string& path) {
  return Loader(path).Load(content);
}

}  // namespace keel::flow
