// The one view encoder: every JSON object keel shows (CLI `--json`, and the HTTP API and MCP
// server to come) is built here, one shape per thing. docs/views.md is the catalogue; a
// shape changes here and there together. Text output of a face is rendered from these same
// objects, so text and JSON never disagree.
//
// All functions are pure (no I/O) and thread-safe. Stored JSON that fails to parse (which
// `keel verify` reports) is shown as null rather than failing the whole view.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "app/runtime.h"
#include "store/artifacts.h"
#include "store/checkpoint.h"
#include "store/ledger.h"
#include "store/records.h"
#include "store/repair.h"
#include "store/runs.h"
#include "store/snapshot.h"
#include "store/vault.h"
#include "store/verify.h"

namespace keel::flow {
struct Workflow;
}
namespace keel::memory {
struct Fact;
struct ScoredFact;
struct RecallResult;
struct RememberResult;
struct RateStats;
struct MemoryStats;
struct Summary;
struct Decision;
}  // namespace keel::memory
namespace keel::agents {
struct AgentContract;
struct ProposedAction;
struct AgentOutcome;
}  // namespace keel::agents
namespace keel::store {
struct CostLine;
struct CostReport;
}  // namespace keel::store

namespace keel::app {

// A run with everything `keel run show` tells (app/runs.h LoadRunDetail).
struct RunDetail {
  store::RunRow run;
  bool canceling = false;  // canceled, compensations still running
  std::vector<store::JournalRow> steps;
  std::vector<store::LedgerEntry> timeline;
  std::vector<store::ApprovalRow> items;
  std::vector<store::OutboxRow> outbox;
};

namespace views {

using nlohmann::json;

// RFC 3339 UTC with microseconds.
std::string Time(int64_t us);

// A page of a list: {"items": [...], "next": CURSOR or null}. The cursor is opaque.
json Page(json items, const std::string& next_cursor);

json RunSummary(const store::RunRow& r);
json Run(const RunDetail& d);
// An operator item: approval, uncertain action, needs-human step (one shape, one
// lifecycle: `state` open | decided | expired | canceled; `status` keeps the stored word).
json Item(const store::ApprovalRow& a);
// The item's lifecycle state for a stored status.
std::string ItemState(const std::string& status);
// A workflow with its steps flattened in order (each with its depth in the tree).
json Workflow(const flow::Workflow& w);
json WorkflowSteps(const flow::Workflow& w);
json WorkflowError(const std::string& path, const std::string& error);  // list: a bad file
// An adapter with its mode, where the mode came from, and its pause switch.
json Adapter(const std::string& name, const AdapterEntry& e, bool paused);
json LedgerEntry(const store::LedgerEntry& e);
json Record(const store::Record& r);
json Verify(const store::VerifyReport& r);
// keel verify --repair-from-ledger: what was wrong, what was rebuilt, the new workspace's
// verify report.
json Repair(const store::RepairReport& r);
json Snapshot(const store::SnapshotResult& r);
json SnapshotListing(const std::string& name, const std::string& path);
json Restored(const store::RestoreResult& r);
json Checkpoint(const store::CheckpointInfo& c);

// --- memory (docs/memory.md, "CLI")
// A fact with its `provenance` object (every source, oldest first).
json Fact(const memory::Fact& f);
// A recalled fact: the fact's fields plus score, relevance, recency and tokens.
json RecalledFact(const memory::ScoredFact& s);
// What a recall returned, with the request it answers.
json Recall(const memory::RecallResult& r, const std::string& query, const std::string& subject,
            int64_t budget_tokens);
json Remembered(const memory::RememberResult& r);     // {fact_id, merged, already_known}
json ExtractedFact(const memory::RememberResult& r);  // {fact_id, merged}
// Retrieval hit/miss counts of one agent or workflow (`name`).
json MemoryRate(const memory::RateStats& r);
json MemoryStats(const memory::MemoryStats& s);
json Summary(const memory::Summary& s);
json Decision(const memory::Decision& d);

// --- agents and model cost (docs/agents.md)
json AgentListing(const agents::AgentContract& c);   // `keel agent list`: one element
json AgentContract(const agents::AgentContract& c);  // the whole contract
json ProposedAction(const agents::ProposedAction& a);
json AgentOutcome(const agents::AgentOutcome& o);
json CostLine(const store::CostLine& l);
json CostReport(const store::CostReport& r);  // {total, by_agent, by_model, by_record}

// --- records and imports (docs/records.md)
// `keel record add --json`: the record, plus `dry_run: true` when nothing was written.
json RecordAdded(const store::Record& r, bool dry_run);
// One entry of a record's history: {seq, time, actor, kind, payload}.
json RecordHistoryEntry(const store::LedgerEntry& e);
// `keel record show --json`: the record plus `history` (oldest first).
json RecordWithHistory(const store::Record& r, const std::vector<store::LedgerEntry>& history);
// `keel record set --json`: the record plus `changed`, `dry_run` and `changes`
// ({field: [old, new]}, "" for absent).
json RecordChange(const store::UpdateResult& u, bool dry_run);
// `keel record types --json`: one element.
json RecordType(const store::RecordTypeSpec& t);
// `keel import leads --json`.
json ImportReport(const store::ImportReport& r, bool dry_run);

// --- artifacts (`keel artifact show|lineage --json`)
json Artifact(const store::ArtifactInfo& a);
// The artifact plus `children`: the hashes of its newer versions.
json ArtifactDetail(const store::ArtifactInfo& a, const std::vector<store::ArtifactInfo>& children);

// --- secrets (`keel secret list --json`: one element; never a value)
json SecretListing(const store::SecretInfo& s);

}  // namespace views
}  // namespace keel::app
