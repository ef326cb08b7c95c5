// keel: the shipped command-line entry point. It only wires: the real adapters are
// registered by app::Runtime; this binary adds no test adapters and no test commands.
#include "cli/cli.h"

int main(int argc, char** argv) {
  return keel::cli::Main(argc, argv, keel::cli::MainHooks{});
}
