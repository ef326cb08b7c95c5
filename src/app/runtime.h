// The application layer's composition root: one Runtime per process (or per request scope
// of a server), built once from options a face (CLI, HTTP server, MCP server) parsed from
// its flags and environment. It reads keel.yaml once and builds every layer below from it:
// the workspace, the vault, model providers, agents with memory, the adapter registry and
// the flow engine. Nothing below it reads the environment or a configuration file
// (docs/architecture.md, "Application layer").
//
// Services (app/*.h) take a Runtime and are the only way a face touches the business.
//
// Ownership: the Runtime owns everything it builds; pointers it hands out live as long as
// it. The Env's pointees (clock, random, file system) must outlive it.
// Thread-safety: Open and the lazy getters are not thread-safe; a face builds what it needs
// before it starts threads (issue 13 makes the engine's operator calls thread-safe).
// Errors: Open returns NotFound (no workspace), InvalidArgument (a bad keel.yaml section),
// and the store's open errors (DataLoss, FailedPrecondition for a newer schema, ...).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/env.h"
#include "core/status.h"

namespace keel {
class HttpClient;
namespace store {
class Workspace;
class Vault;
}  // namespace store
namespace memory {
class Memory;
}
namespace agents {
class AgentRunner;
class ModelProvider;
}  // namespace agents
namespace flow {
class Engine;
class ActionAdapter;
}  // namespace flow
}  // namespace keel

namespace keel::app {

// sandbox: the adapter records what it would send and sends nothing; live: it acts.
enum class AdapterMode { kSandbox, kLive };
const char* AdapterModeName(AdapterMode m);

// One adapter as the Runtime registered it.
struct AdapterEntry {
  flow::ActionAdapter* adapter = nullptr;  // owned by the Runtime
  // False for adapters that only ever record (the `log` adapter): going live is refused.
  bool can_go_live = false;
  // What the adapter's own switch says, and where that came from: "ledger" (`keel adapter
  // live|sandbox`), "keel.yaml" (`adapters: {NAME: {mode:}}`) or "default" (sandbox).
  AdapterMode requested = AdapterMode::kSandbox;
  std::string mode_source;
  // The effective mode: live only when the adapter is switched live and the workspace's
  // `mode:` in keel.yaml is live (the master switch).
  AdapterMode mode = AdapterMode::kSandbox;
  bool test_only = false;  // registered by a test binary
  // keel.yaml `adapters.NAME.concurrency`: its actions in flight at once (0: the default,
  // `effects.per_adapter`; flow/config.h).
  int concurrency = 0;
};

// Where a test binary adds its fake adapters (the shipped binary adds none).
struct AdapterFactory {
  std::string name;
  bool can_go_live = true;
  std::function<std::unique_ptr<flow::ActionAdapter>(const Env&)> make;
};

struct RuntimeOptions {
  std::string workspace_dir;  // resolved by the face (LocateWorkspace)
  bool read_only = false;     // listings and verify: no write transaction is possible
  Env env;
  std::string vault_passphrase;  // for a passphrase vault ($KEEL_VAULT_PASSPHRASE in the CLI)
  std::vector<AdapterFactory> test_adapters;
};

// Settings of the engine a Runtime builds (a worker sets them from its flags).
struct EngineSettings {
  int batch = 64;
  int64_t lease_us = 0;   // 0: the engine's default
  std::string worker_id;  // empty: a random id
};

// Finds the workspace folder: `flag` if non-empty, else `env_value` ($KEEL_WORKSPACE as
// the face read it), else `cwd` and its parents (the first holding keel.yaml). NotFound
// with a hint otherwise.
Result<std::string> LocateWorkspace(const std::string& flag, const std::string& env_value,
                                    const std::string& cwd);

class Runtime {
 public:
  static Result<std::unique_ptr<Runtime>> Open(RuntimeOptions opts);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  store::Workspace& ws() { return *ws_; }
  const Env& env() const { return opts_.env; }
  bool read_only() const { return opts_.read_only; }
  const std::string& config_text() const { return config_text_; }

  // Built on first use from keel.yaml's `vault:` section and the passphrase option. The
  // vault needs no key until a secret is read or set. InvalidArgument (naming the line) for
  // a bad `vault:` section.
  Result<store::Vault*> vault();
  // Memory over the workspace; FailedPrecondition for a read-only Runtime that would
  // need to write (callers that only read use it too: reads need no write access).
  memory::Memory& memory();
  // Agents with model providers from keel.yaml `models:` and memory. InvalidArgument for
  // a bad `models:` section or agent file.
  Result<agents::AgentRunner*> agents();
  // The engine over the agents and the adapter registry; `settings` apply on first use.
  Result<flow::Engine*> engine(const EngineSettings& settings = {});

  // Before a face shows what it read: store::Workspace::SyncReads (this Runtime's pipelined
  // commits, and every process's commits so far, made durable). DataLoss if a sync fails.
  Status SyncReads();

  // Every registered adapter by name with its modes (AdapterEntry): an adapter acts for
  // real only when its own switch is live and keel.yaml's `mode:` is live; the latest switch
  // on the ledger wins over keel.yaml's `adapters:` section.
  const std::map<std::string, AdapterEntry>& adapters() const { return adapters_; }
  // Re-reads the modes after a switch (SetAdapterMode).
  Status ReloadAdapterModes();

  // The workspace's worker lock (.worker.lock, a FileLock through the Env's file system):
  // taken by the first worker and held until this Runtime is destroyed (or the process
  // dies). False if another holds it, or if the lock file cannot be opened.
  bool TakeWorkerLock();
  // True if a worker (another Runtime or process) holds the worker lock now.
  bool WorkerLockHeldElsewhere();

 private:
  explicit Runtime(RuntimeOptions opts);
  Status BuildAdapters();

  RuntimeOptions opts_;
  std::string config_text_;
  std::unique_ptr<store::Workspace> ws_;
  std::unique_ptr<store::Vault> vault_;
  std::unique_ptr<memory::Memory> memory_;
  std::unique_ptr<HttpClient> http_;
  std::vector<std::unique_ptr<agents::ModelProvider>> providers_;
  std::unique_ptr<agents::AgentRunner> agents_;
  std::unique_ptr<class FlowAgents> flow_agents_;
  std::vector<std::unique_ptr<flow::ActionAdapter>> owned_adapters_;
  std::map<std::string, AdapterEntry> adapters_;
  std::unique_ptr<flow::Engine> engine_;
  std::unique_ptr<FileLock> worker_lock_;
};

}  // namespace keel::app
