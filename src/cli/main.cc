// keel: the command-line entry point. It only wires: parse flags, build the Env, hand off to
// the subcommand registered by a commands_*.cc file.
#include <iostream>

#include "cli/cli.h"

int main(int argc, char** argv) {
  keel::cli::Context ctx;
  CLI::App app{
      "keel - the automation operating system for a one-person business.\n"
      "Holds the business's state in a workspace (keel.yaml, keel.db, artifacts/), records\n"
      "every action in a hash-chained ledger, and runs in sandbox mode until switched live.",
      "keel"};
  app.require_subcommand(1);
  app.add_option("-w,--workspace", ctx.workspace_flag,
                 "Workspace folder (default: $KEEL_WORKSPACE, else the current folder or a "
                 "parent holding keel.yaml)");
  app.set_version_flag("--version", "keel 0.1.0");
  keel::cli::RegisterWorkspaceCommands(app, &ctx);
  keel::cli::RegisterArtifactCommands(app, &ctx);
  keel::cli::RegisterAgentCommands(app, &ctx);
  keel::cli::RegisterDemoCommands(app, &ctx);
  keel::cli::RegisterRecordCommands(app, &ctx);
  keel::cli::RegisterDebugCommands(app, &ctx);
  keel::cli::RegisterSecretCommands(app, &ctx);
  keel::cli::RegisterSnapshotCommands(app, &ctx);
  keel::cli::RegisterIntegrityCommands(app, &ctx);
  keel::cli::RegisterFlowCommands(app, &ctx);
  keel::cli::RegisterMemoryCommands(app, &ctx);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 64;
  }
  return ctx.exit_code;
}
