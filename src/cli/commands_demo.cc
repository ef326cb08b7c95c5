// keel demo: the main job of the README's first command (app/demo.h does the work).
#include <iostream>

#include "app/demo.h"
#include "cli/cli.h"

namespace keel::cli {

void RegisterDemoCommands(CLI::App& app, Context* ctx) {
  auto* cmd = app.add_subcommand(
      "demo", "Run the flagship demo on the bundled sample data in a fresh sandbox workspace");
  auto req = std::make_shared<app::DemoRequest>();
  cmd->add_option("--dir", req->dir, "Workspace folder to (re)create for the demo")
      ->option_text("DIR");
  cmd->add_option("--data", req->data, "Folder with the sample data (leads.csv, ...)")
      ->option_text("DIR");
  cmd->callback(Run(ctx, [ctx, req]() -> Status {
    return app::RunDemo(*req, ctx->env, [](const std::string& line) {
      std::cout << line << "\n" << std::flush;
    });
  }));
}

}  // namespace keel::cli
