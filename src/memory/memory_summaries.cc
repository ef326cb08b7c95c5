// Long-term memory of a subject: its summaries (versioned artifacts, each naming its parent)
// and the decisions taken about it with the facts they rest on.
#include <nlohmann/json.hpp>

#include "core/json.h"
#include "core/random.h"
#include "memory/memory.h"
#include "memory/memory_internal.h"
#include "store/artifacts.h"
#include "store/facts.h"
#include "store/workspace.h"

namespace keel::memory {

using namespace memory_internal;

Result<Summary> Memory::PutSummary(const std::string& subject, const std::string& text,
                                   const Actor& by) {
  KEEL_RETURN_IF_ERROR(ValidateSubject(subject));
  if (NormalizeText(text).empty()) return InvalidArgument("a summary needs text");
  if (by.agent.empty()) return InvalidArgument("a summary needs an author");
  Summary out;
  KEEL_RETURN_IF_ERROR(ws_->Write([&](store::Txn& txn) -> Status {
    KEEL_ASSIGN_OR_RETURN(auto latest, store::LatestSummaryRow(txn, subject));
    if (latest) {
      auto old_text = store::GetArtifact(*ws_, latest->artifact);
      if (old_text.ok() && *old_text == text) {
        out.subject = subject;
        out.artifact = latest->artifact;
        out.parent_artifact = latest->parent;
        out.version = static_cast<int>(latest->version);
        out.text = text;
        out.by = {latest->agent, latest->run_id, latest->step_id};
        out.created_us = latest->created_us;
        return OkStatus();
      }
    }
    int version = latest ? static_cast<int>(latest->version) + 1 : 1;
    store::PutArtifactOptions po;
    po.media_type = WithOrigin("text/markdown", Origin::kSummary);
    po.parent = latest ? latest->artifact : "";
    po.name = "summary of " + subject + " v" + std::to_string(version);
    po.actor = by.agent;
    po.run_id = by.run_id;
    po.step_id = by.step_id;
    KEEL_ASSIGN_OR_RETURN(store::ArtifactInfo info, store::PutArtifact(txn, text, po));
    nlohmann::json payload = {{"artifact", info.hash}, {"version", version}};
    if (latest) payload["parent"] = latest->artifact;
    KEEL_ASSIGN_OR_RETURN(store::LedgerEntry e, txn.Append({by.agent,
                                                            "memory.summary",
                                                            subject,
                                                            by.run_id,
                                                            by.step_id,
                                                            CanonicalJson(payload),
                                                            {info.hash}}));
    KEEL_RETURN_IF_ERROR(
        store::InsertArtifactOrigin(txn, info.hash, "summary", txn.now_us(), e.seq));
    store::SummaryRow row;
    row.subject = subject;
    row.version = version;
    row.artifact = info.hash;
    row.parent = latest ? latest->artifact : "";
    row.agent = by.agent;
    row.run_id = by.run_id;
    row.step_id = by.step_id;
    row.created_us = txn.now_us();
    row.ledger_seq = e.seq;
    KEEL_RETURN_IF_ERROR(store::InsertSummary(txn, row));
    out.subject = subject;
    out.artifact = info.hash;
    out.parent_artifact = row.parent;
    out.version = version;
    out.text = text;
    out.by = by;
    out.created_us = row.created_us;
    return OkStatus();
  }));
  return out;
}

Result<std::vector<Summary>> Memory::SummaryHistory(const std::string& subject) {
  KEEL_RETURN_IF_ERROR(ValidateSubject(subject));
  KEEL_ASSIGN_OR_RETURN(auto rows, store::SummaryRows(*ws_, subject));
  std::vector<Summary> out;
  for (const auto& r : rows) {
    Summary s;
    s.subject = r.subject;
    s.artifact = r.artifact;
    s.parent_artifact = r.parent;
    s.version = static_cast<int>(r.version);
    KEEL_ASSIGN_OR_RETURN(s.text, store::GetArtifact(*ws_, r.artifact));
    s.by = {r.agent, r.run_id, r.step_id};
    s.created_us = r.created_us;
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::optional<Summary>> Memory::LatestSummary(const std::string& subject) {
  KEEL_ASSIGN_OR_RETURN(auto all, SummaryHistory(subject));
  if (all.empty()) return std::optional<Summary>();
  return std::optional<Summary>(std::move(all[0]));
}

Result<Decision> Memory::LogDecision(const Decision& d) {
  KEEL_RETURN_IF_ERROR(ValidateSubject(d.subject));
  if (NormalizeText(d.decision).empty()) return InvalidArgument("a decision needs its text");
  if (d.decided_by.empty()) return InvalidArgument("a decision needs who decided it");
  if (HasNul(d.decision) || HasNul(d.reason) || HasNul(d.decided_by)) {
    return InvalidArgument("decision fields must not contain NUL");
  }
  if (d.decision.size() > kMaxFactTextBytes || d.reason.size() > kMaxFactTextBytes) {
    return InvalidArgument("decision text and reason must be at most 4096 bytes each");
  }
  Decision out = d;
  KEEL_RETURN_IF_ERROR(ws_->Write([&](store::Txn& txn) -> Status {
    nlohmann::json ids = nlohmann::json::array();
    for (const auto& id : d.fact_ids) {
      KEEL_ASSIGN_OR_RETURN(auto f, store::FindFact(txn, id));
      if (!f) return NotFound("decision cites fact " + id + ", which does not exist");
      ids.push_back(id);
    }
    out.id = NewId("dec", txn.now_us(), ws_->env().random);
    out.time_us = txn.now_us();
    nlohmann::json payload = {
        {"decision", out.id}, {"text", d.decision}, {"reason", d.reason}, {"facts", ids}};
    KEEL_ASSIGN_OR_RETURN(store::LedgerEntry e, txn.Append({d.decided_by,
                                                            "memory.decision",
                                                            d.subject,
                                                            d.run_id,
                                                            d.step_id,
                                                            CanonicalJson(payload),
                                                            {}}));
    out.ledger_seq = e.seq;
    store::DecisionRow r;
    r.id = out.id;
    r.subject = d.subject;
    r.decision = d.decision;
    r.decided_by = d.decided_by;
    r.reason = d.reason;
    r.fact_ids_json = ids.dump();
    r.run_id = d.run_id;
    r.step_id = d.step_id;
    r.time_us = out.time_us;
    r.ledger_seq = e.seq;
    return store::InsertDecision(txn, r);
  }));
  return out;
}

Result<std::vector<Decision>> Memory::Decisions(const std::string& subject) {
  KEEL_RETURN_IF_ERROR(ValidateSubject(subject));
  KEEL_ASSIGN_OR_RETURN(auto rows, store::DecisionRows(*ws_, subject));
  std::vector<Decision> out;
  for (const auto& r : rows) {
    Decision d;
    d.id = r.id;
    d.subject = r.subject;
    d.decision = r.decision;
    d.decided_by = r.decided_by;
    d.reason = r.reason;
    auto ids = nlohmann::json::parse(r.fact_ids_json, nullptr, false);
    if (ids.is_array()) {
      for (const auto& x : ids) {
        if (x.is_string()) d.fact_ids.push_back(x.get<std::string>());
      }
    }
    d.run_id = r.run_id;
    d.step_id = r.step_id;
    d.time_us = r.time_us;
    d.ledger_seq = r.ledger_seq;
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace keel::memory
