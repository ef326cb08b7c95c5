// keel workflow|run|runs|event|worker|approvals|approve|reject|pause|resume|adapter: flags in,
// one application service called, its view printed (text, or --json).
#include <atomic>
#include <csignal>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/runs.h"
#include "app/views.h"
#include "cli/cli.h"
#include "core/json.h"

namespace keel::cli {
namespace {

using nlohmann::json;
namespace views = app::views;

std::atomic<bool> g_stop{false};
void OnSignal(int) {
  g_stop.store(true);
}

std::string Short(const json& t) {
  return t.get<std::string>().substr(0, 19) + "Z";
}

std::string Str(const json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

void PrintRun(const json& v) {
  std::cout << Str(v["id"]) << "  " << Str(v["workflow"]) << "  " << Str(v["status"]);
  if (v.contains("waiting_for")) std::cout << " (" << Str(v["waiting_for"]) << ")";
  if (v.value("canceling", false)) std::cout << " (canceling: compensations running)";
  std::cout << "\n  version " << Str(v["version"]).substr(0, 12) << ", started "
            << Short(v["created"]) << "\n";
  if (v.contains("due")) std::cout << "  due " << Str(v["due"]) << "\n";
  if (v.contains("error")) std::cout << "  error: " << Str(v["error"]) << "\n";
  std::cout << "timeline:\n";
  for (const auto& t : v["timeline"]) {
    std::cout << "  " << Short(t["time"]) << "  " << Str(t["kind"]);
    if (t.contains("step")) std::cout << "  " << Str(t["step"]);
    const json& d = t["detail"];
    for (const char* k : {"attempt", "class", "error", "decision", "approval", "token", "due"}) {
      if (d.is_object() && d.contains(k)) std::cout << "  " << k << "=" << Str(d[k]);
    }
    std::cout << "\n";
  }
  if (!v["approvals"].empty()) {
    std::cout << "operator items:\n";
    for (const auto& a : v["approvals"]) {
      std::cout << "  " << Str(a["id"]) << "  " << Str(a["kind"]) << "  " << Str(a["state"]) << "  "
                << Str(a["summary"]) << "\n";
    }
  }
}

// One line per item in a list.
void PrintItemLine(const json& a) {
  std::cout << Str(a["id"]) << "  " << Str(a["kind"]) << "  " << Str(a["state"]) << "  run "
            << Str(a["run"]) << " step " << Str(a["step"]) << "\n  " << Str(a["summary"])
            << "\n  recommended: " << Str(a["recommend"]) << "\n";
  if (a.contains("deadline")) std::cout << "  deadline: " << Str(a["deadline"]) << "\n";
}

// A value of an item's context as a person reads it: text as text (an email body keeps
// its lines), anything else as compact JSON.
void PrintField(const std::string& key, const json& v, int indent) {
  std::string pad(indent, ' ');
  if (v.is_string() && Str(v).find('\n') != std::string::npos) {
    std::cout << pad << key << ":\n";
    std::string s = Str(v), line;
    for (size_t i = 0; i <= s.size(); ++i) {
      if (i == s.size() || s[i] == '\n') {
        std::cout << pad << "  | " << line << "\n";
        line.clear();
      } else {
        line += s[i];
      }
    }
  } else if (v.is_object() && !v.empty()) {
    std::cout << pad << key << ":\n";
    for (auto it = v.begin(); it != v.end(); ++it) PrintField(it.key(), *it, indent + 2);
  } else {
    std::cout << pad << key << ": " << Str(v) << "\n";
  }
}

// Where an item's context holds an email: the gate's own context (`facts`), an action's
// `params` (an uncertain send), or the context itself. "" when there is none.
std::string EmailKey(const json& c) {
  auto is_email = [](const json& m) {
    return m.is_object() && m.contains("to") && (m.contains("body") || m.contains("text"));
  };
  for (const char* k : {"facts", "params"}) {
    if (c.is_object() && c.contains(k) && is_email(c[k])) return k;
  }
  return is_email(c) ? "." : "";
}

// The email as a person reads one: headers, a blank line, the body.
void PrintEmail(const json& m) {
  std::cout << "  email:\n";
  for (const char* h : {"from", "to", "cc", "subject"}) {
    if (m.contains(h)) {
      std::string name = h;
      name[0] = static_cast<char>(std::toupper(name[0]));
      std::cout << "    " << name << ": " << Str(m[h]) << "\n";
    }
  }
  std::cout << "\n";
  std::string body = Str(m.contains("body") ? m["body"] : m["text"]);
  std::string line;
  for (size_t i = 0; i <= body.size(); ++i) {
    if (i == body.size() || body[i] == '\n') {
      std::cout << "    " << line << "\n";
      line.clear();
    } else {
      line += body[i];
    }
  }
}

void PrintItem(const json& a) {
  std::cout << Str(a["id"]) << "  " << Str(a["kind"]) << "  " << Str(a["state"]) << " ("
            << Str(a["status"]) << ")\n";
  std::cout << "  run " << Str(a["run"]) << ", step " << Str(a["step"]) << ", created "
            << Short(a["created"]) << "\n";
  if (a.contains("deadline")) std::cout << "  deadline " << Str(a["deadline"]) << "\n";
  std::cout << "  summary: " << Str(a["summary"]) << "\n";
  std::cout << "  recommended: " << Str(a["recommend"]) << "\n";
  const json& c = a["context"];
  const std::string email = EmailKey(c);
  if (!email.empty()) PrintEmail(email == "." ? c : c[email]);
  if (c.is_object() && email != ".") {
    std::cout << "  context:\n";
    for (auto it = c.begin(); it != c.end(); ++it) {
      if (it.key() != email) PrintField(it.key(), *it, 4);
    }
  }
  if (a.contains("decision")) PrintField("decision", a["decision"], 2);
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

void RegisterWorkflowCommands(CLI::App& app, Context* ctx) {
  auto* wf = app.add_subcommand("workflow",
                                "List, show and validate workflow definitions "
                                "(YAML under the workspace's workflows/)");
  wf->require_subcommand(1);
  {
    auto* cmd = wf->add_subcommand("list", "List the workflows under workflows/");
    auto json_out = std::make_shared<bool>(false);
    cmd->add_flag("--json", *json_out, "Print JSON");
    cmd->callback(Run(ctx, [ctx, json_out]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime(true));
      KEEL_ASSIGN_OR_RETURN(auto list, app::ListWorkflows(*rt));
      json arr = json::array();
      for (const auto& l : list) {
        arr.push_back(l.workflow.ok()
                          ? views::Workflow(**l.workflow)
                          : views::WorkflowError(l.path, l.workflow.status().message()));
      }
      if (*json_out) {
        PrintJson(arr);
        return OkStatus();
      }
      for (const auto& j : arr) {
        if (j.contains("error")) {
          std::cout << Str(j["path"]) << "  INVALID: " << Str(j["error"]) << "\n";
        } else {
          std::cout << Str(j["name"]) << "  " << Str(j["version"]).substr(0, 12) << "  "
                    << j["steps"].size() << " steps  " << Str(j["path"]) << "\n";
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
    cmd->add_option("WORKFLOW", *name, "Workflow name or file")->required();
    cmd->add_flag("--json", *json_out, "Print JSON");
    cmd->callback(Run(ctx, [ctx, name, json_out]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime(true));
      KEEL_ASSIGN_OR_RETURN(auto w, app::ShowWorkflow(*rt, *name));
      json j = views::Workflow(*w);
      if (*json_out) {
        PrintJson(j);
        return OkStatus();
      }
      std::cout << w->name << "  version " << w->version << "\n  " << w->source << "\n";
      if (!w->description.empty()) std::cout << "  " << w->description << "\n";
      for (const auto& s : j["steps"]) {
        std::cout << std::string(2 + 2 * s["depth"].get<int>(), ' ') << Str(s["id"]) << "  ("
                  << Str(s["kind"]) << ", line " << s["line"] << ")\n";
      }
      return OkStatus();
    }));
  }
  {
    auto* cmd = wf->add_subcommand("validate",
                                   "Validate workflow files (default: all under workflows/): "
                                   "YAML, steps, expressions, and the agents, adapters and "
                                   "actions they name; errors name file, line and field");
    auto files = std::make_shared<std::vector<std::string>>();
    cmd->add_option("FILE", *files, "Workflow files or names");
    cmd->callback(Run(ctx, [ctx, files]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime(true));
      KEEL_ASSIGN_OR_RETURN(auto list, app::ValidateWorkflows(*rt, *files));
      int bad = 0, good = 0;
      for (const auto& l : list) {
        if (l.workflow.ok()) {
          ++good;
          std::cout << "ok  " << (*l.workflow)->name << "  " << l.path << "\n";
        } else {
          ++bad;
          std::cerr << "keel: error: " << l.workflow.status().message() << "\n";
        }
      }
      if (bad) return InvalidArgument(std::to_string(bad) + " invalid workflow file(s)");
      if (good == 0) return NotFound("no workflow files found");
      return OkStatus();
    }));
  }
}

void RegisterRunCommands(CLI::App& app, Context* ctx) {
  auto* run = app.add_subcommand("run",
                                 "Start a run: keel run WORKFLOW [--input JSON|@file] (prints "
                                 "the run id); or keel run show|cancel|retry RUN_ID");
  run->require_subcommand(0, 1);
  auto name = std::make_shared<std::string>();
  auto input = std::make_shared<std::string>();
  run->add_option("WORKFLOW", *name, "Workflow name (under workflows/) or file");
  run->add_option("--input", *input, "Run input: a JSON object, @file or - for stdin");
  // A workflow named like a subcommand would be taken for it; validation refuses such
  // names (flow/workflow.h), so `keel run NAME` starts every valid workflow.
  auto* show = run->add_subcommand("show",
                                   "Show a run: status, timeline of steps, attempts, waits, "
                                   "operator items, outbox");
  auto id = std::make_shared<std::string>();
  auto json_out = std::make_shared<bool>(false);
  show->add_option("RUN_ID", *id, "Run id (or a unique prefix)")->required();
  show->add_flag("--json", *json_out, "Print JSON (docs/views.md, \"run\")");
  show->callback(Run(ctx, [ctx, id, json_out]() -> Status {
    KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime(true));
    KEEL_ASSIGN_OR_RETURN(auto d, app::ShowRun(*rt, *id));
    json v = views::Run(d);
    if (*json_out) {
      PrintJson(v);
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
  cancel->add_option("RUN_ID", *cid, "Run id (or a unique prefix)")->required();
  cancel->callback(Run(ctx, [ctx, cid]() -> Status {
    KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime());
    KEEL_ASSIGN_OR_RETURN(flow::CancelResult r, app::CancelRun(*rt, *cid));
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
  retry->add_option("RUN_ID", *rid, "Run id (or a unique prefix)")->required();
  retry->callback(Run(ctx, [ctx, rid]() -> Status {
    KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime());
    KEEL_RETURN_IF_ERROR(app::RetryRun(*rt, *rid));
    std::cout << "retrying " << *rid << " (run `keel worker` to execute it)\n";
    return OkStatus();
  }));
  run->callback([ctx, run, name, input]() {
    if (!run->get_subcommands().empty()) return;  // show/cancel/retry ran
    Run(ctx, [ctx, name, input]() -> Status {
      app::StartRunRequest req;
      req.workflow = *name;
      KEEL_RETURN_IF_ERROR(ParseInput(*input, &req.input));
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime());
      KEEL_ASSIGN_OR_RETURN(std::string id, app::StartRun(*rt, req));
      std::cout << id << "\n";
      return OkStatus();
    })();
  });

  auto* cmd = app.add_subcommand("runs", "List runs, newest first");
  auto req = std::make_shared<app::ListRunsRequest>();
  auto runs_json = std::make_shared<bool>(false);
  cmd->add_option("--status", req->status, "Only runs with this status")
      ->check(CLI::IsMember({"running", "waiting", "completed", "failed", "canceled"}));
  cmd->add_option("--limit", req->limit, "At most this many, 1..100000 (default 50)")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--cursor", req->cursor,
                  "Continue after the last page (the cursor printed as `next:`)");
  cmd->add_flag("--json", *runs_json,
                "Print a JSON array of runs (the next page's cursor, if "
                "any, goes to stderr as `next: CURSOR`)");
  cmd->callback(Run(ctx, [ctx, req, runs_json]() -> Status {
    KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime(true));
    KEEL_ASSIGN_OR_RETURN(app::RunPage page, app::ListRuns(*rt, *req));
    json arr = json::array();
    for (const auto& r : page.runs) arr.push_back(views::RunSummary(r));
    if (*runs_json) {
      PrintJson(arr);
    } else {
      for (const auto& j : arr) {
        std::cout << Str(j["id"]) << "  " << Str(j["workflow"]) << "  " << Str(j["status"]);
        if (j.contains("waiting_for")) std::cout << " (" << Str(j["waiting_for"]) << ")";
        std::cout << "  " << Short(j["created"]) << "\n";
      }
      if (arr.empty()) std::cerr << "no runs\n";
    }
    if (!page.next.empty()) {
      std::cerr << "next: " << page.next << "  (keel runs --cursor " << page.next << ")\n";
    }
    return OkStatus();
  }));
}

void RegisterEventAndWorkerCommands(CLI::App& app, Context* ctx) {
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
  auto o = std::make_shared<app::SendEventRequest>();
  auto data = std::make_shared<std::string>();
  send->add_option("TYPE", o->type, "Event type (as named by wait_event.type)")->required();
  send->add_option("--key", o->key, "Event key (matched against wait_event.key)")->required();
  send->add_option("--id", o->id, "Event id for deduplication (default: a new id)");
  send->add_option("--data", *data, "Event data: a JSON object, @file or -");
  send->callback(Run(ctx, [ctx, o, data]() -> Status {
    if (!data->empty()) {
      KEEL_ASSIGN_OR_RETURN(std::string text, TextOrFile(*data, 1 << 20));
      KEEL_ASSIGN_OR_RETURN(o->data, ParseJsonObject(text, "--data"));
    }
    KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime());
    KEEL_ASSIGN_OR_RETURN(auto r, app::SendEvent(*rt, *o));
    if (r.duplicate) {
      std::cout << "duplicate " << r.id << ": already received, delivered to nobody\n";
    } else {
      std::cout << r.id << " delivered to " << r.delivered << " run(s)"
                << (r.delivered == 0 ? "; kept for runs that reach the wait later" : "") << "\n";
    }
    return OkStatus();
  }));

  auto* cmd = app.add_subcommand("worker",
                                 "Execute due steps until stopped (SIGTERM/SIGINT finish the "
                                 "current round and wait for the effects in flight, then exit)");
  auto w = std::make_shared<app::WorkerRequest>();
  // Bounded: a batch of 0 would never advance a run and a negative one would mean "no
  // limit" to SQLite. (Crash tests use leases of a few milliseconds to force renewals.)
  cmd->add_option("--lease-ms", w->lease_ms,
                  "How long a claimed step is this worker's, 1..86400000 (default 300000)")
      ->check(CLI::Range(int64_t{1}, int64_t{86400000}));
  cmd->add_flag("--until-idle", w->until_idle,
                "Exit when nothing is due now (and say what remains scheduled)");
  cmd->add_option("--batch", w->batch, "Runs advanced per transaction, 1..10000 (default 64)")
      ->check(CLI::Range(1, 10000));
  cmd->add_option("--poll-ms", w->poll_ms, "Longest sleep between checks, 1..60000 (default 200)")
      ->check(CLI::Range(1, 60000));
  cmd->callback(Run(ctx, [ctx, w]() -> Status {
    KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime());
    std::signal(SIGTERM, OnSignal);
    std::signal(SIGINT, OnSignal);
    KEEL_ASSIGN_OR_RETURN(app::WorkerReport r,
                          app::RunWorker(*rt, *w, g_stop, [](const std::string& line) {
                            std::cerr << "keel worker: " << line << "\n";
                          }));
    std::cerr << "keel worker: " << r.steps << " step(s) done" << (r.stopped ? ", stopped" : "")
              << "\n";
    // Nothing that waits for a time is left unsaid: an --until-idle worker is not the end.
    for (const auto& g : r.upcoming.groups) {
      std::cerr << "keel worker: still scheduled: " << g.count << " " << g.kind
                << (g.kind == "schedule" ? " (workflow schedules)" : " (runs)") << ", the next "
                << (g.earliest.empty() ? "" : g.earliest + " ") << "at "
                << views::Time(g.earliest_us) << "\n";
    }
    if (r.upcoming.due_now > 0) {
      std::cerr << "keel worker: " << r.upcoming.due_now << " run(s) due now but held (paused)\n";
    }
    if (!r.upcoming.groups.empty()) {
      std::cerr << "keel worker: run `keel worker` (without --until-idle) to do them when due\n";
    }
    return OkStatus();
  }));
}

void RegisterItemCommands(CLI::App& app, Context* ctx) {
  auto* cmd = app.add_subcommand("approvals",
                                 "List open operator items: approvals, uncertain actions, "
                                 "steps that need a person; `keel approvals show ID` shows one");
  auto req = std::make_shared<app::ListItemsRequest>();
  auto json_out = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json_out, "Print JSON (docs/views.md, \"operator item\")");
  cmd->add_flag("--all", req->all, "Include decided, expired and canceled items");
  cmd->add_option("--run", req->run_id, "Only this run's items");
  cmd->require_subcommand(0, 1);
  cmd->callback([ctx, cmd, req, json_out]() {
    if (!cmd->get_subcommands().empty()) return;  // show ran
    Run(ctx, [ctx, req, json_out]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime(true));
      KEEL_ASSIGN_OR_RETURN(auto items, app::ListItems(*rt, *req));
      json arr = json::array();
      for (const auto& a : items) arr.push_back(views::Item(a));
      if (*json_out) {
        PrintJson(arr);
        return OkStatus();
      }
      if (arr.empty()) std::cout << "nothing waits for you\n";
      for (const auto& a : arr) PrintItemLine(a);
      if (!arr.empty()) {
        std::cout << "(keel approvals show ID for the whole item; keel approve ID... or keel "
                     "reject ID... --reason TEXT to decide)\n";
      }
      return OkStatus();
    })();
  });
  auto* show = cmd->add_subcommand("show",
                                   "Show one operator item readably (an email as "
                                   "headers and body)");
  auto id = std::make_shared<std::string>();
  auto show_json = std::make_shared<bool>(false);
  show->add_option("ID", *id, "Item id (or a unique prefix)")->required();
  show->add_flag("--json", *show_json, "Print JSON");
  show->callback(Run(ctx, [ctx, id, show_json]() -> Status {
    KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime(true));
    KEEL_ASSIGN_OR_RETURN(auto a, app::ShowItem(*rt, *id));
    if (*show_json) {
      PrintJson(views::Item(a));
    } else {
      PrintItem(views::Item(a));
    }
    return OkStatus();
  }));

  for (bool approve : {true, false}) {
    auto* dc = app.add_subcommand(
        approve ? "approve" : "reject",
        approve ? "Approve operator items (for an uncertain action: it happened; for a "
                  "needs-human step: try again). With --edit, the approved edit is what the "
                  "workflow uses next; an item that cannot take an edit refuses it"
                : "Reject operator items (for an uncertain action: it did not happen)");
    auto d = std::make_shared<app::DecideRequest>();
    d->approve = approve;
    auto edit = std::make_shared<std::string>();
    dc->add_option("ID", d->ids, "Item ids (or unique prefixes); several are decided in turn")
        ->required();
    if (approve) {
      dc->add_option("--edit", *edit,
                     "A JSON file (or - for stdin) with the operator's edit of the item's "
                     "editable value (docs/workflows.md, \"Approval\")");
    } else {
      dc->add_option("--reason", d->reason, "Why (kept on the ledger)")->required();
    }
    dc->callback(Run(ctx, [ctx, d, edit, approve]() -> Status {
      if (!edit->empty()) {
        KEEL_ASSIGN_OR_RETURN(std::string text, ReadInput(*edit, 1 << 20));
        KEEL_ASSIGN_OR_RETURN(json e, ParseJson(text, "--edit " + *edit));
        d->edit = std::move(e);
      }
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime());
      KEEL_ASSIGN_OR_RETURN(auto results, app::DecideItems(*rt, *d));
      Status first;
      int failed = 0;
      for (const auto& r : results) {
        if (r.status.ok()) {
          std::cout << (approve ? "approved " : "rejected ") << r.id << "; " << r.next << "\n";
        } else {
          ++failed;
          std::cerr << "keel: error: " << r.id << ": " << r.status.message() << "\n";
          if (first.ok()) first = r.status;
        }
      }
      if (failed == 0) return OkStatus();
      if (results.size() == 1) {
        ctx->exit_code = ExitCodeFor(first);
        return OkStatus();  // already printed
      }
      return Status(first.code(), std::to_string(failed) + " of " + std::to_string(results.size()) +
                                      " item(s) not decided");
    }));
  }
}

