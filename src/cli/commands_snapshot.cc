// keel snapshot [--keep N] [--list], keel restore SNAPSHOT DIR.
#include <unistd.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "store/snapshot.h"

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
        KEEL_ASSIGN_OR_RETURN(auto ws, ctx->OpenWorkspace(true));
        KEEL_ASSIGN_OR_RETURN(auto names, store::ListSnapshots(ctx->env.fs, ws->snapshots_dir()));
        if (o->json) {
          nlohmann::json arr = nlohmann::json::array();
          for (const auto& n : names) {
            arr.push_back({{"name", n}, {"path", JoinPath(ws->snapshots_dir(), n)}});
          }
          std::cout << arr.dump(2) << "\n";
        } else {
          for (const auto& n : names) std::cout << n << "\n";
          if (names.empty()) std::cerr << "no snapshots; make one with `keel snapshot`\n";
        }
        return OkStatus();
      }
      if (cmd->count("--keep") > 0 && o->keep < 1) {
        return InvalidArgument("--keep must be at least 1");
      }
      KEEL_ASSIGN_OR_RETURN(auto ws, ctx->OpenWorkspace());
      store::SnapshotOptions so;
      so.keep = o->keep;
      KEEL_ASSIGN_OR_RETURN(auto r, store::CreateSnapshot(*ws, so));
      if (o->json) {
        std::cout << nlohmann::json{{"name", r.name},
                                    {"path", r.path},
                                    {"ledger_size", r.ledger_size},
                                    {"last_hash", r.last_hash},
                                    {"artifacts", r.artifacts},
                                    {"bytes", r.bytes},
                                    {"pruned", r.pruned}}
                         .dump(2)
                  << "\n";
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
    cmd->add_option("snapshot", *snap, "Snapshot folder or name (e.g. 20261124T221500Z)")
        ->required();
    cmd->add_option("dir", *dir, "Folder to restore into (new or empty)")->required();
    cmd->callback(Run(ctx, [ctx, snap, dir]() -> Status {
      std::string snapshots_dir;
      char buf[4096];
      std::string cwd = ::getcwd(buf, sizeof buf) ? buf : ".";
      if (auto found = store::Workspace::Find(ctx->workspace_flag, cwd); found.ok()) {
        snapshots_dir = JoinPath(*found, "snapshots");
      }
      KEEL_ASSIGN_OR_RETURN(std::string path,
                            store::ResolveSnapshot(ctx->env.fs, *snap, snapshots_dir));
      KEEL_ASSIGN_OR_RETURN(auto r, store::RestoreSnapshot(path, *dir, ctx->env));
      std::cout << "restored workspace " << r.workspace_id << " into " << r.dir << " ("
                << r.ledger_size << " ledger entries, " << r.artifacts << " artifacts)\n";
      return OkStatus();
    }));
  }
}

}  // namespace keel::cli
