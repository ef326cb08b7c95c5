#include "store/sqlite/fts.h"

#include <gtest/gtest.h>

#include "core/testing_util.h"
#include "store/workspace.h"

namespace keel::store::sql {
namespace {

using keel::testing::TempDir;

TEST(FtsMatchExpression, QuotesEveryTermAndJoinsThem) {
  std::vector<SearchTerm> terms = {{"cfo"}, {"acme"}, {"acm", true}};
  EXPECT_EQ(FtsMatchExpression(terms, TermJoin::kAny, ""),
            "text : (\"cfo\" OR \"acme\" OR \"acm\"*)");
  EXPECT_EQ(FtsMatchExpression(terms, TermJoin::kAll, ""),
            "text : (\"cfo\" AND \"acme\" AND \"acm\"*)");
  EXPECT_EQ(FtsMatchExpression(terms, TermJoin::kAny, "a\"b"),
            "subject : \"a\"\"b\" AND text : (\"cfo\" OR \"acme\" OR \"acm\"*)");
  EXPECT_EQ(FtsMatchExpression({{"x\"y"}}, TermJoin::kAny, ""), "text : (\"x\"\"y\")");
}

struct Fixture {
  TempDir tmp;
  std::unique_ptr<Workspace> ws;
  Fixture() {
    Env env;
    EXPECT_TRUE(Workspace::Init(tmp.Sub("ws"), InitOptions{}, env).ok());
    auto r = Workspace::Open(tmp.Sub("ws"), WorkspaceOpenOptions{}, env);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    ws = std::move(r).value();
  }
  void Index(int64_t n, const std::string& subject, const std::string& text) {
    Status s = ws->Write([&](Txn& txn) { return FtsIndexFact(txn.db(), n, subject, text); });
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  std::vector<int64_t> Search(std::vector<SearchTerm> terms, TermJoin join = TermJoin::kAny,
                              const std::string& subject = "", int64_t min_row = 0) {
    std::vector<int64_t> out;
    Status s = ws->Write([&](Txn& txn) -> Status {
      KEEL_ASSIGN_OR_RETURN(out, FtsMatchFacts(txn.db(), terms, join, subject, 10, min_row));
      return OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }
};

TEST(Fts, TermsMatchAsPlainWordsInTheTextColumn) {
  Fixture f;
  f.Index(1, "rec_a", "Acme hired a new CFO");
  f.Index(2, "rec_a", "Invoices from Acmeville");
  f.Index(3, "rec_b", "The CFO of Globex");
  f.Index(4, "rec_cfo", "AND ( NEAR \" text:x");
  EXPECT_EQ(f.Search({{"cfo"}}), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(f.Search({{"acme", true}}), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(f.Search({{"cfo"}, {"acme"}}, TermJoin::kAll), (std::vector<int64_t>{1}));
  EXPECT_EQ(f.Search({{"cfo"}}, TermJoin::kAny, "rec_b"), (std::vector<int64_t>{3}));
  EXPECT_EQ(f.Search({{"cfo"}}, TermJoin::kAny, "", 2), (std::vector<int64_t>{3}));
  // Operators and quotes in a term are words to match, never query syntax.
  EXPECT_EQ(f.Search({{"and"}, {"near"}}, TermJoin::kAll), (std::vector<int64_t>{4}));
  EXPECT_EQ(f.Search({{"text:x"}}), (std::vector<int64_t>{4}));
  EXPECT_TRUE(f.Search({}).empty());
  Status s = f.ws->Write(
      [&](Txn& txn) { return FtsUnindexFact(txn.db(), 1, "rec_a", "Acme hired a new CFO"); });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(f.Search({{"cfo"}}), (std::vector<int64_t>{3}));
}

}  // namespace
}  // namespace keel::store::sql
