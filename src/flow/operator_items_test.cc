// Operator items (docs/workflows.md "Operator items"): approving with an edit, the edits
// that are refused, and the ledger vocabulary of every transition of an item.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "flow/engine.h"
#include "flow/replay.h"
#include "flow/testing_flow.h"
#include "store/runs.h"

namespace keel::flow {
namespace {

using nlohmann::json;
using testing::FlowFixture;
using testing::kDay;
using testing::kHour;
using testing::kSec;

const char kDraft[] = R"(name: outreach
steps:
  - id: draft
    agent: echo
    input: {subject: "Hello ${input.name}", body: "Dear ${input.name}", priority: 1}
  - id: review
    approval:
      summary: "Send ${steps.draft.subject}?"
      edit: steps.draft
  - id: send
    action: log.send
    params: {subject: "${steps.draft.subject}", body: "${steps.draft.body}"}
  - id: after
    set: {sent_body: "${steps.draft.body}"}
)";

// The ledger entries of `run` whose kind starts with `prefix`.
std::vector<json> Entries(FlowFixture& f, const std::string& run, const std::string& kind) {
  store::LedgerQuery q;
  q.run_id = run;
  q.kind = kind;
  auto r = f.ws->QueryLedger(q);
  EXPECT_TRUE(r.ok());
  std::vector<json> out;
  for (const auto& e : *r) {
    json j = json::parse(e.payload);
    j["_kind"] = e.kind;
    j["_actor"] = e.actor;
    out.push_back(j);
  }
  return out;
}

std::string StartAndWait(FlowFixture& f, const char* yaml) {
  f.AddWorkflow("outreach", yaml);
  std::string id = f.Start("outreach", {{"name", "Ada"}});
  EXPECT_TRUE(f.engine->RunUntilIdle().ok());
  EXPECT_EQ(f.Status(id), "waiting");
  return id;
}

TEST(ApprovalEdit, TheApprovedEditReachesTheNextActionAndTheLedger) {
  FlowFixture f;
  std::string id = StartAndWait(f, kDraft);
  auto items = f.Pending();
  ASSERT_EQ(items.size(), 1u);
  json edit = {{"body", "Dear Ada, edited"}};
  ASSERT_TRUE(f.engine->Decide(items[0].id, true, &edit, "fixed the greeting").ok());
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  ASSERT_EQ(f.Status(id), "completed");

  // The outbox row of the send (frozen parameters) carries the edit; the untouched key
  // keeps the drafted value.
  auto ob = store::ListOutbox(*f.ws, id, "");
  ASSERT_TRUE(ob.ok());
  ASSERT_EQ(ob->size(), 1u);
  json params = json::parse((*ob)[0].params);
  EXPECT_EQ(params["body"], "Dear Ada, edited");
  EXPECT_EQ(params["subject"], "Hello Ada");
  // So does the ledger: the decision with the edit and what it replaced, the prepared send.
  auto decided = Entries(f, id, "approval.decided");
  ASSERT_EQ(decided.size(), 1u);
  EXPECT_EQ(decided[0]["edit"], edit);
  EXPECT_EQ(decided[0]["edit_target"], "steps.draft");
  EXPECT_EQ(decided[0]["decision"], "approved");
  EXPECT_EQ(decided[0]["_actor"], "operator");
  auto prepared = Entries(f, id, "action.prepared");
  ASSERT_EQ(prepared.size(), 1u);
  EXPECT_EQ(prepared[0]["params"]["body"], "Dear Ada, edited");
  // Every later step reads the edited value; the draft's journal keeps what the agent
  // wrote (provenance), and the approval's output says what was edited.
  json v = f.Show(id);
  EXPECT_EQ(v["output"]["sent_body"], "Dear Ada, edited");
  auto draft = store::GetJournal(*f.ws, id, "draft");
  ASSERT_TRUE(draft.ok() && *draft);
  EXPECT_EQ(json::parse((*draft)->output)["body"], "Dear Ada");
  auto review = store::GetJournal(*f.ws, id, "review");
  ASSERT_TRUE(review.ok() && *review);
  json out = json::parse((*review)->output);
  EXPECT_EQ(out["edit"], edit);
  EXPECT_EQ(out["edited"], "steps.draft");
  // The journal replays: the replay applies the same edit before the `set` that reads it.
  auto wf = ParseWorkflow(kDraft, "outreach");
  ASSERT_TRUE(wf.ok());
  auto journal = store::ListJournal(*f.ws, id);
  ASSERT_TRUE(journal.ok());
  Status rs = Replay(**wf, {{"name", "Ada"}}, *journal);
  EXPECT_TRUE(rs.ok()) << rs.ToString();
}

TEST(ApprovalEdit, AScalarValueTakesAValueOfItsType) {
  FlowFixture f;
  std::string id = StartAndWait(f, R"(name: outreach
steps:
  - id: compose
    set: {line: "Hello ${input.name}"}
  - id: review
    approval: {summary: "ok?", edit: vars.line}
  - id: note
    action: log.write
    params: {line: "${vars.line}"}
)");
  auto items = f.Pending();
  ASSERT_EQ(items.size(), 1u);
  json wrong = 5;
  Status s = f.engine->Decide(items[0].id, true, &wrong, "");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("must be a string"), std::string::npos) << s.message();
  json edit = "Hi Ada";
  ASSERT_TRUE(f.engine->Decide(items[0].id, true, &edit, "").ok());
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  EXPECT_EQ(f.Status(id), "completed");
  auto ob = store::ListOutbox(*f.ws, id, "");
  ASSERT_TRUE(ob.ok() && ob->size() == 1u);
  EXPECT_EQ(json::parse((*ob)[0].params)["line"], "Hi Ada");
}

