// keel workflow|run|runs|event|worker|approvals|approve|reject|pause|resume
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/wiring.h"
#include "core/json.h"
#include "flow/builtins.h"
#include "flow/config.h"
#include "flow/engine.h"
#include "store/runs.h"

namespace keel::cli {
namespace {

using nlohmann::json;

// The engine with the built-in agents and adapters (the real ones are registered here as
// they land). KEEL_FAKE_EFFECTS names a file where the fake adapters count their effects,
// for crash tests that SIGKILL the process.
struct FlowSetup {
  std::unique_ptr<store::Workspace> ws;  // first: everything below refers to it
  std::unique_ptr<AgentWiring> wiring;
  std::unique_ptr<FlowAgents> agents;
  std::unique_ptr<flow::CountingAdapter> log, keyed, smtp;
  std::unique_ptr<flow::Engine> engine;
};

// The first worker of a workspace holds an flock on .worker.lock and works under the fixed id
// "primary": after a crash (the kernel drops the lock) the next primary takes back the
// crashed worker's leases at once instead of waiting for them to expire. Other workers get
// random ids and respect every live lease.
std::string PrimaryWorkerId(const std::string& ws_dir) {
  int fd = ::open((ws_dir + "/.worker.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return "";
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return "";
  }
  return "primary";  // the descriptor stays open (and locked) until the process ends
}

Result<std::unique_ptr<FlowSetup>> OpenFlow(Context* ctx, int batch = 64, int64_t lease_ms = 0,
                                            bool worker = false) {
  auto f = std::make_unique<FlowSetup>();
  KEEL_ASSIGN_OR_RETURN(f->ws, ctx->OpenWorkspace());
  const char* fx = std::getenv("KEEL_FAKE_EFFECTS");
  std::string effects = fx ? fx : "";
  f->log = std::make_unique<flow::CountingAdapter>("log", true);
  f->keyed = std::make_unique<flow::CountingAdapter>("fake_keyed", true, effects);
  f->smtp = std::make_unique<flow::CountingAdapter>("fake_smtp", false, effects);
  // Crash tests slow the fake peers down to reach code that runs only in long batches.
  if (const char* d = std::getenv("KEEL_FAKE_DELAY_MS"); d != nullptr && std::atoi(d) > 0) {
    for (auto* a : {f->log.get(), f->keyed.get(), f->smtp.get()}) {
      a->set_delay(ctx->env.clock, int64_t{std::atoi(d)} * 1000);
    }
  }
  flow::Registry reg;
  KEEL_ASSIGN_OR_RETURN(f->wiring, WireAgents(*ctx, f->ws.get(), false));
  f->agents = std::make_unique<FlowAgents>(f->wiring->runner.get());
  reg.agents = f->agents.get();
  reg.adapters = {
      {"log", f->log.get()}, {"fake_keyed", f->keyed.get()}, {"fake_smtp", f->smtp.get()}};
  flow::EngineOptions o;
  KEEL_ASSIGN_OR_RETURN(flow::FlowConfig fc,
                        flow::ParseFlowConfig(f->ws->config_text(), f->ws->config_path()));
  o.event_retention_us = fc.event_retention_us;
  o.batch = batch;
  if (worker) o.worker_id = PrimaryWorkerId(f->ws->dir());
  if (lease_ms > 0) o.lease_us = lease_ms * 1000;
  f->engine = std::make_unique<flow::Engine>(f->ws.get(), reg, o);
  return f;
}

std::atomic<bool> g_stop{false};
void OnSignal(int) {
  g_stop.store(true);
}

std::string Short(const std::string& t) {
  return t.substr(0, 19) + "Z";
}

void PrintRun(const json& v) {
  std::cout << v["id"].get<std::string>() << "  " << v["workflow"].get<std::string>() << "  "
            << v["status"].get<std::string>();
  if (v.contains("waiting_for")) std::cout << " (" << v["waiting_for"].get<std::string>() << ")";
  if (v.value("canceling", false)) std::cout << " (canceling: compensations running)";
  std::cout << "\n  version " << v["version"].get<std::string>().substr(0, 12) << ", started "
            << Short(v["created"]) << "\n";
  if (v.contains("due")) std::cout << "  due " << v["due"].get<std::string>() << "\n";
  if (v.contains("error")) std::cout << "  error: " << v["error"].get<std::string>() << "\n";
  std::cout << "timeline:\n";
  for (const auto& t : v["timeline"]) {
    std::cout << "  " << Short(t["time"]) << "  " << t["kind"].get<std::string>();
    if (t.contains("step")) std::cout << "  " << t["step"].get<std::string>();
    const json& d = t["detail"];
    for (const char* k : {"attempt", "class", "error", "decision", "approval", "token", "due"}) {
      if (d.contains(k))
        std::cout << "  " << k << "=" << (d[k].is_string() ? d[k].get<std::string>() : d[k].dump());
    }
    std::cout << "\n";
  }
  if (!v["approvals"].empty()) {
    std::cout << "operator items:\n";
    for (const auto& a : v["approvals"]) {
      std::cout << "  " << a["id"].get<std::string>() << "  " << a["kind"].get<std::string>()
                << "  " << a["status"].get<std::string>() << "  " << a["summary"].get<std::string>()
                << "\n";
    }
  }
}

json ApprovalJson(const store::ApprovalRow& a) {
  auto ctx = ParseJson(a.context, "context");
  auto dec = ParseJson(a.decision, "decision");
  json j = {{"id", a.id},
            {"run", a.run_id},
            {"step", a.step_key},
            {"kind", a.kind},
            {"status", a.status},
            {"summary", a.summary},
            {"recommend", a.recommend},
            {"context", ctx.ok() ? *ctx : json()},
            {"created", FormatTimeMicros(a.created_us)}};
  if (a.deadline_us) j["deadline"] = FormatTimeMicros(a.deadline_us);
  if (a.status != "pending") j["decision"] = dec.ok() ? *dec : json();
  return j;
}

Status ParseInput(const std::string& arg, json* out) {
  if (arg.empty()) {
    *out = json::object();
    return OkStatus();
  }
  KEEL_ASSIGN_OR_RETURN(std::string text, TextOrFile(arg, 16 << 20));
  KEEL_ASSIGN_OR_RETURN(*out, ParseJsonObject(text, "--input"));
  return OkStatus();
}

}  // namespace

void RegisterFlowCommands(CLI::App& app, Context* ctx) {
  // --- workflow list|show|validate
  auto* wf = app.add_subcommand("workflow",
                                "List, show and validate workflow definitions "
                                "(YAML under the workspace's workflows/)");
  wf->require_subcommand(1);
  {
    auto* cmd = wf->add_subcommand("list", "List the workflows under workflows/");
    auto json_out = std::make_shared<bool>(false);
    cmd->add_flag("--json", *json_out, "Print JSON");
    cmd->callback(Run(ctx, [ctx, json_out]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto f, OpenFlow(ctx));
      json arr = json::array();
      for (auto& [path, w] : f->engine->ListWorkflows()) {
        json j = {{"path", path}};
        if (w.ok()) {
          j["name"] = (*w)->name;
          j["version"] = (*w)->version;
          j["steps"] = (*w)->steps.size();
          if (!(*w)->schedule_cron.empty())
            j["schedule"] = (*w)->schedule_cron + " " + (*w)->schedule_tz;
        } else {
          j["error"] = w.status().message();
        }
        arr.push_back(j);
      }
      if (*json_out) {
        std::cout << arr.dump(2) << "\n";
      } else {
        for (const auto& j : arr) {
          if (j.contains("error")) {
            std::cout << j["path"].get<std::string>()
                      << "  INVALID: " << j["error"].get<std::string>() << "\n";
          } else {
            std::cout << j["name"].get<std::string>() << "  "
                      << j["version"].get<std::string>().substr(0, 12) << "  " << j["steps"]
                      << " steps  " << j["path"].get<std::string>() << "\n";
          }
        }
      }
      return OkStatus();
    }));
  }
  {
    auto* cmd =
        wf->add_subcommand("show", "Show a workflow (name or file): version, steps, schedule");
    auto name = std::make_shared<std::string>();
    auto json_out = std::make_shared<bool>(false);
    cmd->add_option("workflow", *name, "Workflow name or file")->required();
    cmd->add_flag("--json", *json_out, "Print JSON");
    cmd->callback(Run(ctx, [ctx, name, json_out]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto f, OpenFlow(ctx));
      KEEL_ASSIGN_OR_RETURN(auto w, f->engine->Resolve(*name));
      json steps = json::array();
      std::function<void(const flow::StepList&, int)> walk = [&](const flow::StepList& l,
                                                                 int depth) {
        for (const auto& s : l) {
          steps.push_back({{"id", s->id},
                           {"kind", std::string(flow::StepKindName(s->kind))},
                           {"line", s->line},
                           {"depth", depth}});
          walk(s->then_steps, depth + 1);
          walk(s->else_steps, depth + 1);
          walk(s->body, depth + 1);
          walk(s->on_timeout, depth + 1);
        }
      };
      walk(w->steps, 0);
      json j = {{"name", w->name},
                {"version", w->version},
                {"path", w->source},
                {"description", w->description},
                {"steps", steps}};
      if (!w->schedule_cron.empty())
        j["schedule"] = {{"cron", w->schedule_cron}, {"tz", w->schedule_tz}};
      if (*json_out) {
        std::cout << j.dump(2) << "\n";
      } else {
        std::cout << w->name << "  version " << w->version << "\n  " << w->source << "\n";
        if (!w->description.empty()) std::cout << "  " << w->description << "\n";
        for (const auto& s : steps) {
          std::cout << std::string(2 + 2 * s["depth"].get<int>(), ' ') << s["id"].get<std::string>()
                    << "  (" << s["kind"].get<std::string>() << ", line " << s["line"] << ")\n";
        }
      }
      return OkStatus();
    }));
  }
  {
    auto* cmd = wf->add_subcommand("validate",
                                   "Validate workflow files (default: all under "
                                   "workflows/); errors name file, line and field");
    auto files = std::make_shared<std::vector<std::string>>();
    cmd->add_option("files", *files, "Workflow files or names");
    cmd->callback(Run(ctx, [ctx, files]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto f, OpenFlow(ctx));
      int bad = 0, good = 0;
      auto report = [&](const std::string& what,
                        const Result<std::shared_ptr<const flow::Workflow>>& w) {
        if (w.ok()) {
          ++good;
          std::cout << "ok  " << (*w)->name << "  " << what << "\n";
        } else {
          ++bad;
          std::cerr << "keel: error: " << w.status().message() << "\n";
        }
      };
      if (files->empty()) {
        for (auto& [path, w] : f->engine->ListWorkflows()) report(path, w);
      } else {
        for (const auto& p : *files) report(p, f->engine->Resolve(p));
      }
      if (bad) return InvalidArgument(std::to_string(bad) + " invalid workflow file(s)");
      if (good == 0) return NotFound("no workflow files found");
      return OkStatus();
    }));
  }

  // --- run WORKFLOW | run show|cancel|retry ID
  {
    auto* run = app.add_subcommand("run",
                                   "Start a run: keel run WORKFLOW_FILE_OR_NAME [--input "
                                   "JSON|@file] (prints the run id); or keel run "
                                   "show|cancel|retry ID");
    run->require_subcommand(0, 1);
    auto name = std::make_shared<std::string>();
    auto input = std::make_shared<std::string>();
    run->add_option("workflow", *name, "Workflow name (under workflows/) or file");
    run->add_option("--input", *input, "Run input: a JSON object, @file or - for stdin");
    auto* show = run->add_subcommand("show",
                                     "Show a run: status, timeline of steps, attempts, "
                                     "waits, approvals, outbox");
    auto id = std::make_shared<std::string>();
    auto json_out = std::make_shared<bool>(false);
    show->add_option("id", *id, "Run id")->required();
    show->add_flag("--json", *json_out, "Print JSON (with a `status` field)");
    show->callback(Run(ctx, [ctx, id, json_out]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto f, OpenFlow(ctx));
      KEEL_ASSIGN_OR_RETURN(json v, f->engine->Show(*id));
      if (*json_out) {
        std::cout << v.dump(2) << "\n";
      } else {
        PrintRun(v);
      }
      return OkStatus();
    }));
    auto* cancel = run->add_subcommand(
        "cancel",
        "Cancel a running or waiting run. Its wait ends; its pending approvals are canceled; "
        "action retries not yet made are dropped (an attempt in flight becomes an uncertain "
        "item in `keel approvals`); child runs are canceled too. If completed steps named "
        "compensations, the worker runs them newest first and the run ends canceled (until "
        "then `keel run show` says canceling); a failing compensation ends it failed and "
        "`keel run retry` resumes the compensations. A completed, failed or canceled run is "
        "refused (exit 1)");
    auto cid = std::make_shared<std::string>();
    cancel->add_option("id", *cid, "Run id")->required();
    cancel->callback(Run(ctx, [ctx, cid]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto f, OpenFlow(ctx));
      flow::CancelResult r;
      KEEL_RETURN_IF_ERROR(f->engine->Cancel(*cid, "operator", &r));
      if (r.compensations > 0) {
        std::cout << "canceling " << *cid << ": " << r.compensations
                  << " compensation(s) to run (run `keel worker`)\n";
      } else {
        std::cout << "canceled " << *cid << "\n";
      }
      if (r.approvals_canceled > 0)
        std::cout << "  " << r.approvals_canceled << " pending approval(s) canceled\n";
      if (r.actions_canceled > 0)
        std::cout << "  " << r.actions_canceled << " scheduled action retry(s) dropped\n";
      if (r.actions_uncertain > 0)
        std::cout << "  " << r.actions_uncertain
                  << " action(s) in flight: outcome unknown, see `keel approvals`\n";
      for (const auto& c : r.children) std::cout << "  child run " << c << " canceled too\n";
      return OkStatus();
    }));
    auto* retry = run->add_subcommand("retry",
                                      "Resume a failed run from its failed step (steps "
                                      "before it do not run again)");
    auto rid = std::make_shared<std::string>();
    retry->add_option("id", *rid, "Run id")->required();
    retry->callback(Run(ctx, [ctx, rid]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto f, OpenFlow(ctx));
      KEEL_RETURN_IF_ERROR(f->engine->Retry(*rid));
      std::cout << "retrying " << *rid << " (run `keel worker` to execute it)\n";
      return OkStatus();
    }));
    run->callback([ctx, run, name, input]() {
      if (!run->get_subcommands().empty()) return;  // show/cancel/retry ran
      Run(ctx, [ctx, name, input]() -> Status {
        if (name->empty())
          return InvalidArgument("name a workflow: keel run WORKFLOW [--input JSON]");
        json in;
        KEEL_RETURN_IF_ERROR(ParseInput(*input, &in));
        KEEL_ASSIGN_OR_RETURN(auto f, OpenFlow(ctx));
        KEEL_ASSIGN_OR_RETURN(std::string id, f->engine->Start(*name, in));
        std::cout << id << "\n";
        return OkStatus();
      })();
    });
  }

  // --- runs
  {
    auto* cmd = app.add_subcommand("runs", "List runs, newest first");
    auto status = std::make_shared<std::string>();
    auto json_out = std::make_shared<bool>(false);
    auto limit = std::make_shared<int>(50);
    cmd->add_option("--status", *status, "Only runs with this status")
        ->check(CLI::IsMember({"running", "waiting", "completed", "failed", "canceled"}));
    cmd->add_option("--limit", *limit, "At most this many, 1..100000 (default 50)")
        ->check(CLI::Range(1, 100000));
    cmd->add_flag("--json", *json_out, "Print JSON");
    cmd->callback(Run(ctx, [ctx, status, json_out, limit]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto ws, ctx->OpenWorkspace());
      KEEL_ASSIGN_OR_RETURN(auto runs, store::ListRuns(*ws, *status, *limit));
      json arr = json::array();
      for (const auto& r : runs) {
        json j = {{"id", r.id},
                  {"workflow", r.workflow},
                  {"status", r.status},
                  {"created", FormatTimeMicros(r.created_us)},
                  {"updated", FormatTimeMicros(r.updated_us)}};
        if (!r.wait_kind.empty()) j["waiting_for"] = r.wait_kind;
        if (!r.error.empty()) j["error"] = r.error;
        arr.push_back(j);
      }
      if (*json_out) {
        std::cout << arr.dump(2) << "\n";
      } else {
        for (const auto& j : arr) {
          std::cout << j["id"].get<std::string>() << "  " << j["workflow"].get<std::string>()
                    << "  " << j["status"].get<std::string>();
          if (j.contains("waiting_for"))
            std::cout << " (" << j["waiting_for"].get<std::string>() << ")";
          std::cout << "  " << Short(j["created"]) << "\n";
        }
      }
      return OkStatus();
    }));
  }

  // --- event send
  {
    auto* ev = app.add_subcommand("event", "Deliver events to runs waiting for them");
    ev->require_subcommand(1);
    auto* send = ev->add_subcommand(
        "send",
        "Send an event TYPE with --key. It completes the wait_event step of every run waiting "
        "for (TYPE, KEY) now, and is kept (keel.yaml events.retention, default 7d) for runs "
        "that started before it and reach such a step later: each run takes each event at "
        "most once, the earliest first. An event never reaches a run started after it. A "
        "repeated --id (within the retention) is recorded as a duplicate and delivered to "
        "nobody");
    struct Opts {
      std::string type, key, id, data;
    };
    auto o = std::make_shared<Opts>();
    send->add_option("type", o->type, "Event type (as named by wait_event.type)")->required();
    send->add_option("--key", o->key, "Event key (matched against wait_event.key)")->required();
    send->add_option("--id", o->id, "Event id for deduplication (default: a new id)");
    send->add_option("--data", o->data, "Event data: a JSON object, @file or -");
    send->callback(Run(ctx, [ctx, o]() -> Status {
      json data = json::object();
      if (!o->data.empty()) {
        KEEL_ASSIGN_OR_RETURN(std::string text, TextOrFile(o->data, 1 << 20));
        KEEL_ASSIGN_OR_RETURN(data, ParseJsonObject(text, "--data"));
      }
      KEEL_ASSIGN_OR_RETURN(auto f, OpenFlow(ctx));
      KEEL_ASSIGN_OR_RETURN(auto r, f->engine->SendEvent(o->type, o->key, o->id, data));
      if (r.duplicate) {
        std::cout << "duplicate " << r.id << ": already received, delivered to nobody\n";
      } else {
        std::cout << r.id << " delivered to " << r.delivered << " run(s)"
                  << (r.delivered == 0 ? "; kept for runs that reach the wait later" : "") << "\n";
      }
      return OkStatus();
    }));
  }

  // --- worker
  {
    auto* cmd = app.add_subcommand("worker",
                                   "Execute due steps until stopped (SIGTERM/SIGINT "
                                   "finish the current round, then exit)");
    auto until_idle = std::make_shared<bool>(false);
    auto batch = std::make_shared<int>(64);
    auto poll_ms = std::make_shared<int>(200);
    auto lease_ms = std::make_shared<int64_t>(0);
    // Bounded: a batch of 0 would never advance a run and a negative one would mean "no
    // limit" to SQLite. (Crash tests use leases of a few milliseconds to force renewals.)
    cmd->add_option("--lease-ms", *lease_ms,
                    "How long a claimed step is this worker's, 1..86400000 (default 300000)")
        ->check(CLI::Range(int64_t{1}, int64_t{86400000}));
    cmd->add_flag("--until-idle", *until_idle, "Exit when nothing is due now");
    cmd->add_option("--batch", *batch, "Runs advanced per transaction, 1..10000 (default 64)")
        ->check(CLI::Range(1, 10000));
    cmd->add_option("--poll-ms", *poll_ms, "Longest sleep between checks, 1..60000 (default 200)")
        ->check(CLI::Range(1, 60000));
    cmd->callback(Run(ctx, [ctx, until_idle, batch, poll_ms, lease_ms]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto f, OpenFlow(ctx, *batch, *lease_ms, true));
      std::signal(SIGTERM, OnSignal);
      std::signal(SIGINT, OnSignal);
      KEEL_RETURN_IF_ERROR(f->engine->SyncSchedules());
      Clock* clock = ctx->env.clock;
      int64_t steps = 0;
      while (!g_stop.load()) {
        KEEL_ASSIGN_OR_RETURN(flow::TickStats t, f->engine->Tick());
        steps += t.steps;
        if (t.steps || t.timers || t.schedules || t.io) continue;
        // Idle: expired events go (a read, and a transaction only when some expired).
        KEEL_ASSIGN_OR_RETURN(int64_t purged, f->engine->PurgeExpiredEvents());
        if (purged > 0) std::cerr << "keel worker: purged " << purged << " expired event(s)\n";
        // Idle: what the busy rounds committed is made durable before the worker sleeps
        // or exits (a round is pipelined: flow/engine.h).
        KEEL_RETURN_IF_ERROR(f->engine->WaitDurable());
        if (*until_idle) break;
        KEEL_ASSIGN_OR_RETURN(int64_t wake, f->engine->NextWakeUs());
        int64_t sleep = std::min<int64_t>(wake - clock->NowMicros(), int64_t{*poll_ms} * 1000);
        if (sleep > 0) clock->SleepMicros(sleep);
      }
      KEEL_RETURN_IF_ERROR(f->engine->WaitDurable());  // stopped mid-work by a signal
      std::cerr << "keel worker: " << steps << " step(s) done" << (g_stop.load() ? ", stopped" : "")
                << "\n";
      return OkStatus();
    }));
  }

  // --- approvals, approve, reject
  {
    auto* cmd = app.add_subcommand("approvals",
                                   "List pending operator items: approvals, "
                                   "uncertain actions, steps that need a person");
    auto json_out = std::make_shared<bool>(false);
    auto all = std::make_shared<bool>(false);
    cmd->add_flag("--json", *json_out, "Print JSON");
    cmd->add_flag("--all", *all, "Include decided items");
    cmd->callback(Run(ctx, [ctx, json_out, all]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto ws, ctx->OpenWorkspace());
      KEEL_ASSIGN_OR_RETURN(auto items, store::ListApprovals(*ws, *all ? "" : "pending", ""));
      json arr = json::array();
      for (const auto& a : items) arr.push_back(ApprovalJson(a));
      if (*json_out) {
        std::cout << arr.dump(2) << "\n";
        return OkStatus();
      }
      if (arr.empty()) std::cout << "nothing waits for you\n";
      for (const auto& a : arr) {
        std::cout << a["id"].get<std::string>() << "  " << a["kind"].get<std::string>() << "  "
                  << a["status"].get<std::string>() << "  run " << a["run"].get<std::string>()
                  << " step " << a["step"].get<std::string>() << "\n  "
                  << a["summary"].get<std::string>()
                  << "\n  recommended: " << a["recommend"].get<std::string>()
                  << "\n  context: " << a["context"].dump() << "\n";
        if (a.contains("deadline"))
          std::cout << "  deadline: " << a["deadline"].get<std::string>() << "\n";
      }
      return OkStatus();
    }));
  }
  {
    auto* cmd = app.add_subcommand("approve",
                                   "Approve an operator item (for an uncertain action: "
                                   "it happened; for a needs-human step: try again)");
    auto id = std::make_shared<std::string>();
    auto edit = std::make_shared<std::string>();
    cmd->add_option("id", *id, "Approval id")->required();
    cmd->add_option("--edit", *edit,
                    "A JSON file with the operator's edit (given to the run "
                    "as the step's output `edit`)");
    cmd->callback(Run(ctx, [ctx, id, edit]() -> Status {
      json e;
      if (!edit->empty()) {
        KEEL_ASSIGN_OR_RETURN(std::string text, ReadInput(*edit, 1 << 20));
        KEEL_ASSIGN_OR_RETURN(e, ParseJson(text, "--edit " + *edit));
      }
      KEEL_ASSIGN_OR_RETURN(auto f, OpenFlow(ctx));
      KEEL_RETURN_IF_ERROR(f->engine->Decide(*id, true, edit->empty() ? nullptr : &e, ""));
      std::cout << "approved " << *id << "\n";
      return OkStatus();
    }));
  }
  {
    auto* cmd = app.add_subcommand("reject",
                                   "Reject an operator item (for an uncertain action: "
                                   "it did not happen)");
    auto id = std::make_shared<std::string>();
    auto reason = std::make_shared<std::string>();
    cmd->add_option("id", *id, "Approval id")->required();
    cmd->add_option("--reason", *reason, "Why (kept on the ledger)")->required();
    cmd->callback(Run(ctx, [ctx, id, reason]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto f, OpenFlow(ctx));
      KEEL_RETURN_IF_ERROR(f->engine->Decide(*id, false, nullptr, *reason));
      std::cout << "rejected " << *id << "\n";
      return OkStatus();
    }));
  }

  // --- pause / resume
  for (bool pause : {true, false}) {
    auto* cmd = app.add_subcommand(pause ? "pause" : "resume",
                                   pause ? "Pause all work, or one workflow, agent or adapter "
                                           "(paused work waits; every switch is on the ledger)"
                                         : "Resume what `keel pause` stopped; work continues where "
                                           "it stopped");
    struct Opts {
      std::string workflow, agent, adapter;
    };
    auto o = std::make_shared<Opts>();
    auto* a = cmd->add_option("--workflow", o->workflow, "Only this workflow");
    auto* b = cmd->add_option("--agent", o->agent, "Only this agent");
    auto* c = cmd->add_option("--adapter", o->adapter, "Only this adapter");
    a->excludes(b)->excludes(c);
    b->excludes(c);
    cmd->callback(Run(ctx, [ctx, o, pause, a, b, c]() -> Status {
      // Whether a flag was given, not whether its value is empty: `--adapter ""` (an unset
      // shell variable) must not become a switch for everything.
      std::string scope = "global", name;
      if (a->count()) scope = "workflow", name = o->workflow;
      if (b->count()) scope = "agent", name = o->agent;
      if (c->count()) scope = "adapter", name = o->adapter;
      KEEL_ASSIGN_OR_RETURN(auto f, OpenFlow(ctx));
      KEEL_RETURN_IF_ERROR(pause ? f->engine->Pause(scope, name) : f->engine->Resume(scope, name));
      std::cout << (pause ? "paused " : "resumed ") << scope << (name.empty() ? "" : " " + name)
                << "\n";
      return OkStatus();
    }));
  }
}

}  // namespace keel::cli
