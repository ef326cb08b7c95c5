#include "app/views.h"

#include <cmath>
#include <functional>
#include <utility>

#include "agents/agent.h"
#include "core/clock.h"
#include "core/hash.h"
#include "flow/workflow.h"
#include "memory/memory.h"
#include "store/model_usage.h"

namespace keel::app::views {

namespace {

// Stored JSON text as a value; null when it does not parse (verify reports that).
json Parsed(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  return j.is_discarded() ? json() : j;
}

}  // namespace

std::string Time(int64_t us) {
  return FormatTimeMicros(us);
}

json Page(json items, const std::string& next_cursor) {
  return {{"items", std::move(items)}, {"next", next_cursor.empty() ? json() : json(next_cursor)}};
}

json RunSummary(const store::RunRow& r) {
  json j = {{"id", r.id},
            {"workflow", r.workflow},
            {"status", r.status},
            {"created", Time(r.created_us)},
            {"updated", Time(r.updated_us)}};
  if (!r.wait_kind.empty()) j["waiting_for"] = r.wait_kind;
  if (!r.error.empty()) j["error"] = r.error;
  return j;
}

std::string ItemState(const std::string& status) {
  if (status == "pending") return "open";
  if (status == "approved" || status == "rejected") return "decided";
  return status;  // expired | canceled
}

json Item(const store::ApprovalRow& a) {
  json j = {{"id", a.id},
            {"run", a.run_id},
            {"step", a.step_key},
            {"kind", a.kind},
            {"state", ItemState(a.status)},
            {"status", a.status},
            {"summary", a.summary},
            {"recommend", a.recommend},
            {"context", Parsed(a.context)},
            {"created", Time(a.created_us)}};
  if (a.deadline_us) j["deadline"] = Time(a.deadline_us);
  if (a.status != "pending") {
    j["decision"] = Parsed(a.decision);
    if (a.decided_us) j["decided"] = Time(a.decided_us);
  }
  return j;
}

json Run(const RunDetail& d) {
  const store::RunRow& r = d.run;
  json j = {{"id", r.id},
            {"workflow", r.workflow},
            {"version", r.version},
            {"status", r.status},
            {"input", Parsed(r.input)},
            {"output", Parsed(r.output)},
            {"created", Time(r.created_us)},
            {"updated", Time(r.updated_us)}};
  if (!r.wait_kind.empty()) j["waiting_for"] = r.wait_kind;
  if (d.canceling) j["canceling"] = true;
  if (r.status == "waiting" && r.due_us < store::kNeverUs) j["due"] = Time(r.due_us);
  if (!r.wait_type.empty()) j["event"] = {{"type", r.wait_type}, {"key", r.wait_key}};
  if (!r.error.empty()) j["error"] = r.error;
  if (!r.parent_run.empty()) j["parent"] = r.parent_run;
  json steps = json::array();
  for (const auto& s : d.steps) {
    json x = {{"key", s.step_key},
              {"step", s.step_id},
              {"kind", s.kind},
              {"status", s.status},
              {"attempts", s.attempts},
              {"output", Parsed(s.output)},
              {"finished", Time(s.finished_us)}};
    if (!s.error.empty()) x["error"] = s.error;
    steps.push_back(std::move(x));
  }
  j["steps"] = std::move(steps);
  json timeline = json::array();
  for (const auto& en : d.timeline) {
    json x = {{"seq", en.seq},
              {"time", Time(en.time_us)},
              {"kind", en.kind},
              {"actor", en.actor},
              {"detail", Parsed(en.payload)}};
    if (!en.step_id.empty()) x["step"] = en.step_id;
    timeline.push_back(std::move(x));
  }
  j["timeline"] = std::move(timeline);
  json items = json::array();
  for (const auto& a : d.items) items.push_back(Item(a));
  j["approvals"] = std::move(items);
  json obx = json::array();
  for (const auto& o : d.outbox) {
    obx.push_back({{"token", o.token},
                   {"step", o.step_key},
                   {"adapter", o.adapter},
                   {"action", o.action},
                   {"state", o.state},
                   {"attempts", o.attempts}});
  }
  j["outbox"] = std::move(obx);
  return j;
}

json Workflow(const flow::Workflow& w) {
  json j = {{"name", w.name},
            {"version", w.version},
            {"path", w.source},
            {"description", w.description},
            {"steps", WorkflowSteps(w)}};
  if (!w.schedule_cron.empty()) j["schedule"] = {{"cron", w.schedule_cron}, {"tz", w.schedule_tz}};
  return j;
}

json WorkflowSteps(const flow::Workflow& w) {
  json steps = json::array();
  std::function<void(const flow::StepList&, int)> walk = [&](const flow::StepList& l, int depth) {
    for (const auto& s : l) {
      steps.push_back({{"id", s->id},
                       {"kind", std::string(flow::StepKindName(s->kind))},
                       {"line", s->line},
                       {"depth", depth}});
      walk(s->then_steps, depth + 1);
      walk(s->else_steps, depth + 1);
      walk(s->body, depth + 1);
      walk(s->on_timeout, depth + 1);
    }
  };
  walk(w.steps, 0);
  return steps;
}

json WorkflowError(const std::string& path, const std::string& error) {
  return {{"path", path}, {"error", error}};
}

json Adapter(const std::string& name, const AdapterEntry& e, bool paused) {
  return {{"name", name},
          {"mode", AdapterModeName(e.mode)},
          {"switch", AdapterModeName(e.requested)},
          {"mode_source", e.mode_source},
          {"can_go_live", e.can_go_live},
          {"paused", paused},
          {"test_only", e.test_only}};
}

json LedgerEntry(const store::LedgerEntry& e) {
  json arts = json::array();
  for (const auto& a : e.artifacts) arts.push_back(ToHex(a));
  json payload = json::parse(e.payload, nullptr, false);
  if (payload.is_discarded()) payload = e.payload;
  return {{"seq", e.seq},
          {"time", Time(e.time_us)},
          {"time_us", e.time_us},
          {"actor", e.actor},
          {"kind", e.kind},
          {"subject", e.subject},
          {"run_id", e.run_id},
          {"step_id", e.step_id},
          {"payload", payload},
          {"artifacts", arts},
          {"prev_hash", ToHex(e.prev_hash)},
          {"hash", ToHex(e.hash)}};
}

json Record(const store::Record& r) {
  json fields = json::parse(r.data_json, nullptr, false);
  if (fields.is_discarded()) fields = json::object();
  return {{"id", r.id},
          {"type", r.type},
          {"version", r.version},
          {"created", Time(r.created_us)},
          {"updated", Time(r.updated_us)},
          {"fields", fields}};
}

json Verify(const store::VerifyReport& r) {
  return {{"ok", r.ok()},
          {"entries_checked", r.entries_checked},
          {"first_bad_seq", r.first_bad_seq},
          {"first_bad_reason", r.first_bad_reason},
          {"artifacts_referenced", r.artifacts_referenced},
          {"artifact_files_checked", r.artifact_files_checked},
          {"artifact_rows_checked", r.artifact_rows_checked},
          {"checkpoints_checked", r.checkpoints_checked},
          {"last_checkpoint_size", r.last_checkpoint_size},
          {"state_images", r.state_images},
          {"state_rows_checked", r.state_rows_checked},
          {"integrity_check", r.integrity},
          {"problems", r.problems},
          {"notes", r.notes},
          {"seconds", r.seconds}};
}

json Repair(const store::RepairReport& r) {
  return {{"ok", r.verify.ok()},
          {"path", r.dst_dir},
          {"damage", r.damage},
          {"rows", r.rows},
          {"artifacts", r.artifacts_copied},
          {"notes", r.notes},
          {"verify", Verify(r.verify)}};
}

json Snapshot(const store::SnapshotResult& r) {
  return {{"name", r.name},           {"path", r.path},           {"ledger_size", r.ledger_size},
          {"last_hash", r.last_hash}, {"artifacts", r.artifacts}, {"bytes", r.bytes},
          {"pruned", r.pruned}};
}

json SnapshotListing(const std::string& name, const std::string& path) {
  return {{"name", name}, {"path", path}};
}

json Restored(const store::RestoreResult& r) {
  return {{"dir", r.dir},
          {"workspace_id", r.workspace_id},
          {"ledger_size", r.ledger_size},
          {"artifacts", r.artifacts}};
}

json Checkpoint(const store::CheckpointInfo& c) {
  return {{"tree_size", c.tree_size},
          {"root", ToHex(c.root)},
          {"time_us", c.time_us},
          {"public_key", ToHex(c.public_key.data(), c.public_key.size())},
          {"signature", ToHex(c.signature.data(), c.signature.size())}};
}

// --- memory

namespace {

json TimeOrNull(int64_t us) {
  return us == 0 ? json() : json(Time(us));
}
json StrOrNull(const std::string& s) {
  return s.empty() ? json() : json(s);
}
json Span(int64_t b, int64_t e) {
  return b < 0 ? json() : json::array({b, e});
}
// Scores and confidences to four decimals: enough to rank by, stable to compare.
double Round4(double v) {
  return std::round(v * 1e4) / 1e4;
}

}  // namespace

json Fact(const memory::Fact& f) {
  json sources = json::array();
  for (const auto& s : f.provenance.sources) {
    sources.push_back({{"artifact", StrOrNull(s.artifact)},
                       {"span", Span(s.span_begin, s.span_end)},
                       {"agent", s.agent},
                       {"run_id", StrOrNull(s.run_id)},
                       {"step_id", StrOrNull(s.step_id)},
                       {"confidence", Round4(s.confidence)},
                       {"added", Time(s.added_us)},
                       {"ledger_seq", s.ledger_seq}});
  }
  const auto& p = f.provenance;
  return {{"id", f.id},
          {"subject", f.subject},
          {"text", f.text},
          {"key", StrOrNull(f.key)},
          {"value", StrOrNull(f.value)},
          {"confidence", Round4(f.confidence)},
          {"scope", std::string(memory::ScopeName(f.scope))},
          {"expires", TimeOrNull(f.expires_us)},
          {"valid_from", TimeOrNull(f.valid_from_us)},
          {"valid_to", TimeOrNull(f.valid_to_us)},
          {"superseded_by", StrOrNull(f.superseded_by)},
          {"supersedes", StrOrNull(f.supersedes)},
          {"created", Time(f.created_us)},
          {"provenance",
           {{"artifact", StrOrNull(p.artifact)},
            {"span", Span(p.span_begin, p.span_end)},
            {"agent", p.agent},
            {"run_id", StrOrNull(p.run_id)},
            {"step_id", StrOrNull(p.step_id)},
            {"ledger_seq", p.ledger_seq},
            {"sources", sources}}}};
}

json RecalledFact(const memory::ScoredFact& s) {
  json j = Fact(s.fact);
  j["score"] = Round4(s.score);
  j["relevance"] = Round4(s.relevance);
  j["recency"] = Round4(s.recency);
  j["tokens"] = s.tokens;
  return j;
}

json Recall(const memory::RecallResult& r, const std::string& query, const std::string& subject,
            int64_t budget_tokens) {
  json facts = json::array();
  for (const auto& s : r.facts) facts.push_back(RecalledFact(s));
  return {{"retrieval_id", StrOrNull(r.retrieval_id)},
          {"query", query},
          {"subject", StrOrNull(subject)},
          {"budget_tokens", budget_tokens},
          {"tokens_used", r.tokens_used},
          {"dropped_for_budget", r.dropped_for_budget},
          {"facts", std::move(facts)}};
}

json Remembered(const memory::RememberResult& r) {
  return {{"fact_id", r.fact_id}, {"merged", r.merged}, {"already_known", r.already_known}};
}

json ExtractedFact(const memory::RememberResult& r) {
  return {{"fact_id", r.fact_id}, {"merged", r.merged}};
}

json MemoryRate(const memory::RateStats& r) {
  return {{"name", r.name},
          {"retrievals", r.retrievals},
          {"hits", r.hits},
          {"misses", r.misses},
          {"pending", r.pending},
          {"facts_returned", r.facts_returned},
          {"facts_used", r.facts_used},
          {"hit_rate", Round4(r.hit_rate)}};
}

json MemoryStats(const memory::MemoryStats& s) {
  json by_agent = json::array(), by_wf = json::array();
  for (const auto& r : s.by_agent) by_agent.push_back(MemoryRate(r));
  for (const auto& r : s.by_workflow) by_wf.push_back(MemoryRate(r));
  json total = MemoryRate(s.total);
  total.erase("name");
  return {{"facts",
           {{"active", s.facts_active},
            {"superseded", s.facts_superseded},
            {"expired", s.facts_expired},
            {"sources", s.sources},
            {"merged", s.merged_facts}}},
          {"summaries", s.summaries},
          {"decisions", s.decisions},
          {"retrievals", std::move(total)},
          {"by_agent", std::move(by_agent)},
          {"by_workflow", std::move(by_wf)}};
}

json Summary(const memory::Summary& s) {
  return {{"subject", s.subject},   {"version", s.version},
          {"artifact", s.artifact}, {"parent", StrOrNull(s.parent_artifact)},
          {"agent", s.by.agent},    {"created", Time(s.created_us)},
          {"text", s.text}};
}

json Decision(const memory::Decision& d) {
  return {{"id", d.id},
          {"decision", d.decision},
          {"decided_by", d.decided_by},
          {"reason", d.reason},
          {"facts", d.fact_ids},
          {"run_id", StrOrNull(d.run_id)},
          {"step_id", StrOrNull(d.step_id)},
          {"time", Time(d.time_us)},
          {"ledger_seq", d.ledger_seq}};
}

// --- agents and model cost

json AgentListing(const agents::AgentContract& c) {
  return {{"name", c.name},
          {"version", c.version},
          {"description", c.description},
          {"actions", c.actions},
          {"provider", c.provider.empty() ? "(default)" : c.provider},
          {"origin", c.origin}};
}

json AgentContract(const agents::AgentContract& c) {
  return {{"name", c.name},
          {"version", c.version},
          {"description", c.description},
          {"task", c.task},
          {"provider", c.provider},
          {"model", c.model},
          {"temperature", c.temperature},
          {"input_schema", Parsed(c.input_schema_json)},
          {"output_schema", Parsed(c.output_schema_json)},
          {"untrusted", c.untrusted},
          {"actions", c.actions},
          {"always_approve", c.always_approve},
          {"budget",
           {{"max_tokens", c.budget.max_tokens},
            {"max_cost_usd", c.budget.max_cost_usd},
            {"max_seconds", c.budget.max_seconds},
            {"max_output_tokens", c.budget.max_output_tokens}}},
          {"memory", {{"subjects", c.memory.subjects}, {"budget_tokens", c.memory.budget_tokens}}},
          {"system", c.system},
          {"prompt", c.prompt},
          {"origin", c.origin}};
}

json ProposedAction(const agents::ProposedAction& a) {
  return {{"type", a.type},
          {"params", Parsed(a.params_json)},
          {"requires_approval", a.requires_approval},
          {"approval_reasons", a.approval_reasons}};
}

json AgentOutcome(const agents::AgentOutcome& o) {
  json acts = json::array();
  for (const auto& a : o.actions) acts.push_back(ProposedAction(a));
  json rejected = json::array();
  for (const auto& r : o.rejected) rejected.push_back({{"type", r.type}, {"reason", r.reason}});
  json j = {{"agent", o.agent},
            {"version", o.version},
            {"output", Parsed(o.output_json)},
            {"actions", std::move(acts)},
            {"rejected_actions", std::move(rejected)},
            {"tainted_fields", o.tainted_fields},
            {"provider", o.provider},
            {"model", o.model},
            {"cached", o.cached},
            {"model_calls", o.model_calls},
            {"input_tokens", o.input_tokens},
            {"output_tokens", o.output_tokens},
            {"cost_nanousd", o.cost_nanousd},
            {"artifacts",
             {{"template", o.template_artifact},
              {"prompt", o.prompt_artifact},
              {"response", o.response_artifact},
              {"output", o.output_artifact}}},
            {"ledger_seq", o.ledger_seq}};
  if (!o.draft_artifact.empty()) j["artifacts"]["draft"] = o.draft_artifact;
  return j;
}

json CostLine(const store::CostLine& l) {
  return {{"key", l.key},
          {"calls", l.calls},
          {"cached_calls", l.cached_calls},
          {"input_tokens", l.input_tokens},
          {"output_tokens", l.output_tokens},
          {"cost_nanousd", l.cost_nanousd},
          {"cost_usd", static_cast<double>(l.cost_nanousd) / 1e9}};
}

json CostReport(const store::CostReport& r) {
  json j = {{"total", CostLine(r.total)}};
  for (auto [key, lines] : {std::pair{"by_agent", &r.by_agent}, std::pair{"by_model", &r.by_model},
                            std::pair{"by_record", &r.by_record}}) {
    j[key] = json::array();
    for (const auto& l : *lines) j[key].push_back(CostLine(l));
  }
  return j;
}

json RecordAdded(const store::Record& r, bool dry_run) {
  json j = Record(r);
  if (dry_run) j["dry_run"] = true;
  return j;
}

json RecordHistoryEntry(const store::LedgerEntry& e) {
  json p = json::parse(e.payload, nullptr, false);
  return {{"seq", e.seq},
          {"time", Time(e.time_us)},
          {"actor", e.actor},
          {"kind", e.kind},
          {"payload", p.is_discarded() ? json(e.payload) : p}};
}

json RecordWithHistory(const store::Record& r, const std::vector<store::LedgerEntry>& history) {
  json j = Record(r);
  j["history"] = json::array();
  for (const auto& e : history) j["history"].push_back(RecordHistoryEntry(e));
  return j;
}

json RecordChange(const store::UpdateResult& u, bool dry_run) {
  json j = Record(u.record);
  j["changed"] = u.changed;
  j["dry_run"] = dry_run;
  j["changes"] = json::object();
  for (const auto& [k, ch] : u.changes) j["changes"][k] = {ch.first, ch.second};
  return j;
}

json RecordType(const store::RecordTypeSpec& t) {
  json fields = json::array();
  for (const auto& f : t.fields) {
    json jf = {{"name", f.name},
               {"type", std::string(store::FieldTypeName(f.type))},
               {"required", f.required},
               {"personal", f.personal},
               {"help", f.help}};
    if (!f.allowed.empty()) jf["allowed"] = f.allowed;
    if (!f.ref_type.empty()) jf["ref_type"] = f.ref_type;
    if (!f.default_value.empty()) jf["default"] = f.default_value;
    fields.push_back(std::move(jf));
  }
  json j = {{"type", t.type},     {"id_prefix", t.prefix + "_"},
            {"help", t.help},     {"fields", std::move(fields)},
            {"one_of", t.one_of}, {"rules", t.rules},
            {"person", t.person}};
  if (!t.retention.empty()) j["retention"] = t.retention;
  return j;
}

json ImportReport(const store::ImportReport& r, bool dry_run) {
  json problems = json::array();
  for (const auto& p : r.problems) problems.push_back({{"line", p.line}, {"reason", p.reason}});
  json j = {{"file_hash", r.file_hash}, {"rows", r.rows},       {"imported", r.imported},
            {"skipped", r.skipped},     {"problems", problems}, {"ids", r.ids},
            {"written", r.written},     {"dry_run", dry_run}};
  if (r.ledger_seq) j["ledger_seq"] = r.ledger_seq;
  return j;
}

json Artifact(const store::ArtifactInfo& a) {
  return {{"hash", a.hash},
          {"size", a.size},
          {"media_type", a.media_type},
          {"parent", a.parent.empty() ? json() : json(a.parent)},
          {"name", a.name},
          {"created", Time(a.created_us)},
          {"ledger_seq", a.ledger_seq}};
}

json ArtifactDetail(const store::ArtifactInfo& a,
                    const std::vector<store::ArtifactInfo>& children) {
  json j = Artifact(a);
  j["children"] = json::array();
  for (const auto& c : children) j["children"].push_back(c.hash);
  return j;
}

json SecretListing(const store::SecretInfo& s) {
  return {{"name", s.name}, {"updated", Time(s.updated_us)}, {"updated_us", s.updated_us}};
}

}  // namespace keel::app::views