TEST(ApprovalEdit, AnEditForAnApprovalThatDeclaresNoneIsRefusedAndNothingIsWritten) {
  FlowFixture f;
  std::string id = StartAndWait(f, R"(name: outreach
steps:
  - id: draft
    agent: echo
    input: {body: "Dear ${input.name}"}
  - id: review
    approval: {summary: "ok?"}
  - id: send
    action: log.send
    params: {body: "${steps.draft.body}"}
)");
  auto items = f.Pending();
  ASSERT_EQ(items.size(), 1u);
  json edit = {{"body", "changed"}};
  Status s = f.engine->Decide(items[0].id, true, &edit, "");
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("approval " + items[0].id), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("does not declare an editable value; the workflow would ignore "
                             "the edit; approve without --edit or add `edit:` to step review"),
            std::string::npos)
      << s.message();
  // Still pending, no decision on the ledger; approving without the edit goes through.
  EXPECT_EQ(f.Pending().size(), 1u);
  EXPECT_TRUE(Entries(f, id, "approval.decided").empty());
  ASSERT_TRUE(f.engine->Decide(items[0].id, true, nullptr, "").ok());
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  EXPECT_EQ(f.Status(id), "completed");
  auto ob = store::ListOutbox(*f.ws, id, "");
  ASSERT_TRUE(ob.ok() && ob->size() == 1u);
  EXPECT_EQ(json::parse((*ob)[0].params)["body"], "Dear Ada");
}

