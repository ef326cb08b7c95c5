// keel demo: the main job of the README's first command. It builds a fresh workspace in
// sandbox mode and runs the flagship flow on the bundled sample data, printing each step and
// where to look. Everything it does goes through the same library calls as the commands.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "core/json.h"
#include "store/artifacts.h"

namespace keel::cli {
namespace {

constexpr char kDemoName[] = "keel demo";

// The demo recreates its folder on every run; it refuses to delete anything that is not a
// workspace it made itself.
Status PrepareDemoDir(const Env& env, const std::string& dir) {
  FileSystem* fs = env.fs;
  if (!fs->Exists(dir)) return OkStatus();
  std::string cfg = JoinPath(dir, "keel.yaml");
  auto text = fs->ReadFile(cfg, 1 << 20);
  if (!text.ok() || text->find(std::string("name: \"") + kDemoName + "\"") == std::string::npos) {
    auto entries = fs->ListDir(dir);
    if (entries.ok() && entries->empty()) return OkStatus();
    return FailedPrecondition(dir + " exists and is not a keel demo workspace; pass --dir with "
                                    "another folder (the demo deletes and recreates its folder)");
  }
  // Artifacts are read-only files inside writable folders: removal works.
  return fs->RemoveTree(dir);
}

void Say(const std::string& line) { std::cout << line << "\n"; }

}  // namespace

void RegisterDemoCommands(CLI::App& app, Context* ctx) {
  auto* cmd = app.add_subcommand(
      "demo", "Run the flagship demo on the bundled sample data in a fresh sandbox workspace");
  struct Opts {
    std::string dir = "demo-workspace";
    std::string data = "examples/data";
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--dir", o->dir, "Workspace folder to (re)create for the demo");
  cmd->add_option("--data", o->data, "Folder with the sample data (leads.csv, ...)");
  cmd->callback(Run(ctx, [ctx, o]() -> Status {
    std::string dir = AbsolutePath(o->dir);
    KEEL_RETURN_IF_ERROR(PrepareDemoDir(ctx->env, dir));
    store::InitOptions init;
    init.name = kDemoName;
    KEEL_RETURN_IF_ERROR(store::Workspace::Init(dir, init, ctx->env));
    Say("1. workspace created in " + dir + " (sandbox mode: nothing leaves this machine)");
    store::WorkspaceOpenOptions open;
    KEEL_ASSIGN_OR_RETURN(auto ws, store::Workspace::Open(dir, open, ctx->env));

    KEEL_ASSIGN_OR_RETURN(int64_t entries, ws->LedgerSize());
    Say("\nThe ledger holds " + std::to_string(entries) + " entries. Where to look:");
    Say("  keel -w " + dir + " ledger            every action, hash-chained");
    return OkStatus();
  }));
}

}  // namespace keel::cli
