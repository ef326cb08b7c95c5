// The demo: the main job of the README's first command. It builds a fresh workspace in
// sandbox mode and runs the flagship flow on the bundled sample data, narrating each step
// and where to look. Everything it does goes through the same calls as the commands.
#include "app/demo.h"

#include <nlohmann/json.hpp>

#include "app/runs.h"
#include "app/views.h"
#include "core/fs.h"
#include "core/json.h"
#include "flow/engine.h"
#include "store/artifacts.h"
#include "store/checkpoint.h"
#include "store/records.h"
#include "store/snapshot.h"
#include "store/verify.h"

namespace keel::app {
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
    return FailedPrecondition(dir +
                              " exists and is not a keel demo workspace; pass --dir with "
                              "another folder (the demo deletes and recreates its folder)");
  }
  // Artifacts are read-only files inside writable folders: removal works.
  return fs->RemoveTree(dir);
}

// The flagship flow. The research step remembers its facts (agent contract `memory.remember`),
// citing the lead's page; the draft step recalls them and marks the ones it used.
constexpr char kFlagshipWorkflow[] = R"yaml(# Written by `keel demo`. Run it again for one lead:
#   keel run flagship --input '{"lead_id": "rec_...", "record": {...}, "pages": [...],
#                               "recipient": {"name": "..."}}' && keel worker --until-idle
name: flagship
description: Research a lead (facts land in memory with their source), then draft from memory.
input:
  required: [lead_id, record, pages, recipient]
steps:
  - id: research
    agent: research
    input: {lead_id: "${input.lead_id}", record: "${input.record}", pages: "${input.pages}"}
  - id: draft
    agent: drafting
    input:
      lead_id: "${input.lead_id}"
      record: "${input.recipient}"
      summary: "${steps.research.summary}"
      kind: email
)yaml";

// A lead's run input: its record, the lead's form submission as it arrived (its fields and
// notes: outside text, the page the research agent reads), and who the draft is for.
nlohmann::json FlagshipInput(const std::string& lead_id, const std::string& data_json) {
  nlohmann::json rec = nlohmann::json::parse(data_json, nullptr, false);
  if (!rec.is_object()) rec = nlohmann::json::object();
  auto field = [&](const char* k) {
    return rec.contains(k) && rec[k].is_string() ? rec[k].get<std::string>() : std::string();
  };
  std::string form = "From: " + field("name") + " <" + field("email") + ">\n";
  if (!field("title").empty() || !field("company").empty()) {
    form += field("name") + ", " + field("title") + " at " + field("company") + "\n";
  }
  if (!field("website").empty()) form += "Website: " + field("website") + "\n";
  if (!field("phone").empty()) form += "Phone: " + field("phone") + "\n";
  if (!field("notes").empty()) form += "\n" + field("notes") + "\n";
  return {{"lead_id", lead_id},
          {"record", rec},
          {"pages", nlohmann::json::array({{{"url", "form:" + lead_id}, {"text", form}}})},
          {"recipient",
           {{"name", field("name").empty() ? "there" : field("name")},
            {"email", field("email")},
            {"company", field("company")}}}};
}

}  // namespace

