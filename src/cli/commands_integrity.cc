// keel verify, keel checkpoint.
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/views.h"
#include "app/workspace.h"
#include "cli/cli.h"

namespace keel::cli {

namespace {

void PrintProblems(const std::vector<std::string>& problems, const char* first) {
  std::cout << first << problems[0] << "\n";
  for (size_t i = 1; i < problems.size() && i < 20; ++i) {
    std::cout << "  also: " << problems[i] << "\n";
  }
  if (problems.size() > 20) std::cout << "  and " << problems.size() - 20 << " more problems\n";
}

Status RepairCommand(Context* ctx, const std::string& dir, const std::string& dest, bool json) {
  KEEL_ASSIGN_OR_RETURN(store::RepairReport r, app::RepairFromLedger(dir, dest, ctx->env));
  if (json) {
    PrintJson(app::views::Repair(r));
  } else {
    if (r.damage.empty()) {
      std::cout << "the workspace verified before the repair; rebuilt it anyway\n";
    } else {
      PrintProblems(r.damage, "found: ");
    }
    int64_t rows = 0;
    for (const auto& [table, n] : r.rows) rows += n;
    std::cout << "rebuilt " << rows << " rows of " << r.rows.size()
              << " state tables from the ledger, copied " << r.artifacts_copied
              << " artifacts, into " << r.dst_dir << "\n";
    for (const auto& n : r.notes) std::cout << "note: " << n << "\n";
    if (r.verify.ok()) {
      std::cout << "ok: the repaired workspace verifies (" << r.verify.entries_checked
                << " ledger entries, " << r.verify.state_rows_checked
                << " rows). Check it, then move it in place of the damaged one\n";
    } else {
      PrintProblems(r.verify.problems, "FAILED: the repaired workspace does not verify: ");
    }
  }
  if (!r.verify.ok()) ctx->exit_code = 1;
  return OkStatus();
}

}  // namespace

void RegisterIntegrityCommands(CLI::App& app, Context* ctx) {
  // keel verify [--json] [--no-integrity-check] [--no-artifacts] [--repair-from-ledger DIR]
  {
    auto* cmd = app.add_subcommand(
        "verify",
        "Recompute the ledger's hash chain, every artifact's hash and every signed checkpoint, "
        "and compare every row of the state tables (records, facts, runs, steps, outbox, "
        "approvals, ...) with the last image the ledger holds for it (read-only). Exit 0 if "
        "all is intact, 1 naming the table, row and ledger entry of each problem otherwise");
    struct Opts {
      bool json = false;
      bool no_integrity = false;
      bool no_artifacts = false;
      bool no_state = false;
      std::string repair;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_flag("--json", o->json, "Print the report as one JSON object");
    cmd->add_flag("--no-integrity-check", o->no_integrity,
                  "Skip SQLite's PRAGMA integrity_check (time proportional to the database)");
    cmd->add_flag("--no-artifacts", o->no_artifacts,
                  "Skip re-hashing artifact files (time proportional to their total size)");
    cmd->add_flag("--no-state", o->no_state,
                  "Skip comparing the state tables with the ledger's row images");
    cmd->add_option("--repair-from-ledger", o->repair,
                    "Rebuild the state tables from the ledger into DIR (a new folder: the "
                    "workspace itself is only read), then verify DIR. For a database edited "
                    "behind keel's back when no snapshot predates the edit")
        ->type_name("DIR");
    cmd->callback(Run(ctx, [ctx, o, cmd]() -> Status {
      KEEL_ASSIGN_OR_RETURN(std::string dir, ctx->WorkspaceDir());
      if (cmd->count("--repair-from-ledger") > 0) {
        return RepairCommand(ctx, dir, o->repair, o->json);
      }
      store::VerifyOptions vo;
      vo.integrity_check = !o->no_integrity;
      vo.artifacts = !o->no_artifacts;
      vo.state = !o->no_state;
      KEEL_ASSIGN_OR_RETURN(store::VerifyReport r, app::Verify(dir, vo, ctx->env));
      if (o->json) {
        PrintJson(app::views::Verify(r));
      } else {
        for (const auto& n : r.notes) std::cout << "note: " << n << "\n";
        if (r.ok()) {
          std::cout << "ok: " << r.entries_checked << " ledger entries, " << r.state_rows_checked
                    << " state rows, " << r.artifact_files_checked << " artifact files, "
                    << r.checkpoints_checked << " signed checkpoints (latest covers "
                    << r.last_checkpoint_size << " entries), integrity check " << r.integrity
                    << "\n";
        } else {
          PrintProblems(r.problems, "FAILED: ");
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
