// The words of run, wait, outbox and operator item states (flow/states.h): every state maps
// to its stored word and back, and a word no state has is DataLoss, in the mapping and where
// the engine reads a stored row.
#include "flow/states.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "flow/testing_flow.h"
#include "store/runs.h"

namespace keel::flow {
namespace {

using testing::FlowFixture;

template <class E>
void ExpectRoundTrip(const std::vector<std::pair<E, std::string>>& all,
                     Result<E> (*parse)(std::string_view)) {
  for (const auto& [e, word] : all) {
    EXPECT_EQ(Word(e), word);
    auto back = parse(word);
    ASSERT_TRUE(back.ok()) << word << ": " << back.status().message();
    EXPECT_EQ(*back, e) << word;
  }
}

TEST(States, EveryStateHasItsStoredWord) {
  // These words are in every workspace ever written: a change here breaks them.
  ExpectRoundTrip<RunStatus>({{RunStatus::kRunning, "running"},
                              {RunStatus::kWaiting, "waiting"},
                              {RunStatus::kCompleted, "completed"},
                              {RunStatus::kFailed, "failed"},
                              {RunStatus::kCanceled, "canceled"}},
                             ParseRunStatus);
  ExpectRoundTrip<WaitKind>({{WaitKind::kNone, ""},
                             {WaitKind::kTimer, "timer"},
                             {WaitKind::kEvent, "event"},
                             {WaitKind::kApproval, "approval"},
                             {WaitKind::kChild, "child"},
                             {WaitKind::kUncertain, "uncertain"},
                             {WaitKind::kHuman, "human"},
                             {WaitKind::kPaused, "paused"}},
                            ParseWaitKind);
  ExpectRoundTrip<OutboxState>({{OutboxState::kPending, "pending"},
                                {OutboxState::kSending, "sending"},
                                {OutboxState::kDone, "done"},
                                {OutboxState::kFailed, "failed"},
                                {OutboxState::kUncertain, "uncertain"}},
                               ParseOutboxState);
  ExpectRoundTrip<ItemKind>({{ItemKind::kApproval, "approval"},
                             {ItemKind::kUncertain, "uncertain"},
                             {ItemKind::kNeedsHuman, "needs_human"}},
                            ParseItemKind);
  ExpectRoundTrip<ItemStatus>({{ItemStatus::kPending, "pending"},
                               {ItemStatus::kApproved, "approved"},
                               {ItemStatus::kRejected, "rejected"},
                               {ItemStatus::kExpired, "expired"},
                               {ItemStatus::kCanceled, "canceled"}},
                              ParseItemStatus);
}

TEST(States, AnUnknownWordIsDataLossNamingIt) {
  auto s = ParseRunStatus("sleeping");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(s.status().message().find("'sleeping'"), std::string::npos) << s.status().message();
  EXPECT_NE(s.status().message().find("run status"), std::string::npos) << s.status().message();
  // Case matters: the stored words are lower case.
  EXPECT_EQ(ParseOutboxState("Done").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(ParseItemKind("").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(ParseItemStatus("open").status().code(), StatusCode::kDataLoss);
}

TEST(States, TheEngineRefusesARunWithAnUnknownWaitKind) {
  FlowFixture f;
  f.AddWorkflow("hold", "name: hold\nsteps:\n  - id: w\n    wait: 1h\n");
  std::string id = f.Start("hold");
  ASSERT_TRUE(f.engine->RunUntilIdle().ok());
  auto got = store::GetRun(*f.ws, id);
  ASSERT_TRUE(got.ok() && got->has_value());
  store::RunRow row = got->value();
  // The schema checks the status column; wait_kind has no such check.
  row.wait_kind = "nap";
  // (Through the store, so with an entry: keel refuses a state change off the ledger.)
  ASSERT_TRUE(f.ws->Write([&](store::Txn& txn) {
                    KEEL_RETURN_IF_ERROR(store::UpdateRun(txn, row));
                    return txn.Append({"operator", "test.edit", id, "", "", "{}", {}}).status();
                  })
                  .ok());
  Status c = f.engine->Cancel(id);
  EXPECT_EQ(c.code(), StatusCode::kDataLoss) << c.message();
  EXPECT_NE(c.message().find(id), std::string::npos) << c.message();
  // Nothing was written: the row still holds the word it had.
  auto again = store::GetRun(*f.ws, id);
  ASSERT_TRUE(again.ok() && again->has_value());
  EXPECT_EQ(again->value().wait_kind, "nap");
  EXPECT_EQ(f.Status(id), "waiting");
}

}  // namespace
}  // namespace keel::flow