void RegisterSwitchCommands(CLI::App& app, Context* ctx) {
  for (bool pause : {true, false}) {
    auto* cmd = app.add_subcommand(pause ? "pause" : "resume",
                                   pause ? "Pause all work, or one workflow, agent or adapter "
                                           "(paused work waits; every switch is on the ledger)"
                                         : "Resume what `keel pause` stopped; work continues "
                                           "where it stopped");
    auto o = std::make_shared<app::SwitchRequest>();
    o->pause = pause;
    auto names = std::make_shared<std::array<std::string, 3>>();
    auto* a = cmd->add_option("--workflow", (*names)[0], "Only this workflow");
    auto* b = cmd->add_option("--agent", (*names)[1], "Only this agent");
    auto* c =
        cmd->add_option("--adapter", (*names)[2], "Only this adapter (see `keel adapter list`)");
    a->excludes(b)->excludes(c);
    b->excludes(c);
    cmd->callback(Run(ctx, [ctx, o, names, a, b, c]() -> Status {
      // Whether a flag was given, not whether its value is empty: `--adapter ""` (an unset
      // shell variable) must not become a switch for everything.
      if (a->count()) o->scope = "workflow", o->name = (*names)[0];
      if (b->count()) o->scope = "agent", o->name = (*names)[1];
      if (c->count()) o->scope = "adapter", o->name = (*names)[2];
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime());
      KEEL_RETURN_IF_ERROR(app::SetPause(*rt, *o));
      std::cout << (o->pause ? "paused " : "resumed ") << o->scope
                << (o->name.empty() ? "" : " " + o->name) << "\n";
      return OkStatus();
    }));
  }

  auto* ad = app.add_subcommand("adapter",
                                "The adapters (the outside world) and their switches: sandbox "
                                "records what would be sent, live sends");
  ad->require_subcommand(1);
  auto* list = ad->add_subcommand("list",
                                  "List adapters with mode (sandbox/live), where the "
                                  "mode comes from, and whether paused");
  auto list_json = std::make_shared<bool>(false);
  list->add_flag("--json", *list_json, "Print JSON");
  list->callback(Run(ctx, [ctx, list_json]() -> Status {
    KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime(true));
    KEEL_ASSIGN_OR_RETURN(auto states, app::ListAdapters(*rt));
    json arr = json::array();
    for (const auto& s : states) arr.push_back(views::Adapter(s.name, s.entry, s.paused));
    if (*list_json) {
      PrintJson(arr);
      return OkStatus();
    }
    for (const auto& j : arr) {
      std::cout << Str(j["name"]) << "  " << Str(j["mode"]);
      if (!j["can_go_live"].get<bool>()) {
        std::cout << "  (records only; no live mode)";
      } else if (j["switch"] != j["mode"]) {
        std::cout << "  (switched " << Str(j["switch"]) << " by " << Str(j["mode_source"])
                  << "; keel.yaml `mode: sandbox` holds it in sandbox)";
      } else {
        std::cout << "  (" << Str(j["mode_source"]) << ")";
      }
      std::cout << (j["paused"].get<bool>() ? "  PAUSED" : "") << "\n";
    }
    return OkStatus();
  }));
  for (auto mode : {app::AdapterMode::kLive, app::AdapterMode::kSandbox}) {
    const bool live = mode == app::AdapterMode::kLive;
    auto* sw = ad->add_subcommand(
        live ? "live" : "sandbox",
        live ? "Switch an adapter live: it really sends once keel.yaml's `mode:` is live too "
               "(the master switch); a ledger entry, which wins over keel.yaml's adapters:"
             : "Switch an adapter back to sandbox: it records what it would send and sends "
               "nothing");
    auto name = std::make_shared<std::string>();
    sw->add_option("ADAPTER", *name, "Adapter name (see `keel adapter list`)")->required();
    sw->callback(Run(ctx, [ctx, name, mode]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime());
      KEEL_RETURN_IF_ERROR(app::SetAdapterMode(*rt, *name, mode));
      const app::AdapterEntry& e = rt->adapters().at(*name);
      std::cout << "adapter " << *name << " switched " << app::AdapterModeName(mode);
      if (e.mode != e.requested) {
        std::cout << "; it stays sandbox while keel.yaml says `mode: sandbox` (the workspace's "
                     "master switch)";
      }
      if (app::WorkerRunning(*rt)) std::cout << "; a running worker picks this up when it restarts";
      std::cout << "\n";
      return OkStatus();
    }));
  }
}

}  // namespace

void RegisterFlowCommands(CLI::App& app, Context* ctx) {
  RegisterWorkflowCommands(app, ctx);
  RegisterRunCommands(app, ctx);
  RegisterEventAndWorkerCommands(app, ctx);
  RegisterItemCommands(app, ctx);
  RegisterSwitchCommands(app, ctx);
}

}  // namespace keel::cli
