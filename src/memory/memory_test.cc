#include "memory/memory.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/testing_util.h"
#include "memory/query.h"
#include "store/artifacts.h"
#include "store/records.h"
#include "store/sqlite/fts.h"
#include "store/workspace.h"

namespace keel::memory {
namespace {

using keel::testing::TempDir;

constexpr int64_t kDay = 24ll * 3600 * 1000000;

struct Fixture {
  TempDir tmp;
  SimulatedClock clock;
  SeededRandom random{7};
  Env env;
  std::unique_ptr<store::Workspace> ws;
  std::unique_ptr<Memory> mem;
  Fixture() {
    env.clock = &clock;
    env.random = &random;
    EXPECT_TRUE(store::Workspace::Init(tmp.Sub("ws"), store::InitOptions{}, env).ok());
    auto r = store::Workspace::Open(tmp.Sub("ws"), store::WorkspaceOpenOptions{}, env);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    ws = std::move(r).value();
    mem = std::make_unique<Memory>(ws.get());
  }
  std::string Put(const std::string& content, const std::string& media = "text/plain") {
    std::string hash;
    Status s = ws->Write([&](store::Txn& txn) -> Status {
      store::PutArtifactOptions o;
      o.media_type = media;
      KEEL_ASSIGN_OR_RETURN(auto info, store::PutArtifact(txn, content, o));
      hash = info.hash;
      return OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return hash;
  }
  std::string Add(const std::string& subject, const std::string& text, double conf = 1.0) {
    NewFact f;
    f.free_subject = true;  // the subjects of these tests are labels, not records
    f.subject = subject;
    f.text = text;
    f.confidence = conf;
    auto r = mem->Remember(f);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->fact_id : "";
  }
  int64_t LedgerCount(const std::string& kind) {
    store::LedgerQuery q;
    q.kind = kind;
    auto e = ws->QueryLedger(q);
    return e.ok() ? static_cast<int64_t>(e->size()) : -1;
  }
  RecallResult Recall(const std::string& query, const std::string& subject = "",
                      int64_t budget = 1000) {
    RecallQuery q;
    q.query = query;
    q.subject = subject;
    q.budget_tokens = budget;
    auto r = mem->Recall(q);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : RecallResult{};
  }
};

TEST(Normalize, LowercasesAndCollapses) {
  EXPECT_EQ(NormalizeText("  Jane DOE -- CFO, at Acme!! "), "jane doe cfo at acme");
  EXPECT_EQ(NormalizeText("¿Qué?"), "\xC2\xBFqu\xC3\xA9");  // UTF-8 bytes kept
  EXPECT_EQ(NormalizeText("..."), "");
  EXPECT_DOUBLE_EQ(TokenJaccard("a b c", "a b c"), 1.0);
  EXPECT_DOUBLE_EQ(TokenJaccard("a b", "c d"), 0.0);
  EXPECT_DOUBLE_EQ(TokenJaccard("a b c d", "a b c e"), 3.0 / 5.0);
}

TEST(Tokens, EstimateIsBytesOverFourPlusOverhead) {
  EXPECT_EQ(EstimateTokens(""), kTokensPerFactOverhead);
  EXPECT_EQ(EstimateTokens("abcd"), 1 + kTokensPerFactOverhead);
  EXPECT_EQ(EstimateTokens("abcde"), 2 + kTokensPerFactOverhead);
}

// The terms reach the index quoted (store/sqlite/fts_test.cc has the expression itself).
TEST(Query, HostileInputNeverReachesFtsSyntax) {
  for (const char* q : {"\"", "AND(", "NEAR(a b", "text:x", "*", "a OR", "(((", "'; DROP TABLE",
                        "^foo", "\"unterminated", "-", "{subject}:x", "NOT", "\xff\xfe"}) {
    ParsedQuery p = ParseQuery(q);
    if (!p.terms.empty()) {
      std::string m = store::sql::FtsMatchExpression(p.terms, store::TermJoin::kAny, "rec_1");
      EXPECT_EQ(m.find("\"\"\""), std::string::npos) << q;
    }
    for (const auto& t : p.terms) {
      EXPECT_EQ(t.word.find('"'), std::string::npos) << q;
    }
  }
  ParsedQuery p = ParseQuery("Who is the CFO of Acme? acm*");
  ASSERT_EQ(p.terms.size(), 3u);
  EXPECT_EQ(p.terms[0].word, "cfo");
  EXPECT_EQ(p.terms[1].word, "acme");
  EXPECT_EQ(p.terms[2].word, "acm");
  EXPECT_TRUE(p.terms[2].prefix);
}

TEST(Memory, RememberWritesFactAndLedgerEntry) {
  Fixture f;
  std::string id = f.Add("rec_acme", "Acme Ltd is based in Lisbon");
  ASSERT_EQ(id.rfind("fact_", 0), 0u);
  EXPECT_EQ(f.LedgerCount("memory.fact.added"), 1);
  auto fact = f.mem->Get(id);
  ASSERT_TRUE(fact.ok());
  EXPECT_EQ(fact->subject, "rec_acme");
  EXPECT_EQ(fact->provenance.agent, "operator");
  EXPECT_GT(fact->provenance.ledger_seq, 0);
  EXPECT_EQ(fact->provenance.sources.size(), 1u);
  EXPECT_EQ(f.mem->Get("fact_nope").status().code(), StatusCode::kNotFound);
}

// A fact is about a record: an unknown subject (a typo, an id of another workspace) is
// refused unless a free-form subject is asked for.
TEST(Memory, SubjectMustBeARecordUnlessFree) {
  Fixture f;
  NewFact n;
  n.subject = "lead_nothere";
  n.text = "Prefers calls in the morning";
  auto refused = f.mem->Remember(n);
  EXPECT_EQ(refused.status().code(), StatusCode::kNotFound);
  EXPECT_NE(refused.status().message().find("no record lead_nothere"), std::string::npos)
      << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("--free-subject"), std::string::npos);
  EXPECT_EQ(f.LedgerCount("memory.fact.added"), 0);

  // An existing record.
  auto lead = store::CreateRecord(*f.ws, "lead", {{"email", "ann@example.com"}});
  ASSERT_TRUE(lead.ok()) << lead.status().ToString();
  n.subject = lead->id;
  auto ok = f.mem->Remember(n);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(f.mem->FactsOf(lead->id)->size(), 1u);
  // A record created earlier in the same transaction counts.
  Status same_txn = f.ws->Write([&](store::Txn& txn) -> Status {
    KEEL_ASSIGN_OR_RETURN(auto rec,
                          store::CreateRecord(txn, "lead", {{"email", "bo@example.com"}}));
    NewFact m;
    m.subject = rec.id;
    m.text = "Met at the trade fair";
    return f.mem->Remember(txn, m).status();
  });
  EXPECT_TRUE(same_txn.ok()) << same_txn.ToString();

  // A free-form subject on purpose.
  n.subject = "topic_pricing";
  n.free_subject = true;
  EXPECT_TRUE(f.mem->Remember(n).ok());

  // In bulk, one unknown subject refuses the batch.
  NewFact good;
  good.subject = lead->id;
  good.text = "Budget approved for Q3";
  NewFact bad = good;
  bad.subject = "lead_typo";
  auto all = f.mem->RememberAll({good, bad});
  EXPECT_EQ(all.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(f.mem->FactsOf(lead->id)->size(), 1u);

  // The extractor checks the subject before it reads the artifact.
  std::string raw = f.Put("Jane Doe, CFO at Acme Ltd. Email jane@acme.example");
  auto ex = f.mem->ExtractFrom(raw, "lead_nothere", {"research", "", ""});
  EXPECT_EQ(ex.status().code(), StatusCode::kNotFound);
  EXPECT_NE(ex.status().message().find("lead_nothere"), std::string::npos);
  EXPECT_EQ(f.mem->ExtractFrom(std::string(64, 'b'), "lead_nothere", {}).status().code(),
            StatusCode::kNotFound);
  auto extracted = f.mem->ExtractFrom(raw, lead->id, {"research", "", ""});
  ASSERT_TRUE(extracted.ok()) << extracted.status().ToString();
  EXPECT_GE(extracted->size(), 1u);
  EXPECT_TRUE(f.mem->ExtractFrom(raw, "topic_acme", {"research", "", ""}, true).ok());
}

TEST(Memory, RejectsBadInput) {
  Fixture f;
  NewFact n;
  n.free_subject = true;
  n.text = "x";
  EXPECT_EQ(f.mem->Remember(n).status().code(), StatusCode::kInvalidArgument);  // no subject
  n.subject = "rec_1";
  n.text = "  ,, ";
  EXPECT_EQ(f.mem->Remember(n).status().code(), StatusCode::kInvalidArgument);  // no words
  n.text = "ok";
  n.confidence = 1.5;
  EXPECT_EQ(f.mem->Remember(n).status().code(), StatusCode::kInvalidArgument);
  n.confidence = -0.1;
  EXPECT_EQ(f.mem->Remember(n).status().code(), StatusCode::kInvalidArgument);
  n.confidence = 0.5;
  n.scope = Scope::kShort;  // no TTL
  EXPECT_EQ(f.mem->Remember(n).status().code(), StatusCode::kInvalidArgument);
  n.scope = Scope::kLong;
  n.ttl_us = 5;
  EXPECT_EQ(f.mem->Remember(n).status().code(), StatusCode::kInvalidArgument);
  n.ttl_us = 0;
  n.text = std::string(kMaxFactTextBytes + 1, 'a');
  EXPECT_EQ(f.mem->Remember(n).status().code(), StatusCode::kInvalidArgument);
  n.text = "ok";
  n.source_artifact = std::string(64, 'a');
  EXPECT_EQ(f.mem->Remember(n).status().code(), StatusCode::kNotFound);
  n.source_artifact = f.Put("short");
  n.span_begin = 2;
  n.span_end = 99;  // outside the 5-byte artifact
  EXPECT_EQ(f.mem->Remember(n).status().code(), StatusCode::kInvalidArgument);
  n.span_end = 1;  // end before begin
  EXPECT_EQ(f.mem->Remember(n).status().code(), StatusCode::kInvalidArgument);
  n.span_end = 5;
  EXPECT_TRUE(f.mem->Remember(n).ok());
  // Nothing of the refused writes reached the ledger.
  EXPECT_EQ(f.LedgerCount("memory.fact.added"), 1);
}

TEST(Memory, ExactDuplicateMergesIntoOneFactWithSeveralSources) {
  Fixture f;
  std::string a1 = f.Put("page one: Jane Doe is CFO at Acme Ltd");
  std::string a2 = f.Put("page two says: jane doe is cfo at acme ltd.");
  NewFact n;
  n.free_subject = true;
  n.subject = "rec_acme";
  n.text = "Jane Doe is CFO at Acme Ltd";
  n.confidence = 0.6;
  n.source_artifact = a1;
  n.span_begin = 10;
  n.span_end = 37;
  n.by = {"research", "run_1", "step_1"};
  auto r1 = f.mem->Remember(n);
  ASSERT_TRUE(r1.ok());
  EXPECT_FALSE(r1->merged);
  n.text = "jane doe is CFO at ACME Ltd.";
  n.source_artifact = a2;
  n.span_begin = 15;
  n.span_end = 43;
  n.confidence = 0.9;
  n.by = {"research", "run_2", "step_4"};
  auto r2 = f.mem->Remember(n);
  ASSERT_TRUE(r2.ok());
  EXPECT_TRUE(r2->merged);
  EXPECT_FALSE(r2->already_known);
  EXPECT_EQ(r2->fact_id, r1->fact_id);
  // The same source again changes nothing.
  auto r3 = f.mem->Remember(n);
  ASSERT_TRUE(r3.ok());
  EXPECT_TRUE(r3->already_known);
  auto facts = f.mem->FactsOf("rec_acme");
  ASSERT_TRUE(facts.ok());
  ASSERT_EQ(facts->size(), 1u);
  const Fact& fact = (*facts)[0];
  EXPECT_DOUBLE_EQ(fact.confidence, 0.9);  // the best source's confidence
  ASSERT_EQ(fact.provenance.sources.size(), 2u);
  EXPECT_EQ(fact.provenance.sources[0].artifact, a1);
  EXPECT_EQ(fact.provenance.sources[1].artifact, a2);
  EXPECT_EQ(fact.provenance.sources[1].run_id, "run_2");
  EXPECT_EQ(fact.provenance.sources[1].span_begin, 15);
  EXPECT_EQ(f.LedgerCount("memory.fact.merged"), 1);
}

TEST(Memory, SameKeyAndValueMergesWhateverTheSentence) {
  Fixture f;
  std::string a = f.Put("From: Jane <jane@acme.example>");
  std::string b = f.Put("Contact us: jane@acme.example");
  NewFact n;
  n.free_subject = true;
  n.subject = "rec_kv";
  n.key = "email";
  n.value = "jane@acme.example";
  n.text = "email: jane@acme.example (From: Jane <jane@acme.example>)";
  n.source_artifact = a;
  n.span_begin = 12;
  n.span_end = 29;
  n.confidence = 0.9;
  auto first = f.mem->Remember(n);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  n.text = "email: jane@acme.example (Contact us: jane@acme.example)";
  n.source_artifact = b;
  n.span_begin = 12;
  n.span_end = 29;
  auto second = f.mem->Remember(n);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_TRUE(second->merged);
  EXPECT_EQ(second->fact_id, first->fact_id);
  auto fact = f.mem->Get(first->fact_id);
  ASSERT_TRUE(fact.ok());
  EXPECT_EQ(fact->provenance.sources.size(), 2u);
  // Another value under the same key is another fact.
  n.value = "j.doe@acme.example";
  n.text = "email: j.doe@acme.example";
  n.source_artifact.clear();
  n.span_begin = n.span_end = -1;
  auto other = f.mem->Remember(n);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->merged);
  EXPECT_EQ(f.mem->FactsOf("rec_kv")->size(), 2u);
}

TEST(Memory, NearDuplicateMergesButDifferentNumbersDoNot) {
  Fixture f;
  std::string a =
      f.Add("rec_1", "The client prefers morning meetings on weekdays in Berlin office");
  NewFact n;
  n.free_subject = true;
  n.subject = "rec_1";
  n.text = "The client prefers morning meetings on weekdays in the Berlin office";
  n.by.agent = "research";
  auto r = f.mem->Remember(n);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->merged);
  EXPECT_EQ(r->fact_id, a);
  // Same words, a different amount: a different fact.
  f.Add("rec_1", "The project budget for the website redesign is 10000 EUR this year");
  auto r2 = f.mem->Remember(NewFact{"rec_1",
                                    "The project budget for the website redesign is 20000 EUR "
                                    "this year",
                                    "",
                                    "",
                                    1.0,
                                    "",
                                    -1,
                                    -1,
                                    0,
                                    0,
                                    Scope::kLong,
                                    0,
                                    {},
                                    true});
  ASSERT_TRUE(r2.ok());
  EXPECT_FALSE(r2->merged);
  // Same text on another subject: separate facts.
  auto r3 = f.mem->Remember(NewFact{"rec_2",
                                    "The client prefers morning meetings on weekdays in Berlin "
                                    "office",
                                    "",
                                    "",
                                    1.0,
                                    "",
                                    -1,
                                    -1,
                                    0,
                                    0,
                                    Scope::kLong,
                                    0,
                                    {},
                                    true});
  ASSERT_TRUE(r3.ok());
  EXPECT_FALSE(r3->merged);
  // Key/value facts with different values never merge.
  NewFact e1;
  e1.free_subject = true;
  e1.subject = "rec_3";
  e1.key = "email";
  e1.value = "a@x.com";
  e1.text = "email a@x.com or b@x.com";
  auto k1 = f.mem->Remember(e1);
  e1.value = "b@x.com";
  auto k2 = f.mem->Remember(e1);
  ASSERT_TRUE(k1.ok() && k2.ok());
  EXPECT_NE(k1->fact_id, k2->fact_id);
}

TEST(Memory, RecallRanksByRelevanceThenConfidenceAndRecency) {
  Fixture f;
  f.Add("rec_a", "Jane Doe is CFO at Acme Ltd");
  f.Add("rec_a", "Acme Ltd sells industrial pumps");
  f.Add("rec_b", "Globex hired a new CFO last spring");
  f.Add("rec_c", "The weather in Lisbon is mild");
  auto r = f.Recall("Who is the CFO of Acme?");
  ASSERT_GE(r.facts.size(), 3u);
  EXPECT_EQ(r.facts[0].fact.text, "Jane Doe is CFO at Acme Ltd");
  for (const auto& s : r.facts) EXPECT_NE(s.fact.text, "The weather in Lisbon is mild");
  for (size_t i = 1; i < r.facts.size(); ++i) EXPECT_GE(r.facts[i - 1].score, r.facts[i].score);

  // Equal text relevance: higher confidence first.
  f.Add("rec_d", "supplier of blue widgets", 0.2);
  f.Add("rec_e", "supplier of green widgets", 0.95);
  auto w = f.Recall("widgets supplier");
  ASSERT_EQ(w.facts.size(), 2u);
  EXPECT_EQ(w.facts[0].fact.subject, "rec_e");

  // Equal relevance and confidence: the recent one first.
  f.Add("rec_f", "prefers invoices by post");
  f.clock.Advance(200 * kDay);
  f.Add("rec_g", "prefers invoices by mail");
  auto p = f.Recall("prefers invoices");
  ASSERT_EQ(p.facts.size(), 2u);
  EXPECT_EQ(p.facts[0].fact.subject, "rec_g");
  EXPECT_GT(p.facts[0].recency, p.facts[1].recency);
}

TEST(Memory, RecallSubjectFilterAndProvenance) {
  Fixture f;
  std::string art = f.Put("Contact: jane@acme.example, phone +1 555 0100");
  NewFact n;
  n.free_subject = true;
  n.subject = "rec_acme";
  n.key = "email";
  n.value = "jane@acme.example";
  n.source_artifact = art;
  n.span_begin = 9;
  n.span_end = 26;
  n.confidence = 0.95;
  n.by = {"research", "run_9", "extract"};
  ASSERT_TRUE(f.mem->Remember(n).ok());
  f.Add("rec_other", "email: someone@else.example");
  auto r = f.Recall("email", "rec_acme");
  ASSERT_EQ(r.facts.size(), 1u);
  const Fact& fact = r.facts[0].fact;
  EXPECT_EQ(fact.text, "email: jane@acme.example");
  EXPECT_EQ(fact.provenance.artifact, art);
  EXPECT_EQ(fact.provenance.span_begin, 9);
  EXPECT_EQ(fact.provenance.span_end, 26);
  EXPECT_EQ(fact.provenance.agent, "research");
  EXPECT_EQ(fact.provenance.run_id, "run_9");
  EXPECT_EQ(fact.provenance.step_id, "extract");
  EXPECT_GT(fact.provenance.ledger_seq, 0);
  // The span points at the text the fact was read from.
  auto content = store::GetArtifact(*f.ws, art);
  ASSERT_TRUE(content.ok());
  EXPECT_EQ(content->substr(9, 17), "jane@acme.example");
  // An empty query with a subject lists its newest facts; without one it is an error.
  EXPECT_EQ(f.Recall("the of", "rec_other").facts.size(), 1u);
  RecallQuery bad;
  bad.query = "?? the";
  EXPECT_EQ(f.mem->Recall(bad).status().code(), StatusCode::kInvalidArgument);
  bad.query = "x";
  bad.budget_tokens = 0;
  EXPECT_EQ(f.mem->Recall(bad).status().code(), StatusCode::kInvalidArgument);
}

TEST(Memory, RecallStaysWithinTokenBudget) {
  Fixture f;
  for (int i = 0; i < 30; ++i) {
    f.Add("rec_" + std::to_string(i),
          "pump order number " + std::to_string(i) + " " + std::string(40 + i * 3, 'x'));
  }
  for (int64_t budget : {1, 20, 50, 100, 333}) {
    auto r = f.Recall("pump order", "", budget);
    int64_t sum = 0;
    for (const auto& s : r.facts) {
      EXPECT_EQ(s.tokens, EstimateTokens(s.fact.text));
      sum += s.tokens;
    }
    EXPECT_EQ(sum, r.tokens_used);
    EXPECT_LE(r.tokens_used, budget);
    EXPECT_EQ(static_cast<int64_t>(r.facts.size()) + r.dropped_for_budget > 0, true);
  }
  EXPECT_TRUE(f.Recall("pump order", "", 1).facts.empty());
  EXPECT_EQ(f.Recall("pump order", "", 100000).facts.size(), 20u);  // default limit
}

TEST(Memory, HostileQueriesDoNotError) {
  Fixture f;
  f.Add("rec_1", "Acme AND Globex merged (NEAR the river)");
  for (const char* q : {"\"", "AND(", "NEAR(", "acme AND", "\"acme", "acme*", "*acme",
                        "subject:rec_1", "text : (", "OR OR OR", "NOT acme", "a\"b\"c",
                        "acme'); DROP TABLE facts; --", "\\", "{text}:acme", "acme^2"}) {
    RecallQuery rq;
    rq.query = q;
    rq.subject = "rec_1";
    auto r = f.mem->Recall(rq);
    EXPECT_TRUE(r.ok()) << q << ": " << r.status().ToString();
  }
  auto r = f.Recall("acm*");
  EXPECT_EQ(r.facts.size(), 1u);  // prefix query
  auto n = f.Recall("NEAR river");
  EXPECT_EQ(n.facts.size(), 1u);
}

TEST(Memory, ShortTermFactsExpireWithTheClockAndArePurged) {
  Fixture f;
  NewFact n;
  n.free_subject = true;
  n.subject = "run_1";
  n.text = "the current draft uses the formal tone";
  n.scope = Scope::kShort;
  n.ttl_us = 3600ll * 1000000;
  auto r = f.mem->Remember(n);
  ASSERT_TRUE(r.ok());
  f.Add("run_1", "the customer asked for formal tone always");
  EXPECT_EQ(f.Recall("formal tone").facts.size(), 2u);
  RecallQuery no_short;
  no_short.query = "formal tone";
  no_short.include_short = false;
  EXPECT_EQ(f.mem->Recall(no_short)->facts.size(), 1u);
  f.clock.Advance(3600ll * 1000000 - 1);
  EXPECT_EQ(f.Recall("formal tone").facts.size(), 2u);
  f.clock.Advance(1);
  auto after = f.Recall("formal tone");
  ASSERT_EQ(after.facts.size(), 1u);
  EXPECT_EQ(after.facts[0].fact.scope, Scope::kLong);
  EXPECT_EQ(f.mem->FactsOf("run_1")->size(), 1u);
  EXPECT_EQ(f.mem->FactsOf("run_1", true)->size(), 2u);
  EXPECT_EQ(f.mem->Stats()->facts_expired, 1);
  auto purged = f.mem->PurgeExpired();
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(*purged, 1);
  EXPECT_EQ(f.mem->FactsOf("run_1", true)->size(), 1u);
  EXPECT_EQ(f.mem->Get(r->fact_id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(f.LedgerCount("memory.purged"), 1);
  EXPECT_EQ(*f.mem->PurgeExpired(), 0);
  EXPECT_EQ(f.LedgerCount("memory.purged"), 1);
}

TEST(Memory, SupersedeKeepsTheOldFact) {
  Fixture f;
  std::string old_id = f.Add("rec_acme", "Jane Doe is CFO at Acme Ltd");
  f.clock.Advance(kDay);
  NewFact n;
  n.free_subject = true;
  n.text = "John Roe is CFO at Acme Ltd";
  auto new_id = f.mem->Supersede(old_id, n, "Jane left in March");
  ASSERT_TRUE(new_id.ok()) << new_id.status().ToString();
  auto recalled = f.Recall("CFO Acme");
  ASSERT_EQ(recalled.facts.size(), 1u);
  EXPECT_EQ(recalled.facts[0].fact.id, *new_id);
  EXPECT_EQ(recalled.facts[0].fact.supersedes, old_id);
  auto old = f.mem->Get(old_id);
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->superseded_by, *new_id);
  EXPECT_EQ(old->valid_to_us, f.clock.NowMicros());
  EXPECT_EQ(f.mem->FactsOf("rec_acme")->size(), 1u);
  EXPECT_EQ(f.mem->FactsOf("rec_acme", true)->size(), 2u);
  EXPECT_EQ(f.mem->Supersede(old_id, n, "again").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(f.mem->Supersede("fact_missing", n, "x").status().code(), StatusCode::kNotFound);
  n.subject = "rec_other";
  EXPECT_EQ(f.mem->Supersede(*new_id, n, "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(f.LedgerCount("memory.fact.superseded"), 1);
  // A re-stated old fact is a new fact, not a merge into the superseded one.
  auto again = f.mem->Remember(NewFact{"rec_acme",
                                       "Jane Doe is CFO at Acme Ltd",
                                       "",
                                       "",
                                       1.0,
                                       "",
                                       -1,
                                       -1,
                                       0,
                                       0,
                                       Scope::kLong,
                                       0,
                                       {},
                                       true});
  ASSERT_TRUE(again.ok());
  EXPECT_NE(again->fact_id, old_id);
}

TEST(Memory, RetrievalLogAndHitMissStats) {
  Fixture f;
  std::string a = f.Add("rec_1", "Acme wants a quote for 40 pumps");
  f.Add("rec_1", "Acme pays invoices late");
  RecallQuery q;
  q.query = "Acme quote pumps";
  q.agent = "drafting";
  q.workflow = "outreach";
  q.run_id = "run_1";
  q.step_id = "draft";
  auto r1 = f.mem->Recall(q);
  ASSERT_TRUE(r1.ok());
  ASSERT_FALSE(r1->retrieval_id.empty());
  EXPECT_EQ(f.LedgerCount("memory.recall"), 1);
  ASSERT_TRUE(f.mem->MarkUsed(r1->retrieval_id, {a}).ok());
  EXPECT_EQ(f.LedgerCount("memory.used"), 1);
  auto r2 = f.mem->Recall(q);  // marked with nothing used: a miss
  ASSERT_TRUE(f.mem->MarkUsed(r2->retrieval_id, {}).ok());
  q.agent = "research";
  q.workflow = "";
  auto r3 = f.mem->Recall(q);  // pending
  q.query = "zebra";
  auto r4 = f.mem->Recall(q);  // returned nothing: a miss even unmarked
  ASSERT_TRUE(r3.ok() && r4.ok());
  EXPECT_TRUE(r4->facts.empty());
  EXPECT_EQ(f.mem->MarkUsed(r3->retrieval_id, {"fact_not_returned"}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(f.mem->MarkUsed("ret_missing", {}).code(), StatusCode::kNotFound);

  auto s = f.mem->Stats();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->total.retrievals, 4);
  EXPECT_EQ(s->total.hits, 1);
  EXPECT_EQ(s->total.misses, 2);
  EXPECT_EQ(s->total.pending, 1);
  EXPECT_DOUBLE_EQ(s->total.hit_rate, 1.0 / 3.0);
  ASSERT_EQ(s->by_agent.size(), 2u);
  EXPECT_EQ(s->by_agent[0].name, "drafting");
  EXPECT_EQ(s->by_agent[0].hits, 1);
  EXPECT_EQ(s->by_agent[0].misses, 1);
  EXPECT_DOUBLE_EQ(s->by_agent[0].hit_rate, 0.5);
  EXPECT_EQ(s->by_agent[1].name, "research");
  EXPECT_EQ(s->by_agent[1].pending, 1);
  EXPECT_EQ(s->by_agent[1].misses, 1);
  ASSERT_EQ(s->by_workflow.size(), 2u);
  EXPECT_EQ(s->by_workflow[1].name, "outreach");
  EXPECT_EQ(s->by_workflow[1].facts_used, 1);

  // An unlogged recall leaves no trace.
  q.log = false;
  auto r5 = f.mem->Recall(q);
  ASSERT_TRUE(r5.ok());
  EXPECT_TRUE(r5->retrieval_id.empty());
  EXPECT_EQ(f.mem->Stats()->total.retrievals, 4);
}

TEST(Memory, RecallInsideCallerTransaction) {
  Fixture f;
  f.Add("rec_1", "Acme uses SAP for accounting");
  RecallResult out;
  Status s = f.ws->Write([&](store::Txn& txn) -> Status {
    RecallQuery q;
    q.query = "accounting";
    KEEL_ASSIGN_OR_RETURN(out, f.mem->Recall(txn, q));
    return InvalidArgument("roll back");
  });
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(out.facts.size(), 1u);
  EXPECT_EQ(f.LedgerCount("memory.recall"), 0);  // rolled back with the caller
}

TEST(Memory, NeverExtractsFromGeneratedText) {
  Fixture f;
  std::string raw = f.Put("Jane Doe, CFO at Acme Ltd. Email jane@acme.example");
  auto r = f.mem->ExtractFrom(raw, "rec_acme", {"research", "run_1", "s1"}, true);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GE(r->size(), 3u);
  auto facts = f.mem->FactsOf("rec_acme");
  for (const auto& fact : *facts) {
    EXPECT_EQ(fact.provenance.artifact, raw);
    EXPECT_GE(fact.provenance.span_begin, 0);
    EXPECT_EQ(fact.provenance.agent, "research");
  }
  // Model output marked by media type.
  std::string model =
      f.Put("Jane Doe, CFO at Acme Ltd (as summarised)", WithOrigin("text/plain", Origin::kModel));
  auto m = f.mem->ExtractFrom(model, "rec_acme", {"research", "", ""}, true);
  EXPECT_EQ(m.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(m.status().message().find("origin model"), std::string::npos);
  // Recalled text marked in the origins table.
  std::string brief = f.Put("Facts: Jane Doe is CFO at Acme Ltd; email jane@acme.example");
  ASSERT_TRUE(f.ws->Write([&](store::Txn& txn) {
                    return f.mem->MarkArtifactOrigin(txn, brief, Origin::kRecall);
                  })
                  .ok());
  EXPECT_EQ(f.mem->ExtractFrom(brief, "rec_acme", {}, true).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(*f.mem->ArtifactOrigin(brief), std::optional<std::string>("recall"));
  EXPECT_EQ(*f.mem->ArtifactOrigin(raw), std::nullopt);
  // Summaries are generated text too.
  auto sum =
      f.mem->PutSummary("rec_acme", "Acme: pumps maker, CFO Jane Doe.", {"research", "", ""});
  ASSERT_TRUE(sum.ok());
  EXPECT_EQ(f.mem->ExtractFrom(sum->artifact, "rec_acme", {}, true).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(f.mem->ExtractFrom(std::string(64, 'b'), "rec_acme", {}, true).status().code(),
            StatusCode::kNotFound);
  // Extracting the same raw page twice adds nothing new.
  auto again = f.mem->ExtractFrom(raw, "rec_acme", {"research", "run_2", "s1"}, true);
  ASSERT_TRUE(again.ok());
  for (const auto& x : *again) EXPECT_TRUE(x.merged);
  EXPECT_EQ(f.mem->FactsOf("rec_acme")->size(), facts->size());
}

TEST(Memory, SummariesAreVersionedArtifacts) {
  Fixture f;
  auto v1 = f.mem->PutSummary("rec_1", "First take.", {"research", "run_1", "sum"});
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(v1->version, 1);
  EXPECT_TRUE(v1->parent_artifact.empty());
  auto same = f.mem->PutSummary("rec_1", "First take.", {"research", "run_2", "sum"});
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->version, 1);  // unchanged text: no new version
  auto v2 = f.mem->PutSummary("rec_1", "Second, better take.", {"research", "run_3", "sum"});
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->version, 2);
  EXPECT_EQ(v2->parent_artifact, v1->artifact);
  auto lineage = store::ArtifactLineage(*f.ws, v2->artifact);
  ASSERT_TRUE(lineage.ok());
  ASSERT_EQ(lineage->size(), 2u);
  EXPECT_EQ((*lineage)[1].hash, v1->artifact);
  auto latest = f.mem->LatestSummary("rec_1");
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ((*latest)->text, "Second, better take.");
  EXPECT_EQ(f.mem->SummaryHistory("rec_1")->size(), 2u);
  EXPECT_FALSE(f.mem->LatestSummary("rec_none")->has_value());
  EXPECT_EQ(f.mem->PutSummary("rec_1", "  ", {"x", "", ""}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(Memory, DecisionLogLinksFacts) {
  Fixture f;
  std::string a = f.Add("rec_1", "Acme budget is 12000 EUR");
  Decision d;
  d.subject = "rec_1";
  d.decision = "send the premium proposal";
  d.decided_by = "outreach";
  d.reason = "budget above 10000 EUR";
  d.fact_ids = {a};
  d.run_id = "run_5";
  auto logged = f.mem->LogDecision(d);
  ASSERT_TRUE(logged.ok()) << logged.status().ToString();
  EXPECT_EQ(logged->id.rfind("dec_", 0), 0u);
  auto all = f.mem->Decisions("rec_1");
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].fact_ids, std::vector<std::string>{a});
  EXPECT_EQ((*all)[0].reason, "budget above 10000 EUR");
  EXPECT_EQ(f.LedgerCount("memory.decision"), 1);
  d.fact_ids = {"fact_missing"};
  EXPECT_EQ(f.mem->LogDecision(d).status().code(), StatusCode::kNotFound);
  d.fact_ids = {};
  d.decided_by = "";
  EXPECT_EQ(f.mem->LogDecision(d).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(f.mem->Stats()->decisions, 1);
}

class FixedSimilarity : public EmbeddingHook {
 public:
  double Similarity(std::string_view, std::string_view fact_text) override {
    return fact_text.find("apple") != std::string_view::npos ? 1.0 : 0.0;
  }
};

TEST(Memory, EmbeddingHookAddsToTheScore) {
  Fixture f;
  f.Add("rec_1", "fruit vendor sells pears");
  f.Add("rec_2", "fruit vendor sells apples");
  FixedSimilarity sim;
  MemoryOptions o;
  o.embedding = &sim;
  o.embedding_weight = 1.0;
  Memory m(f.ws.get(), o);
  RecallQuery q;
  q.query = "fruit vendor";
  auto r = m.Recall(q);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->facts.size(), 2u);
  EXPECT_EQ(r->facts[0].fact.subject, "rec_2");
}

TEST(Memory, ReopenedWorkspaceKeepsIndex) {
  Fixture f;
  f.Add("rec_1", "persistent fact about turbines");
  f.mem.reset();
  f.ws.reset();
  auto ws = store::Workspace::Open(f.tmp.Sub("ws"), store::WorkspaceOpenOptions{}, f.env);
  ASSERT_TRUE(ws.ok());
  Memory m(ws->get());
  RecallQuery q;
  q.query = "turbines";
  q.log = false;
  EXPECT_EQ(m.Recall(q)->facts.size(), 1u);
}

}  // namespace
}  // namespace keel::memory
