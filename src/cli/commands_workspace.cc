// keel init, keel ledger.
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/views.h"
#include "app/workspace.h"
#include "cli/cli.h"

namespace keel::cli {
namespace {

std::string Shorten(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  return s.substr(0, n - 3) + "...";
}

}  // namespace

void RegisterWorkspaceCommands(CLI::App& app, Context* ctx) {
  // keel init [DIR]
  {
    auto* cmd = app.add_subcommand("init",
                                   "Create a workspace (keel.yaml, keel.db, artifacts/, "
                                   "snapshots/, keys/, workflows/; owner-only) in DIR "
                                   "(default: .)");
    auto req = std::make_shared<app::InitRequest>();
    cmd->add_option("DIR", req->dir, "Folder to create the workspace in");
    cmd->add_option("--name", req->name, "Business name shown to the operator");
    cmd->add_flag("--allow-nested", req->nested,
                  "Allow DIR inside another workspace (refused by default: commands there "
                  "would act on the inner one)");
    cmd->callback(Run(ctx, [ctx, req]() -> Status {
      KEEL_ASSIGN_OR_RETURN(std::string dir, app::InitWorkspace(*req, ctx->env));
      std::cout << "created workspace " << dir << "\n";
      return OkStatus();
    }));
  }
  // keel ledger [filters] [--json]
  {
    auto* cmd = app.add_subcommand("ledger", "List ledger entries, oldest first (filters combine)");
    struct Opts {
      app::LedgerRequest r;
      store::LedgerQuery& q = r.query;
      bool json = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("--subject", o->q.subject, "Only entries about this id");
    cmd->add_option("--kind", o->q.kind, "Only this kind; a trailing * matches a prefix");
    cmd->add_option("--actor", o->q.actor, "Only this actor (operator, agent:NAME, ...)");
    cmd->add_option("--run", o->q.run_id, "Only entries of this workflow run");
    cmd->add_option("--since", o->r.since, "From this time (RFC 3339 or YYYY-MM-DD), inclusive");
    cmd->add_option("--until", o->r.until, "Before this time (RFC 3339 or YYYY-MM-DD)");
    cmd->add_option("--after", o->q.after_seq, "Only entries with seq greater than this");
    cmd->add_option("--limit", o->q.limit, "At most this many entries, 1..100000 (default: all)")
        ->check(CLI::Range(int64_t{1}, int64_t{100000}));
    cmd->add_flag("--newest", o->q.newest_first, "Newest first");
    cmd->add_flag("--json", o->json, "Print a JSON array of entries");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime(true));
      KEEL_ASSIGN_OR_RETURN(auto entries, app::QueryLedger(*rt, o->r));
      if (o->json) {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& e : entries) arr.push_back(app::views::LedgerEntry(e));
        PrintJson(arr);
        return OkStatus();
      }
      for (const auto& e : entries) {
        std::cout << e.seq << "  " << FormatTimeMicros(e.time_us).substr(0, 19) << "Z  " << e.actor
                  << "  " << e.kind;
        if (!e.subject.empty()) std::cout << "  " << Shorten(e.subject, 70);
        if (!e.run_id.empty()) std::cout << "  run=" << e.run_id;
        if (!e.step_id.empty()) std::cout << " step=" << e.step_id;
        if (e.payload != "{}") std::cout << "  " << Shorten(e.payload, 100);
        std::cout << "\n";
      }
      if (entries.empty()) std::cerr << "no matching ledger entries\n";
      return OkStatus();
    }));
  }
}

}  // namespace keel::cli
