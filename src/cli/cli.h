// Shared plumbing for keel's subcommands: workspace discovery, output mode and the mapping
// of Status codes to exit codes. Each commands_*.cc registers its subcommands on the app.
//
// Exit codes (sysexits.h where one fits): 0 ok; 1 failed (verification failed, a refused
// action); 64 usage; 65 bad input data; 66 input not found; 69 unavailable; 70 internal;
// 75 temporary failure, retry (disk full, database locked); 77 permission denied.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "app/runtime.h"
#include "core/env.h"
#include "core/status.h"

namespace keel::cli {

struct Context {
  std::string workspace_flag;  // --workspace
  std::string workspace_env;   // $KEEL_WORKSPACE, read once by Main
  std::string passphrase;      // $KEEL_VAULT_PASSPHRASE, read once by Main
  bool json = false;           // --json on the subcommand that uses it
  Env env;
  int exit_code = 0;
  std::vector<app::AdapterFactory> test_adapters;  // only a test binary sets these
  // Run before standard output leaves the process: set by OpenRuntime to make what the
  // command read durable first (app::MakeReadsDurable). Empty: output passes at once.
  std::function<Status()> before_output;

  // The workspace folder (--workspace, $KEEL_WORKSPACE, the current folder or a parent).
  Result<std::string> WorkspaceDir() const;
  // Finds the workspace and builds the application layer over it.
  Result<std::unique_ptr<app::Runtime>> OpenRuntime(bool read_only = false);
};

// What a binary adds to the shipped command set: the test binary registers its fake
// adapters and test-only commands here; the shipped `keel` passes nothing.
struct MainHooks {
  std::vector<app::AdapterFactory> test_adapters;
  std::function<void(CLI::App&, Context*)> extra_commands;
};
// The whole program: parses argv, runs one command, returns the exit code. Standard output
// is held until what the command read is durable (Context::before_output).
int Main(int argc, char** argv, const MainHooks& hooks);
int MainBody(int argc, char** argv, const MainHooks& hooks, Context& ctx);

// Prints a JSON view (two-space indent; invalid UTF-8 replaced, never an exception).
void PrintJson(const nlohmann::json& j);

int ExitCodeFor(const Status& s);
// Prints "keel: error: ..." to stderr and returns the exit code for `s`.
int Fail(const Status& s);

// Wraps a command body: runs it, reports a non-ok status and records the exit code.
std::function<void()> Run(Context* ctx, std::function<Status()> body);

// Reads all of standard input (up to `max_bytes`).
Result<std::string> ReadStdin(uint64_t max_bytes);
// Reads a file or, for "-", standard input.
Result<std::string> ReadInput(const std::string& path, uint64_t max_bytes);
// "@file" -> file contents; "-" -> stdin; otherwise the text itself.
Result<std::string> TextOrFile(const std::string& arg, uint64_t max_bytes);

void RegisterWorkspaceCommands(CLI::App& app, Context* ctx);  // init, ledger, demo
void RegisterArtifactCommands(CLI::App& app, Context* ctx);   // artifact put|get|show|lineage
void RegisterAgentCommands(CLI::App& app, Context* ctx);      // agent list|show|run, cost
void RegisterDemoCommands(CLI::App& app, Context* ctx);       // demo
void RegisterRecordCommands(CLI::App& app, Context* ctx);  // record add|show|list|set|types, import
void RegisterDebugCommands(CLI::App& app, Context* ctx);   // debug append (tests)
void RegisterSecretCommands(CLI::App& app, Context* ctx);  // secret set|list|rm
void RegisterSnapshotCommands(CLI::App& app, Context* ctx);   // snapshot, restore
void RegisterIntegrityCommands(CLI::App& app, Context* ctx);  // verify, checkpoint
// workflow, run, runs, event, worker, approvals, approve, reject, pause, resume
void RegisterFlowCommands(CLI::App& app, Context* ctx);
// remember, recall, facts, memory stats|purge|used|extract|supersede|summary|decisions
void RegisterMemoryCommands(CLI::App& app, Context* ctx);

}  // namespace keel::cli
