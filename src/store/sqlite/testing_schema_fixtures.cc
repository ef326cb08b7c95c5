#include "store/sqlite/testing_schema_fixtures.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <system_error>

#include "core/hash.h"
#include "core/json.h"
#include "core/testing_util.h"
#include "store/artifacts.h"
#include "store/checkpoint.h"
#include "store/facts.h"
#include "store/model_usage.h"
#include "store/records.h"
#include "store/run_events.h"
#include "store/runs.h"
#include "store/sqlite/schema.h"
#include "store/sqlite/sql.h"
#include "store/state.h"
#include "store/vault.h"

namespace keel::store::testing {
namespace {

namespace fs = std::filesystem;

// Ids the Fill steps choose (records get random ids: they are found by email instead).
constexpr char kLeadEmail[] = "ann@example.com";
constexpr char kSecretName[] = "SMTP_PASSWORD";
constexpr char kSecretValue[] = "fixture-password";
constexpr char kDraftOne[] = "Hello Ann,\nfirst draft.\n";
constexpr char kDraftTwo[] = "Hello Ann,\nsecond draft.\n";
constexpr char kWorkflowText[] =
    "name: hello\nsteps:\n  - id: draft\n    agent: draft\n  - id: approve\n    approval: {}\n";
constexpr char kRunId[] = "run_fixture1";
constexpr char kOutboxToken[] = "tok_fixture1";
constexpr char kApprovalId[] = "apr_fixture1";
constexpr char kEventId[] = "evt_fixture1";
constexpr char kOldFactId[] = "fact_fixture0";
constexpr char kFactId[] = "fact_fixture1";
constexpr char kDecisionId[] = "dec_fixture1";
constexpr char kRetrievalId[] = "ret_fixture1";
constexpr char kSummaryText[] = "Ann Example (Acme GmbH) prefers email.\n";
constexpr char kPrompt[] =
    "{\"messages\":[{\"content\":\"Draft a note to Ann\",\"role\":\"user\"}]}";
constexpr char kResponse[] = "{\"text\":\"Hello Ann, ...\"}";
constexpr char kModelCallId[] = "mc_fixture1";
constexpr int64_t kCostNanoUsd = 1500;

constexpr int64_t kSecond = 1000000;

// What the Fill steps pass on to later steps.
struct FillState {
  SimulatedClock* clock = nullptr;
  std::string lead_id;
  std::string draft_one, draft_two;  // artifact hashes
};

Status Mismatch(const std::string& what) {
  return FailedPrecondition("schema fixture: " + what);
}

#define FIXTURE_EXPECT(cond, what)      \
  do {                                  \
    if (!(cond)) return Mismatch(what); \
  } while (0)

// ---- Version 1: meta, ledger, checkpoints, artifacts, records, secrets --------------------

Status FillV1(Workspace& ws, FillState& st) {
  KEEL_ASSIGN_OR_RETURN(
      Record company,
      CreateRecord(ws, "company", {{"name", "Acme GmbH"}, {"website", "https://acme.example"}}));
  st.clock->Advance(kSecond);
  KEEL_ASSIGN_OR_RETURN(Record lead, CreateRecord(ws, "lead",
                                                  {{"email", "Ann@Example.com"},
                                                   {"name", "Ann Example"},
                                                   {"company_id", company.id}}));
  st.lead_id = lead.id;
  st.clock->Advance(kSecond);
  RecordUpdate up;
  up.set = {{"status", "contacted"}};
  KEEL_RETURN_IF_ERROR(UpdateRecord(ws, lead.id, up).status());
  st.clock->Advance(kSecond);
  KEEL_RETURN_IF_ERROR(ws.Write([&](Txn& txn) -> Status {
    PutArtifactOptions o;
    o.media_type = "text/plain";
    o.name = "draft.txt";
    KEEL_ASSIGN_OR_RETURN(ArtifactInfo one, PutArtifact(txn, kDraftOne, o));
    o.parent = one.hash;
    o.name = "draft v2";
    KEEL_ASSIGN_OR_RETURN(ArtifactInfo two, PutArtifact(txn, kDraftTwo, o));
    st.draft_one = one.hash;
    st.draft_two = two.hash;
    return OkStatus();
  }));
  st.clock->Advance(kSecond);
  Vault vault(&ws, VaultOptions{});
  KEEL_RETURN_IF_ERROR(
      ws.Write([&](Txn& txn) { return vault.SetSecret(txn, kSecretName, kSecretValue); }));
  st.clock->Advance(kSecond);
  KEEL_RETURN_IF_ERROR(Checkpoint(ws).status());
  st.clock->Advance(kSecond);
  // Entries after the last checkpoint: the tail a migrated workspace must chain onto.
  return ws.Write([&](Txn& txn) {
    return txn
        .Append({"operator",
                 "note.added",
                 st.lead_id,
                 "",
                 "",
                 R"({"text":"entry after the checkpoint"})",
                 {}})
        .status();
  });
}

Status CheckV1(Workspace& ws, int version) {
  // The workspace.created entry names the version the fixture was made at.
  LedgerQuery q;
  q.kind = "workspace.created";
  KEEL_ASSIGN_OR_RETURN(auto created, ws.QueryLedger(q));
  FIXTURE_EXPECT(created.size() == 1, "one workspace.created entry");
  auto payload = nlohmann::json::parse(created[0].payload);
  FIXTURE_EXPECT(payload.value("schema_version", 0) == version,
                 "workspace.created names schema_version " + std::to_string(version) + ", not " +
                     payload.dump());

  RecordQuery rq;
  rq.type = "lead";
  KEEL_ASSIGN_OR_RETURN(auto leads, ListRecords(ws, rq));
  FIXTURE_EXPECT(leads.size() == 1, "one lead");
  FIXTURE_EXPECT(leads[0].Get("email") == kLeadEmail, "the lead's email");
  FIXTURE_EXPECT(leads[0].Get("status") == "contacted", "the lead's updated status");
  FIXTURE_EXPECT(leads[0].version == 2, "the lead's version");
  KEEL_ASSIGN_OR_RETURN(Record company, GetRecord(ws, leads[0].Get("company_id")));
  FIXTURE_EXPECT(company.Get("name") == "Acme GmbH", "the company the lead references");
  KEEL_ASSIGN_OR_RETURN(auto by_email, FindByEmail(ws, "lead", "ANN@example.com"));
  FIXTURE_EXPECT(by_email.has_value() && by_email->id == leads[0].id, "the lead by email");

  std::string two = Sha256Hex(kDraftTwo);
  KEEL_ASSIGN_OR_RETURN(std::string content, GetArtifact(ws, two));
  FIXTURE_EXPECT(content == kDraftTwo, "the second draft's content");
  KEEL_ASSIGN_OR_RETURN(auto lineage, ArtifactLineage(ws, two));
  FIXTURE_EXPECT(lineage.size() == 2 && lineage[1].hash == Sha256Hex(kDraftOne) &&
                     lineage[1].name == "draft.txt" && lineage[1].media_type == "text/plain",
                 "the drafts' lineage");

  Vault vault(&ws, VaultOptions{});
  KEEL_ASSIGN_OR_RETURN(auto secrets, vault.ListSecrets());
  FIXTURE_EXPECT(secrets.size() == 1 && secrets[0].name == kSecretName, "the secret's name");
  SecretUse use;
  use.purpose = "schema fixture test";
  KEEL_ASSIGN_OR_RETURN(SecretValue value, vault.GetSecret(kSecretName, use));
  FIXTURE_EXPECT(value.Reveal() == kSecretValue, "the secret's value");

  std::vector<CheckpointInfo> cps;
  {
    std::lock_guard<std::recursive_mutex> lock(ws.mu());
    KEEL_ASSIGN_OR_RETURN(cps, ReadCheckpointRows(ws));
  }
  FIXTURE_EXPECT(!cps.empty(), "a signed checkpoint row");
  KEEL_ASSIGN_OR_RETURN(CheckpointLog log, ReadCheckpointLog(ws));
  FIXTURE_EXPECT(log.exists && log.entries.size() == cps.size() && log.bad_lines.empty(),
                 "checkpoints.log agreeing with the table");
  return OkStatus();
}

// ---- Version 2: the workflow engine's tables ---------------------------------------------

Status FillV2(Workspace& ws, FillState& st) {
  return ws.Write([&](Txn& txn) -> Status {
    int64_t now = txn.now_us();
    std::string hash = Sha256Hex(kWorkflowText);
    KEEL_RETURN_IF_ERROR(
        PutWorkflowVersion(txn, hash, "hello", "workflows/hello.yaml", kWorkflowText));
    RunRow r;
    r.id = kRunId;
    r.workflow = "hello";
    r.version = hash;
    r.status = "waiting";
    r.wait_kind = "approval";
    r.state = R"({"pc":1})";
    r.input = CanonicalJson(nlohmann::json{{"lead", st.lead_id}});
    r.created_us = r.updated_us = now;
    KEEL_RETURN_IF_ERROR(InsertRun(txn, r));
    KEEL_RETURN_IF_ERROR(
        txn.Append({"system", "run.started", st.lead_id, kRunId, "", r.input, {}}).status());
    KEEL_ASSIGN_OR_RETURN(LedgerEntry done, txn.Append({"agent:draft",
                                                        "step.completed",
                                                        st.lead_id,
                                                        kRunId,
                                                        "draft",
                                                        R"({"step_key":"draft#0"})",
                                                        {st.draft_two}}));
    JournalRow j;
    j.run_id = kRunId;
    j.step_key = "draft#0";
    j.step_id = "draft";
    j.kind = "agent";
    j.status = "completed";
    j.output = CanonicalJson(nlohmann::json{{"artifact", st.draft_two}});
    j.finished_us = now;
    j.seq = done.seq;
    KEEL_RETURN_IF_ERROR(PutJournal(txn, j));
    OutboxRow o;
    o.token = kOutboxToken;
    o.run_id = kRunId;
    o.step_key = "send#0";
    o.adapter = "smtp";
    o.action = "send";
    o.params = R"({"to":"ann@example.com"})";
    o.state = "uncertain";
    o.attempts = 1;
    o.created_us = o.updated_us = now;
    KEEL_RETURN_IF_ERROR(InsertOutbox(txn, o));
    ApprovalRow a;
    a.id = kApprovalId;
    a.run_id = kRunId;
    a.step_key = "approve#0";
    a.kind = "approval";
    a.status = "pending";
    a.summary = "Send the second draft to Ann";
    a.recommend = "approve";
    a.deadline_us = now + 86400 * kSecond;
    a.created_us = now;
    KEEL_RETURN_IF_ERROR(InsertApproval(txn, a));
    KEEL_RETURN_IF_ERROR(txn.Append({"system",
                                     "approval.requested",
                                     st.lead_id,
                                     kRunId,
                                     "approve",
                                     R"({"id":"apr_fixture1"})",
                                     {}})
                             .status());
    KEEL_ASSIGN_OR_RETURN(bool fresh, InsertEvent(txn, kEventId, "payment.received", "inv_1",
                                                  R"({"amount":100})", 0));
    if (!fresh) return Internal("the fixture event already existed");
    KEEL_RETURN_IF_ERROR(
        txn.Append(
               {"adapter:webhook", "event.received", "", "", "", R"({"id":"evt_fixture1"})", {}})
            .status());
    KEEL_RETURN_IF_ERROR(SetPause(txn, "adapter", "smtp", true));
    KEEL_RETURN_IF_ERROR(
        txn.Append({"operator", "pause.set", "", "", "", R"({"adapter":"smtp"})", {}}).status());
    ScheduleRow s;
    s.workflow = "hello";
    s.path = "workflows/hello.yaml";
    s.cron = "0 9 * * 1";
    s.tz = "Europe/Berlin";
    s.next_us = now + 7 * 86400 * kSecond;
    KEEL_RETURN_IF_ERROR(UpsertSchedule(txn, s));
    return txn.Append({"system", "schedule.set", "", "", "", R"({"workflow":"hello"})", {}})
        .status();
  });
}

Status CheckV2(Workspace& ws, int) {
  KEEL_ASSIGN_OR_RETURN(std::string text, GetWorkflowVersion(ws, Sha256Hex(kWorkflowText)));
  FIXTURE_EXPECT(text == kWorkflowText, "the workflow version's text");
  KEEL_ASSIGN_OR_RETURN(auto run, GetRun(ws, kRunId));
  FIXTURE_EXPECT(run.has_value() && run->status == "waiting" && run->wait_kind == "approval" &&
                     run->state == R"({"pc":1})",
                 "the waiting run");
  KEEL_ASSIGN_OR_RETURN(auto journal, ListJournal(ws, kRunId));
  FIXTURE_EXPECT(journal.size() == 1 && journal[0].step_key == "draft#0" &&
                     journal[0].status == "completed" && journal[0].seq > 0,
                 "the run's journal");
  KEEL_ASSIGN_OR_RETURN(auto outbox, GetOutbox(ws, kOutboxToken));
  FIXTURE_EXPECT(outbox.has_value() && outbox->state == "uncertain" && !outbox->honours_key,
                 "the uncertain outbox row");
  KEEL_ASSIGN_OR_RETURN(auto approval, GetApproval(ws, kApprovalId));
  FIXTURE_EXPECT(
      approval.has_value() && approval->status == "pending" && approval->kind == "approval",
      "the pending approval");
  KEEL_ASSIGN_OR_RETURN(auto pauses, ListPauses(ws));
  FIXTURE_EXPECT(
      std::find(pauses.begin(), pauses.end(),
                std::make_pair(std::string("adapter"), std::string("smtp"))) != pauses.end(),
      "the smtp pause");
  KEEL_ASSIGN_OR_RETURN(auto schedules, ListSchedules(ws));
  FIXTURE_EXPECT(schedules.size() == 1 && schedules[0].cron == "0 9 * * 1" &&
                     schedules[0].tz == "Europe/Berlin",
                 "the schedule");
  // The event is there: receiving it again is a duplicate (rolled back either way).
  bool fresh = true;
  Status probe = ws.Write([&](Txn& txn) -> Status {
    KEEL_ASSIGN_OR_RETURN(
        fresh, InsertEvent(txn, kEventId, "payment.received", "inv_1", R"({"amount":100})", 0));
    return Cancelled("probe only");
  });
  FIXTURE_EXPECT(probe.code() == StatusCode::kCancelled, "event probe: " + probe.ToString());
  FIXTURE_EXPECT(!fresh, "the received event (deduplicated by id)");
  return OkStatus();
}

// ---- Version 3: the context engine's tables ----------------------------------------------

Status FillV3(Workspace& ws, FillState& st) {
  return ws.Write([&](Txn& txn) -> Status {
    int64_t now = txn.now_us();
    KEEL_ASSIGN_OR_RETURN(LedgerEntry e0, txn.Append({"agent:research",
                                                      "memory.fact.added",
                                                      st.lead_id,
                                                      "",
                                                      "",
                                                      R"({"id":"fact_fixture0"})",
                                                      {st.draft_one}}));
    FactRow old;
    old.id = kOldFactId;
    old.subject = st.lead_id;
    old.text = "Ann prefers phone calls";
    old.key = "channel";
    old.value = "phone";
    old.norm = "ann prefers phone calls";
    old.confidence = 0.6;
    old.valid_from_us = now;
    old.source_artifact = st.draft_one;
    old.span_begin = 0;
    old.span_end = 9;
    old.agent = "research";
    old.created_us = now;
    old.ledger_seq = e0.seq;
    KEEL_RETURN_IF_ERROR(InsertFact(txn, &old));
    KEEL_ASSIGN_OR_RETURN(LedgerEntry e1,
                          txn.Append({"agent:research",
                                      "memory.fact.superseded",
                                      st.lead_id,
                                      "",
                                      "",
                                      R"({"id":"fact_fixture1","old":"fact_fixture0"})",
                                      {st.draft_two}}));
    FactRow f = old;
    f.id = kFactId;
    f.text = "Ann prefers email";
    f.value = "email";
    f.norm = "ann prefers email";
    f.confidence = 0.9;
    f.supersedes = kOldFactId;
    f.source_artifact = st.draft_two;
    f.ledger_seq = e1.seq;
    KEEL_RETURN_IF_ERROR(InsertFact(txn, &f));
    KEEL_RETURN_IF_ERROR(SupersedeFact(txn, old, kFactId, now));
    FactSourceRow src;
    src.fact_n = f.n;
    src.artifact = st.draft_one;
    src.span_begin = 10;
    src.span_end = 20;
    src.agent = "research";
    src.confidence = 0.8;
    src.added_us = now;
    src.ledger_seq = e1.seq;
    KEEL_RETURN_IF_ERROR(InsertFactSource(txn, src));

    PutArtifactOptions o;
    o.media_type = "text/markdown";
    o.actor = "agent:summarize";
    KEEL_ASSIGN_OR_RETURN(ArtifactInfo summary, PutArtifact(txn, kSummaryText, o));
    KEEL_ASSIGN_OR_RETURN(LedgerEntry es, txn.Append({"agent:summarize",
                                                      "memory.summary",
                                                      st.lead_id,
                                                      "",
                                                      "",
                                                      R"({"version":1})",
                                                      {summary.hash}}));
    SummaryRow sr;
    sr.subject = st.lead_id;
    sr.version = 1;
    sr.artifact = summary.hash;
    sr.agent = "summarize";
    sr.created_us = now;
    sr.ledger_seq = es.seq;
    KEEL_RETURN_IF_ERROR(InsertSummary(txn, sr));
    KEEL_RETURN_IF_ERROR(InsertArtifactOrigin(txn, summary.hash, "summary", now, es.seq));

    KEEL_ASSIGN_OR_RETURN(
        LedgerEntry ed,
        txn.Append(
            {"operator", "memory.decision", st.lead_id, "", "", R"({"id":"dec_fixture1"})", {}}));
    DecisionRow d;
    d.id = kDecisionId;
    d.subject = st.lead_id;
    d.decision = "contact Ann by email";
    d.decided_by = "operator";
    d.reason = "her stated preference";
    d.fact_ids_json = R"(["fact_fixture1"])";
    d.time_us = now;
    d.ledger_seq = ed.seq;
    KEEL_RETURN_IF_ERROR(InsertDecision(txn, d));

    KEEL_ASSIGN_OR_RETURN(LedgerEntry er, txn.Append({"agent:draft",
                                                      "memory.recall",
                                                      st.lead_id,
                                                      kRunId,
                                                      "draft",
                                                      R"({"id":"ret_fixture1"})",
                                                      {}}));
    RetrievalRow r;
    r.id = kRetrievalId;
    r.time_us = now;
    r.query = "how to contact Ann";
    r.subject = st.lead_id;
    r.agent = "draft";
    r.workflow = "hello";
    r.run_id = kRunId;
    r.step_id = "draft";
    r.budget_tokens = 500;
    r.tokens_used = 40;
    r.returned_json = R"(["fact_fixture1"])";
    r.returned_count = 1;
    r.ledger_seq = er.seq;
    KEEL_RETURN_IF_ERROR(InsertRetrieval(txn, r));
    KEEL_RETURN_IF_ERROR(txn.Append({"agent:draft",
                                     "memory.used",
                                     st.lead_id,
                                     kRunId,
                                     "draft",
                                     R"({"id":"ret_fixture1"})",
                                     {}})
                             .status());
    return SetRetrievalUsed(txn, kRetrievalId, R"(["fact_fixture1"])", 1, now);
  });
}

Status CheckV3(Workspace& ws, int) {
  KEEL_ASSIGN_OR_RETURN(auto f, FindFact(ws, kFactId));
  FIXTURE_EXPECT(f.has_value() && f->text == "Ann prefers email" && f->supersedes == kOldFactId &&
                     std::abs(f->confidence - 0.9) < 1e-9,
                 "the current fact");
  KEEL_ASSIGN_OR_RETURN(auto old, FindFact(ws, kOldFactId));
  FIXTURE_EXPECT(old.has_value() && old->superseded_by == kFactId, "the superseded fact");
  KEEL_ASSIGN_OR_RETURN(auto sources, FactSources(ws, f->n));
  FIXTURE_EXPECT(sources.size() == 1 && sources[0].span_begin == 10, "the fact's extra source");
  // The full-text index survived the migration: the active fact is found, the old one not.
  FactTextSearch email, phone;
  email.terms = {{"email"}};
  phone.terms = {{"phone"}};
  KEEL_ASSIGN_OR_RETURN(auto email_rows, SearchFactRows(ws, email, 10));
  FIXTURE_EXPECT(email_rows == std::vector<int64_t>{f->n}, "the fact found by full-text search");
  KEEL_ASSIGN_OR_RETURN(auto phone_rows, SearchFactRows(ws, phone, 10));
  FIXTURE_EXPECT(phone_rows.empty(), "the superseded fact left out of the index");
  KEEL_ASSIGN_OR_RETURN(auto summaries, SummaryRows(ws, f->subject));
  FIXTURE_EXPECT(summaries.size() == 1 && summaries[0].artifact == Sha256Hex(kSummaryText),
                 "the summary");
  KEEL_ASSIGN_OR_RETURN(auto origin, FindArtifactOrigin(ws, Sha256Hex(kSummaryText)));
  FIXTURE_EXPECT(origin.has_value() && *origin == "summary", "the summary's origin");
  KEEL_ASSIGN_OR_RETURN(auto decisions, DecisionRows(ws, f->subject));
  FIXTURE_EXPECT(decisions.size() == 1 && decisions[0].id == kDecisionId, "the decision");
  KEEL_ASSIGN_OR_RETURN(auto agg, AggregateRetrievals(ws, ""));
  FIXTURE_EXPECT(agg.size() == 1 && agg[0].retrievals == 1 && agg[0].used == 1,
                 "the retrieval log");
  return OkStatus();
}

// ---- Version 4: model calls and the response cache ---------------------------------------

Status FillV4(Workspace& ws, FillState& st) {
  return ws.Write([&](Txn& txn) -> Status {
    PutArtifactOptions o;
    o.media_type = "application/json";
    o.actor = "agent:draft";
    KEEL_ASSIGN_OR_RETURN(ArtifactInfo prompt, PutArtifact(txn, kPrompt, o));
    KEEL_ASSIGN_OR_RETURN(ArtifactInfo response, PutArtifact(txn, kResponse, o));
    KEEL_ASSIGN_OR_RETURN(LedgerEntry e, txn.Append({"agent:draft",
                                                     "model.call",
                                                     st.lead_id,
                                                     kRunId,
                                                     "draft",
                                                     R"({"id":"mc_fixture1"})",
                                                     {prompt.hash, response.hash}}));
    ModelCall c;
    c.id = kModelCallId;
    c.run_id = kRunId;
    c.step_id = "draft";
    c.agent = "draft";
    c.record_id = st.lead_id;
    c.provider = "offline";
    c.model = "offline-1";
    c.input_tokens = 120;
    c.output_tokens = 40;
    c.cost_nanousd = kCostNanoUsd;
    c.finish_reason = "stop";
    c.prompt_hash = Sha256Hex(kPrompt);
    c.prompt_artifact = prompt.hash;
    c.response_artifact = response.hash;
    c.ledger_seq = e.seq;
    KEEL_RETURN_IF_ERROR(InsertModelCall(txn, c));
    CachedResponse cr;
    cr.prompt_hash = c.prompt_hash;
    cr.response_artifact = response.hash;
    cr.provider = c.provider;
    cr.model = c.model;
    cr.input_tokens = c.input_tokens;
    cr.output_tokens = c.output_tokens;
    cr.created_us = txn.now_us();
    KEEL_RETURN_IF_ERROR(PutResponseCache(txn, cr));
    return CountCacheHit(txn, c.prompt_hash);
  });
}

Status CheckV4(Workspace& ws, int) {
  KEEL_ASSIGN_OR_RETURN(auto calls, ListModelCalls(ws, CostQuery{}, 10));
  FIXTURE_EXPECT(calls.size() == 1 && calls[0].id == kModelCallId &&
                     calls[0].prompt_artifact == Sha256Hex(kPrompt),
                 "the model call");
  CostQuery q;
  q.record_id = calls[0].record_id;
  KEEL_ASSIGN_OR_RETURN(CostReport cost, QueryCost(ws, q));
  FIXTURE_EXPECT(cost.total.calls == 1 && cost.total.cost_nanousd == kCostNanoUsd,
                 "the cost attributed to the lead");
  KEEL_ASSIGN_OR_RETURN(auto cached, LookupResponseCache(ws, Sha256Hex(kPrompt)));
  FIXTURE_EXPECT(
      cached.has_value() && cached->hits == 1 && cached->response_artifact == Sha256Hex(kResponse),
      "the cached response");
  return OkStatus();
}

// ---- Version 5: buffered events (which run consumed which event) ---------------------

Status FillV5(Workspace& ws, FillState&) {
  return ws.Write([&](Txn& txn) -> Status {
    KEEL_RETURN_IF_ERROR(RecordEventDelivery(txn, kEventId, kRunId, "wait#0"));
    return txn
        .Append({"system",
                 "event.delivered",
                 kRunId,
                 kRunId,
                 "wait#0",
                 R"({"event":"evt_fixture1"})",
                 {}})
        .status();
  });
}

Status CheckV5(Workspace& ws, int) {
  // The run consumed the fixture event: it is not offered to that run again.
  KEEL_ASSIGN_OR_RETURN(auto next, NextEventForRun(ws, "payment.received", "inv_1", kRunId, 0));
  FIXTURE_EXPECT(!next.has_value(), "the event delivery of the run");
  return OkStatus();
}

// ---- Version 6: the run index leaves out a run's entries about itself ----------------

Status FillV6(Workspace& ws, FillState&) {
  return ws.Write([&](Txn& txn) -> Status {
    return txn.Append({"system", "run.note", kRunId, kRunId, "", "{}", {}}).status();
  });
}

Status CheckV6(Workspace& ws, int) {
  // Every entry of the run, whatever its subject (the run or the lead), is found by the run
  // filter.
  LedgerQuery q;
  q.run_id = kRunId;
  KEEL_ASSIGN_OR_RETURN(auto entries, ws.QueryLedger(q));
  size_t notes = 0, others = 0;
  for (const auto& e : entries) (e.kind == "run.note" ? notes : others)++;
  FIXTURE_EXPECT(notes == 1 && others >= 3, "the run's ledger entries by run filter");
  return OkStatus();
}

// ---- Version 7: an explicit integer key keeps insertion order --------------------------

// Two companies created at the same microsecond: only the key orders them.
Status FillV7(Workspace& ws, FillState&) {
  KEEL_RETURN_IF_ERROR(CreateRecord(ws, "company", {{"name", "Zeta Ltd"}}).status());
  return CreateRecord(ws, "company", {{"name", "Alpha Ltd"}}).status();
}

Status CheckV7(Workspace& ws, int) {
  RecordQuery rq;
  rq.type = "company";
  KEEL_ASSIGN_OR_RETURN(auto companies, ListRecords(ws, rq));
  FIXTURE_EXPECT(companies.size() == 3 && companies[0].Get("name") == "Acme GmbH" &&
                     companies[1].Get("name") == "Zeta Ltd" &&
                     companies[2].Get("name") == "Alpha Ltd",
                 "the companies in the order they were created");
  return OkStatus();
}

// ---- Version 8: an index for the unfiltered run list --------------------------------

Status FillV8(Workspace&, FillState&) {
  return OkStatus();  // an index only: the runs of earlier versions are what it orders
}

Status CheckV8(Workspace& ws, int) {
  KEEL_ASSIGN_OR_RETURN(auto runs, ListRuns(ws, "", 1000, {}));
  for (size_t i = 1; i < runs.size(); ++i) {
    FIXTURE_EXPECT(
        runs[i - 1].created_us > runs[i].created_us ||
            (runs[i - 1].created_us == runs[i].created_us && runs[i - 1].id > runs[i].id),
        "the run list newest first");
  }
  return OkStatus();
}

// ---- Version 9: entries carry the images of the state rows they changed ----------------

Status FillV9(Workspace&, FillState&) {
  return OkStatus();  // every write of the earlier steps already carries its images
}

Status CheckV9(Workspace& ws, int version) {
  // A workspace made at 9 has images from its first entry; one migrated from before has
  // state.baseline entries that attest the rows it held. Either way every row is covered:
  // the fixture test's keel verify compares them.
  int64_t with_images = 0, baselines = 0;
  KEEL_RETURN_IF_ERROR(ws.ScanLedger(1, [&](const LedgerEntry& e) {
    with_images += e.state.empty() ? 0 : 1;
    baselines += e.kind == "state.baseline" ? 1 : 0;
    return OkStatus();
  }));
  FIXTURE_EXPECT(with_images > 0, "entries with state images");
  FIXTURE_EXPECT(version < kFirstStateImageSchema ? baselines > 0 : baselines == 0,
                 "state.baseline entries exactly when the fixture predates images");
  return OkStatus();
}

struct Step {
  int version;
  std::function<Status(Workspace&, FillState&)> fill;
  std::function<Status(Workspace&, int)> check;
};

// One step per migration, in order. A new migration adds its step here.
const std::vector<Step>& Steps() {
  static const std::vector<Step> steps = {
      {1, FillV1, CheckV1}, {2, FillV2, CheckV2}, {3, FillV3, CheckV3},
      {4, FillV4, CheckV4}, {5, FillV5, CheckV5}, {6, FillV6, CheckV6},
      {7, FillV7, CheckV7}, {8, FillV8, CheckV8}, {9, FillV9, CheckV9},
  };
  return steps;
}

Status FromErrorCode(const std::error_code& ec, const std::string& what) {
  if (!ec) return OkStatus();
  return Internal(what + ": " + ec.message());
}

}  // namespace

std::string SchemaFixturesDir() {
  return keel::testing::SourceDir() + "/tests/fixtures/schema";
}

std::string SchemaFixtureDir(int version) {
  return SchemaFixturesDir() + "/v" + std::to_string(version);
}

int NewestFixtureVersion() {
  return Steps().back().version;
}

Status WriteSchemaFixture(const std::string& dir, int version) {
  if (version < 1 || version > NewestFixtureVersion()) {
    return InvalidArgument("no fixture steps for schema version " + std::to_string(version) +
                           " (add them in store/sqlite/testing_schema_fixtures.cc)");
  }
  if (version > CurrentSchemaVersion()) {
    return InvalidArgument("schema version " + std::to_string(version) +
                           " is newer than this build's");
  }
  ScopedSchemaVersionLimit limit(version);
  SimulatedClock clock;
  SeededRandom random(static_cast<uint64_t>(version));
  Env env;
  env.clock = &clock;
  env.random = &random;
  InitOptions init;
  init.name = "Schema fixture v" + std::to_string(version);
  KEEL_RETURN_IF_ERROR(Workspace::Init(dir, init, env));
  {
    WorkspaceOpenOptions o;
    o.background_checkpoint = false;
    KEEL_ASSIGN_OR_RETURN(auto ws, Workspace::Open(dir, o, env));
    FillState st;
    st.clock = &clock;
    for (const Step& s : Steps()) {
      if (s.version > version) break;
      clock.Advance(60 * kSecond);
      Status r = s.fill(*ws, st);
      if (!r.ok())
        return r.WithContext("filling the tables of schema version " + std::to_string(s.version));
    }
  }  // closing the last connection folds the WAL into keel.db and removes -wal and -shm
  {
    // Compacted to 1 KiB pages (keel writes 4 KiB ones): a page or more per table and index
    // would make each fixture hundreds of KB. Same rows, same schema text, same pragmas;
    // nothing a migration does depends on the page size.
    KEEL_ASSIGN_OR_RETURN(auto db, sql::Db::Open(dir + "/keel.db", sql::OpenOptions{}));
    KEEL_RETURN_IF_ERROR(db->Exec("PRAGMA journal_mode = DELETE"));
    KEEL_RETURN_IF_ERROR(db->Exec("PRAGMA page_size = 1024"));
    KEEL_RETURN_IF_ERROR(db->Exec("VACUUM"));
    KEEL_RETURN_IF_ERROR(db->Exec("PRAGMA journal_mode = WAL"));
  }
  std::error_code ec;
  for (const char* leftover : {"keel.db-wal", "keel.db-shm"}) {
    if (fs::exists(dir + "/" + leftover)) {
      return Internal(std::string(leftover) + " left behind after closing the fixture");
    }
  }
  // Lock files and the empty snapshots/ folder are not part of a fixture (git keeps no
  // empty folders; CopyFixture recreates it).
  fs::remove(dir + "/keel.db" + sql::kWriterLockSuffix, ec);
  fs::remove(dir + "/snapshots", ec);
  return OkStatus();
}

Status CopyFixture(const std::string& from, const std::string& to) {
  std::error_code ec;
  if (!fs::is_directory(from)) return NotFound("no fixture folder " + from);
  fs::copy(from, to, fs::copy_options::recursive, ec);
  KEEL_RETURN_IF_ERROR(FromErrorCode(ec, "copying " + from + " to " + to));
  fs::create_directories(to + "/snapshots", ec);
  KEEL_RETURN_IF_ERROR(FromErrorCode(ec, "creating snapshots/"));
  // Git keeps only the executable bit: keel refuses key files readable by others.
  std::string keys = to + "/keys";
  if (fs::is_directory(keys)) {
    fs::permissions(keys, fs::perms::owner_all, ec);
    KEEL_RETURN_IF_ERROR(FromErrorCode(ec, "chmod keys/"));
    for (const auto& e : fs::directory_iterator(keys)) {
      fs::permissions(e.path(), fs::perms::owner_read | fs::perms::owner_write, ec);
      KEEL_RETURN_IF_ERROR(FromErrorCode(ec, "chmod " + e.path().string()));
    }
  }
  return OkStatus();
}

Status CheckSchemaFixtureRows(Workspace& ws, int version) {
  for (const Step& s : Steps()) {
    if (s.version > version) break;
    Status r = s.check(ws, version);
    if (!r.ok()) {
      return r.WithContext("rows of schema version " + std::to_string(s.version) +
                           " in the fixture of version " + std::to_string(version));
    }
  }
  return OkStatus();
}

Result<std::vector<std::string>> EmptyTables(Workspace& ws) {
  std::lock_guard<std::recursive_mutex> lock(ws.mu());
  // FTS5 keeps its data in shadow tables (facts_fts_data, ...); the virtual table itself is
  // checked through them.
  KEEL_ASSIGN_OR_RETURN(
      auto st, ws.db()->Prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND "
                                "name NOT LIKE 'sqlite_%' AND sql NOT LIKE 'CREATE VIRTUAL%' "
                                "ORDER BY name"));
  std::vector<std::string> tables;
  for (;;) {
    KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    tables.push_back(st->Text(0));
  }
  std::vector<std::string> empty;
  for (const std::string& t : tables) {
    KEEL_ASSIGN_OR_RETURN(int64_t n, ws.db()->QueryInt("SELECT COUNT(*) FROM \"" + t + "\""));
    if (n == 0) empty.push_back(t);
  }
  return empty;
}

Result<std::vector<std::string>> SchemaOf(const std::string& db_path) {
  sql::OpenOptions o;
  o.read_only = true;
  KEEL_ASSIGN_OR_RETURN(auto db, sql::Db::Open(db_path, o));
  KEEL_ASSIGN_OR_RETURN(auto st, db->Prepare("SELECT type, name, COALESCE(sql, '') FROM "
                                             "sqlite_master"));
  std::vector<std::string> out;
  for (;;) {
    KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    std::string line = st->Text(0) + " " + st->Text(1) + ": ";
    bool space = false;
    for (char c : st->Text(2)) {
      if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
        space = true;
        continue;
      }
      if (space && line.back() != ' ') line += ' ';
      space = false;
      line += c;
    }
    out.push_back(line);
  }
  std::sort(out.begin(), out.end());
  KEEL_ASSIGN_OR_RETURN(int64_t v, db->QueryInt("PRAGMA user_version"));
  out.push_back("user_version " + std::to_string(v));
  KEEL_ASSIGN_OR_RETURN(int64_t av, db->QueryInt("PRAGMA auto_vacuum"));
  out.push_back("auto_vacuum " + std::to_string(av));
  return out;
}

}  // namespace keel::store::testing
