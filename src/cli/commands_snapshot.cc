// keel snapshot [--keep N] [--list], keel restore SNAPSHOT DIR.
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/views.h"
#include "app/workspace.h"
#include "cli/cli.h"

namespace keel::cli {

void RegisterSnapshotCommands(CLI::App& app, Context* ctx) {
  {
    auto* cmd = app.add_subcommand(
        "snapshot",
        "Write a consistent snapshot of the workspace (database via SQLite's online backup, "
        "keel.yaml, keys/, checkpoints.log, artifacts, manifest.json) into "
        "snapshots/<UTC time>/, safe while keel is in use; then prune to the newest N");
    struct Opts {
      int keep = 0;
      bool list = false;
      bool json = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("--keep", o->keep,
                    "Keep this many snapshots, pruning older ones (default: keel.yaml "
                    "snapshots.keep)");
    cmd->add_flag("--list", o->list, "List the published snapshots, oldest first, and exit");
    cmd->add_flag("--json", o->json, "Print JSON");
    cmd->callback(Run(ctx, [ctx, o, cmd]() -> Status {
      if (o->list) {
        KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime(true));
        KEEL_ASSIGN_OR_RETURN(auto list, app::ListSnapshots(*rt));
        if (o->json) {
          nlohmann::json arr = nlohmann::json::array();
          for (const auto& s : list) arr.push_back(app::views::SnapshotListing(s.name, s.path));
          PrintJson(arr);
        } else {
          for (const auto& s : list) std::cout << s.name << "\n";
          if (list.empty()) std::cerr << "no snapshots; make one with `keel snapshot`\n";
        }
        return OkStatus();
      }
      if (cmd->count("--keep") > 0 && o->keep < 1) {
        return InvalidArgument("--keep must be at least 1");
      }
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime());
      KEEL_ASSIGN_OR_RETURN(auto r, app::TakeSnapshot(*rt, o->keep));
      if (o->json) {
        PrintJson(app::views::Snapshot(r));
      } else {
        std::cout << "snapshot " << r.name << " written to " << r.path << " (" << r.ledger_size
                  << " ledger entries, " << r.artifacts << " artifacts, " << r.bytes << " bytes)\n";
        for (const auto& p : r.pruned) std::cout << "pruned " << p << "\n";
      }
      return OkStatus();
    }));
  }
  {
    auto* cmd = app.add_subcommand(
        "restore",
        "Recreate a workspace from SNAPSHOT (a snapshot folder, or the name of one in the "
        "workspace's snapshots/) in DIR, which must be new or empty; every file is checked "
        "against the manifest and the ledger chain is recomputed");
    auto snap = std::make_shared<std::string>();
    auto dir = std::make_shared<std::string>();
    cmd->add_option("SNAPSHOT", *snap, "Snapshot folder or name (e.g. 20261124T221500Z)")
        ->required();
    cmd->add_option("DIR", *dir, "Folder to restore into (new or empty)")->required();
    cmd->callback(Run(ctx, [ctx, snap, dir]() -> Status {
      // A name is looked up in the current workspace's snapshots/, when there is one.
      std::string snapshots_dir;
      if (auto found = ctx->WorkspaceDir(); found.ok())
        snapshots_dir = JoinPath(*found, "snapshots");
      KEEL_ASSIGN_OR_RETURN(auto r, app::Restore(*snap, snapshots_dir, *dir, ctx->env));
      std::cout << "restored workspace " << r.workspace_id << " into " << r.dir << " ("
                << r.ledger_size << " ledger entries, " << r.artifacts << " artifacts)\n";
      return OkStatus();
    }));
  }
}

}  // namespace keel::cli
