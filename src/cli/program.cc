// keel's command tree: registers every command group, parses argv, turns parse errors into
// messages a newcomer can act on (a misspelt command gets the closest real one).
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <streambuf>

#include "cli/cli.h"

namespace keel::cli {
namespace {

// Edit distance (insert, delete, substitute, swap of neighbours), for "did you mean".
size_t Distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, sub});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// The closest subcommand of `cmd` to `word`, or "" when nothing is close.
std::string Closest(CLI::App* cmd, const std::string& word) {
  std::string best;
  size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;
  for (CLI::App* sub : cmd->get_subcommands({})) {
    const std::string& name = sub->get_name();
    size_t d = Distance(word, name);
    if (name.rfind(word, 0) == 0 && word.size() >= 3) d = std::min<size_t>(d, 1);
    if (d < best_d) best_d = d, best = name;
  }
  return best;
}

// After a parse error: finds the first word that names no subcommand where one was
// expected, and says which command was probably meant. Empty when that is not the error.
std::string SuggestCommand(CLI::App& app, int argc, char** argv) {
  CLI::App* cur = &app;
  std::string path = "keel";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") break;
    if (!a.empty() && a[0] == '-') {
      if (a == "-w" || a == "--workspace") ++i;  // the global option's value
      continue;
    }
    if (cur->get_subcommands({}).empty()) return "";
    CLI::App* next = nullptr;
    for (CLI::App* sub : cur->get_subcommands({})) {
      if (sub->check_name(a)) next = sub;
    }
    if (next != nullptr) {
      cur = next;
      path += " " + next->get_name();
      continue;
    }
    // A positional of a command that also has subcommands (`keel run NAME`) is fine.
    if (!cur->get_options([](const CLI::Option* o) { return o->get_positional(); }).empty()) {
      return "";
    }
    std::string guess = Closest(cur, a);
    return "'" + a + "' is not a command of `" + path + "`" +
           (guess.empty() ? "" : "; did you mean `" + path + " " + guess + "`?") + " (see `" +
           path + " --help`)";
  }
  return "";
}

// Standard output of a command that read a workspace: what it shows may come from a
// worker's round that is committed but not yet fsynced (docs/architecture.md,
// "Durability"), so nothing leaves the process before `barrier` made it durable. Output is
// held until a flush (the demo's progress lines), 1 MiB, or the end of the command.
class DurableStdout final : public std::streambuf {
 public:
  DurableStdout(std::streambuf* out, const std::function<Status()>* barrier)
      : out_(out), barrier_(barrier) {}
  // Passes what is held on, after the barrier. False (and nothing passed on) if it failed.
  bool Release() {
    if (held_.empty()) return failed_.ok();
    if (failed_.ok() && *barrier_) failed_ = (*barrier_)();
    if (!failed_.ok()) {
      held_.clear();
      return false;
    }
    out_->sputn(held_.data(), static_cast<std::streamsize>(held_.size()));
    out_->pubsync();
    held_.clear();
    return true;
  }
  const Status& failed() const { return failed_; }

 protected:
  int_type overflow(int_type c) override {
    if (c != traits_type::eof()) held_.push_back(static_cast<char>(c));
    if (held_.size() >= kMaxHeld) Release();
    return traits_type::not_eof(c);
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    held_.append(s, static_cast<size_t>(n));
    if (held_.size() >= kMaxHeld) Release();
    return n;
  }
  int sync() override { return Release() ? 0 : -1; }

 private:
  static constexpr size_t kMaxHeld = 1 << 20;
  std::streambuf* out_;
  const std::function<Status()>* barrier_;
  std::string held_;
  Status failed_;
};

}  // namespace

int Main(int argc, char** argv, const MainHooks& hooks) {
  Context ctx;
  DurableStdout durable(std::cout.rdbuf(), &ctx.before_output);
  std::streambuf* saved = std::cout.rdbuf(&durable);
  struct Restore {
    std::streambuf* saved;
    ~Restore() { std::cout.rdbuf(saved); }
  } restore{saved};
  int code = MainBody(argc, argv, hooks, ctx);
  if (!durable.Release()) {
    std::cerr << "keel: error: what was read could not be made durable, so it is not shown: "
              << durable.failed().ToString() << "\n";
    return std::max(code, ExitCodeFor(durable.failed()));
  }
  return code;
}

int MainBody(int argc, char** argv, const MainHooks& hooks, Context& ctx) {
  ctx.test_adapters = hooks.test_adapters;
  if (const char* w = std::getenv("KEEL_WORKSPACE")) ctx.workspace_env = w;
  if (const char* p = std::getenv("KEEL_VAULT_PASSPHRASE")) ctx.passphrase = p;
  CLI::App app{
      "keel - the automation operating system for a one-person business.\n"
      "Holds the business's state in a workspace (keel.yaml, keel.db, artifacts/), records\n"
      "every action in a hash-chained ledger, and runs in sandbox mode until switched live.",
      "keel"};
  app.require_subcommand(0, 1);
  app.add_option("-w,--workspace", ctx.workspace_flag,
                 "Workspace folder (default: $KEEL_WORKSPACE, else the current folder or a "
                 "parent holding keel.yaml)")
      ->option_text("DIR");
  app.set_version_flag("--version", "keel 0.1.0");
  RegisterWorkspaceCommands(app, &ctx);
  RegisterArtifactCommands(app, &ctx);
  RegisterAgentCommands(app, &ctx);
  RegisterDemoCommands(app, &ctx);
  RegisterRecordCommands(app, &ctx);
  RegisterSecretCommands(app, &ctx);
  RegisterSnapshotCommands(app, &ctx);
  RegisterIntegrityCommands(app, &ctx);
  RegisterFlowCommands(app, &ctx);
  RegisterMemoryCommands(app, &ctx);
  if (hooks.extra_commands) hooks.extra_commands(app, &ctx);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (std::string hint = SuggestCommand(app, argc, argv); !hint.empty()) {
      std::cerr << "keel: error: " << hint << "\n";
    } else {
      app.exit(e);
    }
    return 64;
  }
  if (app.get_subcommands().empty()) {  // a bare `keel`: what it can do
    std::cout << app.help();
    return 0;
  }
  return ctx.exit_code;
}

}  // namespace keel::cli
