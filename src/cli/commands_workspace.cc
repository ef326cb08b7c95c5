// keel init, keel ledger.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "core/json.h"

namespace keel::cli {
namespace {

nlohmann::json EntryJson(const store::LedgerEntry& e) {
  nlohmann::json arts = nlohmann::json::array();
  for (const auto& a : e.artifacts) arts.push_back(ToHex(a));
  nlohmann::json payload = nlohmann::json::parse(e.payload, nullptr, false);
  if (payload.is_discarded()) payload = e.payload;
  return {{"seq", e.seq},
          {"time", FormatTimeMicros(e.time_us)},
          {"time_us", e.time_us},
          {"actor", e.actor},
          {"kind", e.kind},
          {"subject", e.subject},
          {"run_id", e.run_id},
          {"step_id", e.step_id},
          {"payload", payload},
          {"artifacts", arts},
          {"prev_hash", ToHex(e.prev_hash)},
          {"hash", ToHex(e.hash)}};
}

std::string Shorten(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  return s.substr(0, n - 3) + "...";
}

}  // namespace

void RegisterWorkspaceCommands(CLI::App& app, Context* ctx) {
  // keel init [DIR]
  {
    auto* cmd = app.add_subcommand("init", "Create a workspace (keel.yaml, keel.db, artifacts/, "
                                           "snapshots/, keys/) in DIR (default: .)");
    auto dir = std::make_shared<std::string>(".");
    auto name = std::make_shared<std::string>("My business");
    cmd->add_option("dir", *dir, "Folder to create the workspace in");
    cmd->add_option("--name", *name, "Business name shown to the operator");
    cmd->callback(Run(ctx, [ctx, dir, name]() -> Status {
      store::InitOptions o;
      o.name = *name;
      KEEL_RETURN_IF_ERROR(store::Workspace::Init(*dir, o, ctx->env));
      std::cout << "created workspace " << AbsolutePath(*dir) << "\n";
      return OkStatus();
    }));
  }
  // keel ledger [filters] [--json]
  {
    auto* cmd = app.add_subcommand("ledger", "List ledger entries, oldest first (filters combine)");
    struct Opts {
      store::LedgerQuery q;
      std::string since, until;
      bool json = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("--subject", o->q.subject, "Only entries about this id");
    cmd->add_option("--kind", o->q.kind, "Only this kind; a trailing * matches a prefix");
    cmd->add_option("--actor", o->q.actor, "Only this actor (operator, agent:NAME, ...)");
    cmd->add_option("--run", o->q.run_id, "Only entries of this workflow run");
    cmd->add_option("--since", o->since, "From this time (RFC 3339 or YYYY-MM-DD), inclusive");
    cmd->add_option("--until", o->until, "Before this time (RFC 3339 or YYYY-MM-DD)");
    cmd->add_option("--after", o->q.after_seq, "Only entries with seq greater than this");
    cmd->add_option("--limit", o->q.limit, "At most this many entries");
    cmd->add_flag("--newest", o->q.newest_first, "Newest first");
    cmd->add_flag("--json", o->json, "Print a JSON array of entries");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      if (!o->since.empty() && !ParseTimeMicros(o->since, &o->q.since_us)) {
        return InvalidArgument("--since '" + o->since + "' is not a date or RFC 3339 time");
      }
      if (!o->until.empty() && !ParseTimeMicros(o->until, &o->q.until_us)) {
        return InvalidArgument("--until '" + o->until + "' is not a date or RFC 3339 time");
      }
      if (o->q.limit < 0 || o->q.after_seq < 0) {
        return InvalidArgument("--limit and --after must not be negative");
      }
      KEEL_ASSIGN_OR_RETURN(auto ws, ctx->OpenWorkspace(true));
      KEEL_ASSIGN_OR_RETURN(auto entries, ws->QueryLedger(o->q));
      if (o->json) {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& e : entries) arr.push_back(EntryJson(e));
        std::cout << arr.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
        return OkStatus();
      }
      for (const auto& e : entries) {
        std::cout << e.seq << "  " << FormatTimeMicros(e.time_us).substr(0, 19) << "Z  "
                  << e.actor << "  " << e.kind;
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
