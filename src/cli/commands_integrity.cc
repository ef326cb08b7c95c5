// keel verify, keel checkpoint.
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/views.h"
#include "app/workspace.h"
#include "cli/cli.h"

namespace keel::cli {

void RegisterIntegrityCommands(CLI::App& app, Context* ctx) {
  // keel verify [--json] [--no-integrity-check] [--no-artifacts]
  {
    auto* cmd = app.add_subcommand(
        "verify",
        "Recompute the ledger's hash chain, every artifact's hash and every signed checkpoint "
        "(read-only). Exit 0 if all is intact, 1 with the first problem otherwise");
    struct Opts {
      bool json = false;
      bool no_integrity = false;
      bool no_artifacts = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_flag("--json", o->json, "Print the report as one JSON object");
    cmd->add_flag("--no-integrity-check", o->no_integrity,
                  "Skip SQLite's PRAGMA integrity_check (time proportional to the database)");
    cmd->add_flag("--no-artifacts", o->no_artifacts,
                  "Skip re-hashing artifact files (time proportional to their total size)");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      KEEL_ASSIGN_OR_RETURN(std::string dir, ctx->WorkspaceDir());
      store::VerifyOptions vo;
      vo.integrity_check = !o->no_integrity;
      vo.artifacts = !o->no_artifacts;
      KEEL_ASSIGN_OR_RETURN(store::VerifyReport r, app::Verify(dir, vo, ctx->env));
      if (o->json) {
        PrintJson(app::views::Verify(r));
      } else {
        for (const auto& n : r.notes) std::cout << "note: " << n << "\n";
        if (r.ok()) {
          std::cout << "ok: " << r.entries_checked << " ledger entries, "
                    << r.artifact_files_checked << " artifact files, " << r.checkpoints_checked
                    << " signed checkpoints (latest covers " << r.last_checkpoint_size
                    << " entries), integrity check " << r.integrity << "\n";
        } else {
          std::cout << "FAILED: " << r.problems[0] << "\n";
          for (size_t i = 1; i < r.problems.size() && i < 20; ++i) {
            std::cout << "  also: " << r.problems[i] << "\n";
          }
          if (r.problems.size() > 20) {
            std::cout << "  and " << r.problems.size() - 20 << " more problems\n";
          }
          std::cout << "checked " << r.entries_checked << " ledger entries, "
                    << r.artifact_files_checked << " artifact files, " << r.checkpoints_checked
                    << " checkpoints\n";
        }
      }
      if (!r.ok()) ctx->exit_code = 1;
      return OkStatus();
    }));
  }
  // keel checkpoint [--json]
  {
    auto* cmd = app.add_subcommand(
        "checkpoint",
        "Sign a Merkle checkpoint over the whole ledger now (also taken automatically every "
        "ledger.checkpoint_every entries); appended to checkpoints.log and the database");
    auto json = std::make_shared<bool>(false);
    cmd->add_flag("--json", *json, "Print the checkpoint as JSON");
    cmd->callback(Run(ctx, [ctx, json]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime());
      KEEL_ASSIGN_OR_RETURN(store::CheckpointInfo c, app::TakeCheckpoint(*rt));
      if (*json) {
        PrintJson(app::views::Checkpoint(c));
      } else {
        std::cout << "checkpoint: " << c.tree_size << " entries, root " << ToHex(c.root) << "\n";
      }
      return OkStatus();
    }));
  }
}

}  // namespace keel::cli