Status RunDemo(const DemoRequest& req, const Env& env,
               const std::function<void(const std::string&)>& say) {
  std::string dir = AbsolutePath(req.dir);
  KEEL_RETURN_IF_ERROR(PrepareDemoDir(env, dir));
  store::InitOptions init;
  init.name = kDemoName;
  KEEL_RETURN_IF_ERROR(store::Workspace::Init(dir, init, env));
  say("1. workspace created in " + dir + " (sandbox mode: nothing leaves this machine)");
  RuntimeOptions ro;
  ro.workspace_dir = dir;
  ro.env = env;
  KEEL_ASSIGN_OR_RETURN(auto rt, Runtime::Open(std::move(ro)));
  store::Workspace* ws = &rt->ws();

  // 2. Leads arrive: the sample CSV is validated row by row and imported in one transaction.
  KEEL_ASSIGN_OR_RETURN(std::string csv,
                        env.fs->ReadFile(JoinPath(req.data, "leads.csv"), 16 << 20));
  store::ImportOptions imp;
  KEEL_ASSIGN_OR_RETURN(store::ImportReport rep, store::ImportLeads(*ws, csv, imp));
  say("2. imported " + std::to_string(rep.imported) + " leads from " +
      JoinPath(req.data, "leads.csv") + " (the file is artifact " + rep.file_hash.substr(0, 12) +
      "...)");

  // 3-4. The flagship flow, one durable run per lead: the research agent reads the lead's
  // page (offline provider: no network, no key) and what it learned lands in memory with
  // its provenance; the drafting agent writes from what memory recalls (docs/memory.md).
  KEEL_ASSIGN_OR_RETURN(flow::Engine * engine, rt->engine());
  std::string wf_path = JoinPath(JoinPath(dir, "workflows"), "flagship.yaml");
  KEEL_RETURN_IF_ERROR(env.fs->CreateDirs(JoinPath(dir, "workflows")));
  KEEL_RETURN_IF_ERROR(WriteFileAtomic(env.fs, wf_path, kFlagshipWorkflow));
  KEEL_ASSIGN_OR_RETURN(auto wf, engine->Resolve(wf_path));
  store::RecordQuery q;
  q.type = "lead";
  KEEL_ASSIGN_OR_RETURN(auto leads, store::ListRecords(*ws, q));
  std::vector<std::string> runs;
  for (const auto& lead : leads) {
    KEEL_ASSIGN_OR_RETURN(std::string run,
                          engine->Start(wf, FlagshipInput(lead.id, lead.data_json)));
    runs.push_back(run);
  }
  KEEL_RETURN_IF_ERROR(engine->RunUntilIdle().status());
  say("3. flagship flow (workflows/flagship.yaml), one run per lead: research -> memory -> "
      "draft:");
  int to_operator = 0, sandbox_sent = 0;
  for (size_t i = 0; i < leads.size(); ++i) {
    KEEL_ASSIGN_OR_RETURN(RunDetail detail, LoadRunDetail(*ws, runs[i]));
    nlohmann::json run = views::Run(detail);
    nlohmann::json research, draft;
    for (const auto& st : run["steps"]) {
      if (st.value("key", "") == "research") research = st.value("output", nlohmann::json());
      if (st.value("key", "") == "draft") draft = st.value("output", nlohmann::json());
    }
    if (run.value("status", "") != "completed" || !research.is_object() || !draft.is_object()) {
      return Internal("the flagship run " + runs[i] + " for " + leads[i].id + " ended " +
                      run.value("status", "?") + ": keel -w " + dir + " run show " + runs[i]);
    }
    int score = research.value("score", 0);
    size_t facts = research.contains("facts") ? research["facts"].size() : 0;
    // The flagship's policy: high-value leads go to the operator, the rest are sent by the
    // outreach adapter (in sandbox mode: recorded, never sent).
    bool review = score >= 60;
    (review ? to_operator : sandbox_sent)++;
    say("   " + leads[i].id + "  score " + std::to_string(score) + "  " + std::to_string(facts) +
        " facts  draft " + draft.value("draft_artifact", "").substr(0, 12) + "...  " +
        (review ? "-> operator review" : "-> send (sandbox)"));
  }
  say("   " + std::to_string(to_operator) + " for the operator, " + std::to_string(sandbox_sent) +
      " below the threshold (score 60)");

  // 5. Seal, back up and check.
  KEEL_ASSIGN_OR_RETURN(auto cp, store::Checkpoint(*ws));
  say("4. signed checkpoint over " + std::to_string(cp.tree_size) + " ledger entries");
  store::SnapshotOptions sopt;
  KEEL_ASSIGN_OR_RETURN(auto snap, store::CreateSnapshot(*ws, sopt));
  say("5. snapshot " + snap.name + " in " + ws->snapshots_dir());
  KEEL_ASSIGN_OR_RETURN(int64_t entries, ws->LedgerSize());
  rt.reset();  // verify opens the workspace itself
  KEEL_ASSIGN_OR_RETURN(auto ver, store::VerifyWorkspace(dir, store::VerifyOptions{}, env));
  say(std::string("6. keel verify: ") + (ver.ok() ? "ok" : "FAILED") + ", " +
      std::to_string(ver.entries_checked) + " entries checked");

  say("\nThe ledger holds " + std::to_string(entries) + " entries. Where to look:");
  say("  keel -w " + dir + " ledger                 every action, hash-chained");
  say("  keel -w " + dir + " record list lead       the imported leads");
  say("  keel -w " + dir + " cost                   model tokens and cost per record");
  if (!leads.empty()) {
    say("  keel -w " + dir + " facts " + leads[0].id + "   what research learned, with sources");
  }
  say("  keel -w " + dir + " memory stats           recalls and the facts drafts used");
  say("  keel -w " + dir + " ledger --kind 'model.*'  every prompt and response (artifacts)");
  say("  keel -w " + dir + " verify                 re-check every hash and signature");
  if (!ver.ok()) return DataLoss("the demo workspace failed verification");
  return OkStatus();
}

}  // namespace keel::app