TEST(ApprovalEdit, MalformedEditsAreRefusedWithTheReason) {
  FlowFixture f;
  std::string id = StartAndWait(f, kDraft);
  auto items = f.Pending();
  ASSERT_EQ(items.size(), 1u);
  const std::string apv = items[0].id;
  struct Case {
    json edit;
    const char* says;
  };
  for (const Case& c : {
           Case{json("just text"), "must be a JSON object with some of its keys, not a string"},
           Case{json::array({1}), "not a list"},
           Case{json::object(), "changes nothing"},
           Case{{{"bcc", "x@y"}},
                "has key 'bcc', which the value does not have (its keys: "
                "body, priority, subject)"},
           Case{{{"body", 42}}, "'body' must be a string like the value it replaces, not a number"},
           Case{{{"priority", "high"}}, "'priority' must be a number"},
       }) {
    Status s = f.engine->Decide(apv, true, &c.edit, "");
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.edit.dump();
    EXPECT_NE(s.message().find(c.says), std::string::npos) << s.message();
  }
  // A rejection takes no edit.
  json edit = {{"body", "x"}};
  Status rej = f.engine->Decide(apv, false, &edit, "no");
  EXPECT_EQ(rej.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(rej.message().find("a rejection takes no edit"), std::string::npos) << rej.message();
  // None of them was recorded; a number may replace a number of another kind.
  EXPECT_EQ(f.Pending().size(), 1u);
  EXPECT_TRUE(Entries(f, id, "approval.decided").empty());
  json ok = {{"priority", 2.5}};
  EXPECT_TRUE(f.engine->Decide(apv, true, &ok, "").ok());
}

TEST(ApprovalEdit, UncertainAndNeedsHumanItemsTakeNoEdit) {
  FlowFixture f;
  f.AddWorkflow("doubt", R"(name: doubt
steps:
  - id: send
    action: fake_smtp.send
    params: {_in_doubt_after_send: true}
)");
  f.AddWorkflow("human", R"(name: human
steps:
  - id: pay
    action: fake_keyed.pay
    params: {_fail: needs_human, _fail_times: 1}
)");
  std::string d = f.Start("doubt");
  std::string h = f.Start("human");
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  auto items = f.Pending();
  ASSERT_EQ(items.size(), 2u);
  json edit = {{"amount", 1}};
  for (const auto& a : items) {
    Status s = f.engine->Decide(a.id, true, &edit, "");
    EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << a.kind;
    EXPECT_NE(s.message().find(a.kind == "uncertain" ? "an action of unknown outcome takes no edit"
                                                     : "a step that needs a person takes no edit"),
              std::string::npos)
        << s.message();
    EXPECT_NE(s.message().find("approve without --edit"), std::string::npos);
  }
  EXPECT_EQ(f.Pending().size(), 2u);
  for (const auto& a : items) ASSERT_TRUE(f.engine->Decide(a.id, true, nullptr, "").ok());
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  EXPECT_EQ(f.Status(d), "completed");
  EXPECT_EQ(f.Status(h), "completed");
}

TEST(ApprovalEdit, TheEditableValueIsCheckedWhenTheWorkflowIsLoaded) {
  auto err = [](const std::string& edit) {
    auto wf = ParseWorkflow(
        "name: w\nsteps:\n  - id: draft\n    noop: true\n  - id: review\n"
        "    approval: {summary: s, edit: " +
            edit + "}\n  - id: later\n    noop: true\n",
        "w.yaml");
    return wf.ok() ? std::string() : wf.status().message();
  };
  EXPECT_EQ(err("steps.draft"), "");
  EXPECT_EQ(err("steps.draft.email.subject"), "");
  EXPECT_EQ(err("vars.line"), "");
  EXPECT_NE(err("input.name").find("w.yaml:6: steps[1].approval.edit: must name a value"),
            std::string::npos)
      << err("input.name");
  EXPECT_NE(err("steps").find("must name a value"), std::string::npos);
  EXPECT_NE(err("steps..x").find("must name a value"), std::string::npos);
  EXPECT_NE(err("steps.later").find("no step 'later' before this approval"), std::string::npos)
      << err("steps.later");
  EXPECT_NE(err("steps.review").find("no step 'review' before"), std::string::npos);
}

TEST(ApprovalEdit, AValueTheRunDoesNotHaveCannotBeEdited) {
  FlowFixture f;
  std::string id = StartAndWait(f, R"(name: outreach
steps:
  - id: maybe
    if: "false"
    then:
      - id: draft
        agent: echo
        input: {body: x}
  - id: review
    approval: {summary: "ok?", edit: steps.draft}
)");
  auto items = f.Pending();
  ASSERT_EQ(items.size(), 1u);
  json edit = {{"body", "y"}};
  Status s = f.engine->Decide(items[0].id, true, &edit, "");
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("has no value in this run"), std::string::npos) << s.message();
  EXPECT_EQ(f.Status(id), "waiting");
}

