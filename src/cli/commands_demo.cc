// keel demo: the main job of the README's first command. It builds a fresh workspace in
// sandbox mode and runs the flagship flow on the bundled sample data, printing each step and
// where to look. Everything it does goes through the same library calls as the commands.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "core/json.h"
#include "cli/wiring.h"
#include "store/artifacts.h"
#include "store/checkpoint.h"
#include "store/records.h"
#include "store/snapshot.h"
#include "store/verify.h"

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

    // 2. Leads arrive: the sample CSV is validated row by row and imported in one transaction.
    KEEL_ASSIGN_OR_RETURN(std::string csv,
                          ctx->env.fs->ReadFile(JoinPath(o->data, "leads.csv"), 16 << 20));
    store::ImportOptions imp;
    KEEL_ASSIGN_OR_RETURN(store::ImportReport rep, store::ImportLeads(*ws, csv, imp));
    Say("2. imported " + std::to_string(rep.imported) + " leads from " +
        JoinPath(o->data, "leads.csv") + " (the file is artifact " + rep.file_hash.substr(0, 12) +
        "...)");

    // 3-4. Research and drafting agents (offline provider: no network, no key) on each lead.
    KEEL_ASSIGN_OR_RETURN(auto wiring, WireAgents(*ctx, ws.get(), false));
    store::RecordQuery q;
    q.type = "lead";
    KEEL_ASSIGN_OR_RETURN(auto leads, store::ListRecords(*ws, q));
    Say("3. research agent scored each lead; drafting agent wrote a versioned draft:");
    int to_operator = 0, sandbox_sent = 0;
    for (const auto& lead : leads) {
      nlohmann::json rec = nlohmann::json::parse(lead.data_json);
      std::string site = rec.value("website", "");
      nlohmann::json research_in = {
          {"record", rec},
          {"pages", nlohmann::json::array({{{"url", site.empty() ? "form" : site},
                                            {"text", rec.value("notes", "")}}})}};
      agents::AgentContext actx;
      actx.record_id = lead.id;
      actx.actor = "workflow:demo";
      KEEL_ASSIGN_OR_RETURN(auto research,
                            wiring->runner->Run("research", CanonicalJson(research_in), actx));
      nlohmann::json rout = nlohmann::json::parse(research.output_json);
      nlohmann::json draft_in = {{"record", {{"name", rec.value("name", "there")},
                                             {"email", rec.value("email", "")},
                                             {"company", rec.value("company", "")}}},
                                 {"facts", rout["facts"]},
                                 {"summary", rout["summary"]},
                                 {"kind", "email"}};
      KEEL_ASSIGN_OR_RETURN(auto draft,
                            wiring->runner->Run("drafting", CanonicalJson(draft_in), actx));
      int score = rout.value("score", 0);
      // The flagship's policy: high-value leads go to the operator, the rest are sent by the
      // outreach adapter (in sandbox mode: recorded, never sent).
      bool review = score >= 60;
      (review ? to_operator : sandbox_sent)++;
      std::string line = "   " + lead.id + "  score " + std::to_string(score) + "  " +
                         rec.value("email", "") + "  draft " +
                         draft.draft_artifact.substr(0, 12) + "...  " +
                         (review ? "-> operator review" : "-> send (sandbox)");
      Say(line);
    }
    Say("   " + std::to_string(to_operator) + " for the operator, " +
        std::to_string(sandbox_sent) + " below the threshold (score 60)");

    // 5. Seal, back up and check.
    KEEL_ASSIGN_OR_RETURN(auto cp, store::Checkpoint(*ws));
    Say("4. signed checkpoint over " + std::to_string(cp.tree_size) + " ledger entries");
    store::SnapshotOptions sopt;
    KEEL_ASSIGN_OR_RETURN(auto snap, store::CreateSnapshot(*ws, sopt));
    Say("5. snapshot " + snap.name + " in " + ws->snapshots_dir());
    KEEL_ASSIGN_OR_RETURN(int64_t entries, ws->LedgerSize());
    ws.reset();
    wiring.reset();
    KEEL_ASSIGN_OR_RETURN(auto ver, store::VerifyWorkspace(dir, store::VerifyOptions{}, ctx->env));
    Say(std::string("6. keel verify: ") + (ver.ok() ? "ok" : "FAILED") + ", " +
        std::to_string(ver.entries_checked) + " entries checked");

    Say("\nThe ledger holds " + std::to_string(entries) + " entries. Where to look:");
    Say("  keel -w " + dir + " ledger                 every action, hash-chained");
    Say("  keel -w " + dir + " record list lead       the imported leads");
    Say("  keel -w " + dir + " cost                   model tokens and cost per record");
    Say("  keel -w " + dir + " ledger --kind 'model.*'  every prompt and response (artifacts)");
    Say("  keel -w " + dir + " verify                 re-check every hash and signature");
    if (!ver.ok()) return DataLoss("the demo workspace failed verification");
    return OkStatus();
  }));
}

}  // namespace keel::cli