// Every transition of an operator item is one ledger entry naming the item; the words:
// opened (approval.requested, or action.uncertain for an action of unknown outcome),
// approval.reminder, approval.decided, approval.timeout, approval.canceled.
TEST(OperatorItems, EveryTransitionIsALedgerEntryOfOneVocabulary) {
  FlowFixture f;
  f.AddWorkflow("gate", R"(name: gate
steps:
  - id: review
    approval: {summary: "go?", timeout: 2d, remind_after: 1d, default: approve}
)");
  f.AddWorkflow("branch", R"(name: branch
steps:
  - id: review
    approval: {summary: "go?", timeout: 1h}
    on_timeout:
      - id: nudge
        noop: true
)");
  f.AddWorkflow("doubt", R"(name: doubt
steps:
  - id: send
    action: fake_smtp.send
    params: {_in_doubt_after_send: true}
)");
  f.AddWorkflow("human", R"(name: human
steps:
  - id: pay
    action: fake_keyed.pay
    params: {_fail: needs_human, _fail_times: 1}
)");
  std::string decided = f.Start("gate");
  std::string by_default = f.Start("gate");
  std::string expired = f.Start("branch");
  std::string canceled = f.Start("gate");
  std::string doubt = f.Start("doubt");
  std::string human = f.Start("human");
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  std::map<std::string, store::ApprovalRow> by_run;
  for (const auto& a : f.Pending()) by_run[a.run_id] = a;
  ASSERT_EQ(by_run.size(), 6u);
  ASSERT_TRUE(f.engine->Decide(by_run[decided].id, false, nullptr, "no").ok());
  ASSERT_TRUE(f.engine->Decide(by_run[doubt].id, true, nullptr, "").ok());
  ASSERT_TRUE(f.engine->Decide(by_run[human].id, true, nullptr, "").ok());
  ASSERT_TRUE(f.engine->Cancel(canceled).ok());
  f.Drive(3 * kDay, kHour);

  struct Want {
    std::string run;
    std::vector<std::string> kinds;
    std::string status;
  };
  for (const Want& w : {
           Want{decided, {"approval.requested", "approval.decided"}, "rejected"},
           Want{by_default,
                {"approval.requested", "approval.reminder", "approval.timeout"},
                "approved"},
           Want{expired, {"approval.requested", "approval.timeout"}, "expired"},
           Want{canceled, {"approval.requested", "approval.canceled"}, "canceled"},
           Want{doubt, {"action.uncertain", "approval.decided"}, "approved"},
           Want{human, {"approval.requested", "approval.decided"}, "approved"},
       }) {
    const store::ApprovalRow& item = by_run[w.run];
    std::vector<std::string> kinds;
    store::LedgerQuery q;
    q.run_id = w.run;
    auto entries = f.ws->QueryLedger(q);
    ASSERT_TRUE(entries.ok());
    for (const auto& e : *entries) {
      json p = json::parse(e.payload);
      if (p.value("approval", "") != item.id) continue;
      kinds.push_back(e.kind);
      // Every entry of an item names it and its kind (action.uncertain: the outbox token).
      if (e.kind != "action.uncertain") {
        EXPECT_EQ(p["kind"], item.kind) << e.kind;
      }
    }
    EXPECT_EQ(kinds, w.kinds) << item.kind << " " << w.status;
    auto now = store::GetApproval(*f.ws, item.id);
    ASSERT_TRUE(now.ok() && *now);
    EXPECT_EQ((*now)->status, w.status);
  }
}

}  // namespace
}  // namespace keel::flow
