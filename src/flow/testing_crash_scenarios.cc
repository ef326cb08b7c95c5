#include "flow/testing_crash_scenarios.h"

#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "flow/engine.h"
#include "flow/testing_worker.h"

namespace keel::flow::testing {
namespace {

using nlohmann::json;

// An agent call, a charge on a key-honouring channel, a durable timer, a loop of sends on an
// SMTP-like channel, a local variable: every kind of work a crash can interrupt.
constexpr char kPipeline[] = R"(
name: pipeline
input:
  required: [n, to]
steps:
  - id: think
    agent: echo
    input: {n: "${input.n}"}
  - id: charge
    action: fake_keyed.charge
    params: {n: "${input.n}"}
  - id: nap
    wait: 0s
  - id: each
    foreach: input.to
    as: who
    do:
      - id: mail
        action: fake_smtp.send
        params: {to: "${who}", n: "${input.n}"}
  - id: note
    set: {done: "${input.n}"}
)";

// A saga whose last step fails for good: three compensations run in reverse order, the
// first of them on the SMTP-like channel.
constexpr char kSaga[] = R"(
name: saga
steps:
  - id: reserve
    action: fake_keyed.reserve
    params: {n: "${input.n}"}
    compensate: release
  - id: charge
    action: fake_keyed.charge
    params: {n: "${input.n}"}
    compensate: refund
  - id: mail
    action: fake_smtp.confirm
    params: {n: "${input.n}"}
    compensate: apologize
  - id: ship
    agent: fail
    input: {message: "out of stock"}
compensations:
  - id: release
    action: fake_keyed.release
    params: {n: "${input.n}"}
  - id: refund
    action: fake_keyed.refund
    params: {n: "${input.n}"}
  - id: apologize
    action: fake_smtp.apologize
    params: {n: "${input.n}"}
)";

constexpr char kGate[] = R"(
name: gate
steps:
  - id: draft
    action: fake_keyed.draft
    params: {n: "${input.n}"}
  - id: ok
    approval: {summary: "send ${input.n}?"}
  - id: send
    action: fake_smtp.send
    params: {n: "${input.n}"}
)";

constexpr char kReply[] = R"(
name: reply
steps:
  - id: wait_reply
    wait_event: {type: reply, key: "${input.lead}", timeout: 7d}
  - id: thank
    action: fake_keyed.thank
    params: {lead: "${input.lead}"}
)";

struct Started {
  std::vector<std::string> pipeline, saga, gate, reply;
};

Started StartMix(CrashHarness& h, int pipelines, int sagas) {
  h.AddWorkflow("pipeline", kPipeline);
  h.AddWorkflow("saga", kSaga);
  Started s;
  for (int i = 0; i < pipelines; ++i) {
    s.pipeline.push_back(h.Start("pipeline", {{"n", i}, {"to", json::array({"a", "b"})}}));
  }
  for (int i = 0; i < sagas; ++i) s.saga.push_back(h.Start("saga", {{"n", 100 + i}}));
  return s;
}

std::string RunStatus(const Observed& o, const std::string& id) {
  for (const auto& r : o.runs) {
    if (r.value("id", "") == id) return r.value("status", "");
  }
  return "(missing)";
}

// The careful operator: an uncertain send that the effects file shows is confirmed; one
// that did not happen is rejected and its run retried (the same token is sent again, once).
// Approval gates are approved. Repeats until nothing waits for the operator.
// A compensation that did not happen is rejected too, which fails the run for good (the
// engine does not retry compensations; the operator undoes by hand): such tokens are
// returned, and CheckFinal expects no effect for them.
std::set<std::string> ResolveAsOperator(CrashHarness& h, const std::string& label) {
  std::set<std::string> abandoned;
  for (int round = 0; round < 10; ++round) {
    Observed o = h.Observe();
    if (o.approvals.empty()) return abandoned;
    std::set<std::string> retry;
    for (const auto& a : o.approvals) {
      std::string id = a.value("id", "");
      std::string kind = a.value("kind", "");
      if (kind == "uncertain") {
        std::string token = a["context"].value("token", "");
        std::string adapter = a["context"].value("adapter", "");
        bool happened = o.effects.count(adapter + " " + token) > 0;
        auto r = happened ? h.Keel({"approve", id})
                          : h.Keel({"reject", id, "--reason", "not in the sent folder"});
        EXPECT_EQ(r.exit_code, 0) << label << ": deciding " << id << ": " << r.err;
        if (!happened && a.value("step", "").rfind("comp:", 0) == 0) {
          abandoned.insert(token);
        } else if (!happened) {
          retry.insert(a.value("run", ""));
        }
      } else {
        auto r = h.Keel({"approve", id});
        EXPECT_EQ(r.exit_code, 0) << label << ": approving " << id << ": " << r.err;
      }
    }
    if (!retry.empty()) {
      EXPECT_TRUE(h.Settle()) << label;  // the rejected step fails its run
      for (const auto& run : retry) {
        auto r = h.Keel({"run", "retry", run});
        EXPECT_EQ(r.exit_code, 0) << label << ": retry " << run << ": " << r.err;
      }
    }
    EXPECT_TRUE(h.Settle()) << label;
  }
  ADD_FAILURE() << label << ": operator items keep coming back";
  return abandoned;
}

// After the operator settled everything: pipelines completed with each effect exactly
// once; sagas failed with each compensation done once.
void CheckFinal(CrashHarness& h, const Started& s, const std::string& label,
                const std::set<std::string>& abandoned) {
  Observed o = h.Observe();
  h.CheckInvariants(o, label + " (after the operator)");
  EXPECT_TRUE(o.approvals.empty()) << label << ": " << o.approvals.dump();
  auto once = [&](const std::string& adapter, const std::string& run, const std::string& key) {
    std::string token = ActionToken(run, key);
    std::string k = adapter + " " + token;
    EXPECT_EQ(o.effects.count(k) ? o.effects.at(k) : 0, abandoned.count(token) ? 0 : 1)
        << label << ": " << adapter << " effect of " << run << " " << key;
  };
  for (const auto& id : s.pipeline) {
    EXPECT_EQ(RunStatus(o, id), "completed") << label << " " << id;
    once("fake_keyed", id, "charge");
    once("fake_smtp", id, "mail#0");
    once("fake_smtp", id, "mail#1");
  }
  for (const auto& id : s.saga) {
    EXPECT_EQ(RunStatus(o, id), "failed") << label << " " << id;
    for (const char* k : {"reserve", "charge"}) once("fake_keyed", id, k);
    once("fake_smtp", id, "mail");
    once("fake_smtp", id, "comp:mail");
    // Compensations run in reverse order; one the operator abandoned stops the saga there.
    bool stopped = abandoned.count(ActionToken(id, "comp:mail")) > 0;
    for (const char* k : {"comp:charge", "comp:reserve"}) {
      std::string ek = "fake_keyed " + ActionToken(id, k);
      EXPECT_EQ(o.effects.count(ek) ? o.effects.at(ek) : 0, stopped ? 0 : 1)
          << label << ": effect of compensation " << k << " of " << id;
    }
    for (const char* k : {"comp:mail", "comp:charge", "comp:reserve"}) {
      if (stopped) break;
      EXPECT_EQ(o.completed.count(id + " " + k) ? o.completed.at(id + " " + k) : 0, 1)
          << label << ": compensation " << k << " of " << id;
    }
  }
  for (const auto& id : s.gate) {
    EXPECT_EQ(RunStatus(o, id), "completed") << label << " " << id;
    once("fake_keyed", id, "draft");
    once("fake_smtp", id, "send");
  }
  for (const auto& id : s.reply) {
    EXPECT_EQ(RunStatus(o, id), "completed") << label << " " << id;
    once("fake_keyed", id, "thank");
  }
}

// Workers in scenarios about lease renewal use a lease short enough to be renewed before
// each I/O.
std::vector<std::string> WorkerArgs(const std::string& point) {
  if (point.rfind("lease.", 0) == 0) return {"--lease-ms", "2", "--batch", "8"};
  return {};
}

}  // namespace

const std::vector<std::string>& WorkerCrashPoints() {
  static const std::vector<std::string> k = {
      "step.result.before_commit",        // phase A: steps advanced, not committed
      "txn.before_commit",                // any transaction, before COMMIT
      "outbox.insert.after_commit",       // outbox row durable, nothing sent
      "outbox.claim.after_commit",        // lease on the step durable, nothing sent
      "send.before_io",                   // about to call the adapter
      "send.after_io_before_record",      // the ambiguous window: sent, outcome not recorded
      "send.after_record_before_commit",  // outcome written, not committed
      "timer.fired.before_step_start",    // a timer fired and committed; next step not begun
      "compensation.mid",                 // between two compensations of a saga
      "lease.renew",                      // renewing the leases of in-flight I/O
  };
  return k;
}

const std::vector<std::string>& OperatorCrashPoints() {
  static const std::vector<std::string> k = {"approval.recorded.before_resume",
                                             "webhook.recv.after_dedupe_insert"};
  return k;
}

bool RunWorkerPointScenario(const std::string& point, int hit, uint64_t seed) {
  std::string label = point + ":" + std::to_string(hit) + " seed " + std::to_string(seed);
  CrashHarness h;
  Started s = StartMix(h, 2, 1);
  std::string spec = point + ":" + std::to_string(hit);
  int code = h.RunWorkerCrashingAt(spec, WorkerArgs(point));
  EXPECT_TRUE(code == -9 || code == 0) << label << ": worker ended with " << code << "\n"
                                       << keel::testing::ReadFileOrDie(h.log_file());
  bool reached = code == -9;
  if (hit == 1) {
    EXPECT_TRUE(reached) << label << ": the crash point was never reached";
  }
  EXPECT_TRUE(h.Settle()) << label << ": work remained after restarts";
  h.CheckInvariants(h.Observe(), label);
  auto abandoned = ResolveAsOperator(h, label);
  CheckFinal(h, s, label, abandoned);
  return reached || hit > 1;
}

void RunWorkerPointStorm(const std::string& point, uint64_t seed) {
  std::string label = point + " storm seed " + std::to_string(seed);
  std::mt19937_64 rng(seed);
  CrashHarness h;
  Started s = StartMix(h, 3, 2);
  int kills = 0;
  for (int round = 0; round < 60; ++round) {
    // Points that a worker passes once per round after a commit crash at their first hit:
    // each process still makes progress (the round committed), and a later hit may never
    // come. The runs of the mix move in step (one batch), so the timers of all pipelines
    // fire in one round and the sagas' compensations take three: a hit drawn up to 5 made
    // the first worker finish without a crash, and the storm end with no kill at all.
    bool once_per_round = point == "timer.fired.before_step_start" || point == "compensation.mid";
    int hit = once_per_round ? 1 : 2 + static_cast<int>(rng() % 5);
    int code = h.RunWorkerCrashingAt(point + ":" + std::to_string(hit), WorkerArgs(point));
    ASSERT_TRUE(code == -9 || code == 0) << label << ": worker ended with " << code;
    if (code == 0) break;
    ++kills;
    // Now and then the operator looks in between crashes.
    if (round % 3 == 2)
      h.CheckInvariants(h.Observe(), label + " after kill " + std::to_string(kills), false);
  }
  EXPECT_GT(kills, 0) << label;
  EXPECT_TRUE(h.Settle()) << label;
  h.CheckInvariants(h.Observe(), label);
  auto abandoned = ResolveAsOperator(h, label);
  CheckFinal(h, s, label, abandoned);
}

void RunApprovalScenario(int runs, uint64_t seed) {
  std::string label = "approval.recorded.before_resume seed " + std::to_string(seed);
  CrashHarness h;
  h.AddWorkflow("gate", kGate);
  Started s;
  for (int i = 0; i < runs; ++i) s.gate.push_back(h.Start("gate", {{"n", i}}));
  ASSERT_TRUE(h.Settle()) << label;
  Observed o = h.Observe();
  ASSERT_EQ(o.approvals.size(), static_cast<size_t>(runs)) << label;
  for (const auto& a : o.approvals) {
    std::string id = a.value("id", "");
    auto r = h.Keel({"approve", id}, {{"KEEL_CRASH_AT", "approval.recorded.before_resume"}});
    EXPECT_EQ(r.exit_code, -9) << label << ": approve was not killed: " << r.err;
    // The decision committed before the kill: a second decision is refused, not applied twice.
    auto again = h.Keel({"approve", id});
    EXPECT_NE(again.exit_code, 0) << label << ": approving twice was accepted";
    EXPECT_NE(again.err.find("already"), std::string::npos) << again.err;
  }
  ASSERT_TRUE(h.Settle()) << label;
  h.CheckInvariants(h.Observe(), label);
  auto abandoned = ResolveAsOperator(h, label);
  CheckFinal(h, s, label, abandoned);
}

void RunWebhookScenario(int runs, uint64_t seed) {
  std::string label = "webhook.recv.after_dedupe_insert seed " + std::to_string(seed);
  CrashHarness h;
  h.AddWorkflow("reply", kReply);
  Started s;
  for (int i = 0; i < runs; ++i)
    s.reply.push_back(h.Start("reply", {{"lead", "L" + std::to_string(i)}}));
  ASSERT_TRUE(h.Settle()) << label;
  for (int i = 0; i < runs; ++i) {
    std::string key = "L" + std::to_string(i), id = "msg-" + std::to_string(i);
    auto r =
        h.Keel({"event", "send", "reply", "--key", key, "--id", id, "--data", R"({"text":"yes"})"},
               {{"KEEL_CRASH_AT", "webhook.recv.after_dedupe_insert"}});
    EXPECT_EQ(r.exit_code, -9) << label << ": event send was not killed: " << r.err;
    // The webhook is redelivered: the dedupe row died with the transaction, so it counts.
    auto again =
        h.Keel({"event", "send", "reply", "--key", key, "--id", id, "--data", R"({"text":"yes"})"});
    EXPECT_EQ(again.exit_code, 0) << again.err;
    EXPECT_NE(again.out.find("delivered to 1 run"), std::string::npos)
        << label << ": " << again.out;
    // And once more: now it is a duplicate.
    auto third =
        h.Keel({"event", "send", "reply", "--key", key, "--id", id, "--data", R"({"text":"yes"})"});
    EXPECT_EQ(third.exit_code, 0) << third.err;
    EXPECT_NE(third.out.find("duplicate"), std::string::npos) << label << ": " << third.out;
  }
  ASSERT_TRUE(h.Settle()) << label;
  h.CheckInvariants(h.Observe(), label);
  auto abandoned = ResolveAsOperator(h, label);
  CheckFinal(h, s, label, abandoned);
}

namespace {

constexpr char kCancelSaga[] = R"(
name: csaga
steps:
  - id: reserve
    action: fake_keyed.reserve
    params: {n: "${input.n}"}
    compensate: release
  - id: mail
    action: fake_smtp.confirm
    params: {n: "${input.n}"}
    compensate: apologize
  - id: charge
    action: fake_keyed.charge
    params: {n: "${input.n}"}
    compensate: refund
  - id: ok
    approval: {summary: "ship ${input.n}?"}
  - id: ship
    action: fake_keyed.ship
    params: {n: "${input.n}"}
    compensate: unship
compensations:
  - id: release
    action: fake_keyed.release
    params: {n: "${input.n}"}
  - id: apologize
    action: fake_smtp.apologize
    params: {n: "${input.n}"}
  - id: refund
    action: fake_keyed.refund
    params: {n: "${input.n}"}
  - id: unship
    action: fake_keyed.unship
    params: {n: "${input.n}"}
)";

}  // namespace

void RunCancelSagaScenario(const std::string& point, int hit, uint64_t seed) {
  std::string label =
      "cancel saga " + point + ":" + std::to_string(hit) + " seed " + std::to_string(seed);
  CrashHarness h;
  h.AddWorkflow("csaga", kCancelSaga);
  std::vector<std::string> runs;
  for (int i = 0; i < 2; ++i)
    runs.push_back(h.Start("csaga", {{"n", static_cast<int>(seed) * 10 + i}}));
  ASSERT_TRUE(h.Settle()) << label;
  Observed before = h.Observe();
  ASSERT_EQ(before.approvals.size(), runs.size()) << label << ": " << before.approvals.dump();
  for (const auto& id : runs) {
    auto r = h.Keel({"run", "cancel", id});
    ASSERT_EQ(r.exit_code, 0) << label << ": " << r.err;
    EXPECT_NE(r.out.find("canceling " + id + ": 3 compensation(s)"), std::string::npos)
        << label << ": " << r.out;
    EXPECT_NE(r.out.find("1 pending approval(s) canceled"), std::string::npos) << r.out;
  }
  EXPECT_TRUE(h.Observe().approvals.empty()) << label << ": the gates are canceled";
  int code = h.RunWorkerCrashingAt(point + ":" + std::to_string(hit));
  EXPECT_TRUE(code == -9 || code == 0) << label << ": worker ended with " << code << "\n"
                                       << keel::testing::ReadFileOrDie(h.log_file());
  if (hit == 1) {
    EXPECT_EQ(code, -9) << label << ": the crash point was never reached";
  }
  EXPECT_TRUE(h.Settle()) << label << ": work remained after restarts";
  h.CheckInvariants(h.Observe(), label);

  // The operator: an uncertain compensation that happened is confirmed; one that did not is
  // rejected (the compensation fails, the run is `failed`) and the run retried, which
  // resumes the saga at that compensation with the same token.
  for (int round = 0; round < 10; ++round) {
    Observed o = h.Observe();
    std::set<std::string> retry;
    for (const auto& r : o.runs) {
      if (r.value("status", "") == "failed") {
        EXPECT_NE(r.value("error", "").find("canceled by operator"), std::string::npos)
            << label << ": " << r.dump();
        retry.insert(r.value("id", ""));
      }
    }
    if (o.approvals.empty() && retry.empty()) break;
    for (const auto& a : o.approvals) {
      std::string id = a.value("id", "");
      EXPECT_EQ(a.value("kind", ""), "uncertain") << label << ": " << a.dump();
      std::string token = a["context"].value("token", "");
      std::string adapter = a["context"].value("adapter", "");
      bool happened = o.effects.count(adapter + " " + token) > 0;
      auto r = happened ? h.Keel({"approve", id})
                        : h.Keel({"reject", id, "--reason", "not in the sent folder"});
      EXPECT_EQ(r.exit_code, 0) << label << ": deciding " << id << ": " << r.err;
    }
    EXPECT_TRUE(h.Settle()) << label;
    for (const auto& id : retry) {
      auto r = h.Keel({"run", "retry", id});
      EXPECT_EQ(r.exit_code, 0) << label << ": retry " << id << ": " << r.err;
    }
    EXPECT_TRUE(h.Settle()) << label;
  }

  Observed o = h.Observe();
  h.CheckInvariants(o, label + " (after the operator)");
  EXPECT_TRUE(o.approvals.empty()) << label << ": " << o.approvals.dump();
  auto effects = [&](const std::string& adapter, const std::string& run, const std::string& key) {
    auto it = o.effects.find(adapter + " " + ActionToken(run, key));
    return it == o.effects.end() ? 0 : it->second;
  };
  for (const auto& id : runs) {
    EXPECT_EQ(RunStatus(o, id), "canceled") << label << " " << id;
    EXPECT_EQ(effects("fake_keyed", id, "comp:charge"), 1) << label << " " << id;
    EXPECT_EQ(effects("fake_smtp", id, "comp:mail"), 1) << label << " " << id;
    EXPECT_EQ(effects("fake_keyed", id, "comp:reserve"), 1) << label << " " << id;
    EXPECT_EQ(effects("fake_keyed", id, "ship"), 0) << label << " " << id;
    EXPECT_EQ(effects("fake_keyed", id, "comp:ship"), 0) << label << " " << id;
    for (const char* k : {"comp:charge", "comp:mail", "comp:reserve"}) {
      std::string key = id + " " + k;
      EXPECT_EQ(o.completed.count(key) ? o.completed.at(key) : 0, 1) << label << ": " << key;
    }
    // Reverse order: charge, then mail, then reserve.
    std::string c = id + " comp:charge", m = id + " comp:mail", r = id + " comp:reserve";
    if (o.first_completed_seq.count(c) && o.first_completed_seq.count(m) &&
        o.first_completed_seq.count(r)) {
      EXPECT_LT(o.first_completed_seq.at(c), o.first_completed_seq.at(m)) << label;
      EXPECT_LT(o.first_completed_seq.at(m), o.first_completed_seq.at(r)) << label;
    }
  }
}

void RunRandomKillScenario(int runs, int max_kills, uint64_t seed) {
  std::string label = "random kills seed " + std::to_string(seed);
  std::mt19937_64 rng(seed);
  CrashHarness h;
  Started s = StartMix(h, runs, runs / 4 + 1);
  int kills = 0;
  for (int round = 0; round < max_kills + 50; ++round) {
    auto w = h.SpawnWorker({}, {"--batch", "4"});
    int64_t ms = 5 + static_cast<int64_t>(rng() % 120);
    auto code = w->Wait(ms);
    if (code) {
      ASSERT_EQ(*code, 0) << label << ": " << keel::testing::ReadFileOrDie(h.log_file());
      // The worker finished on its own: was anything left? (a timer, a retry)
      if (kills >= max_kills) break;
      Observed o = h.Observe();
      bool busy = false;
      for (const auto& r : o.runs) busy = busy || r.value("status", "") == "running";
      if (!busy) break;
      continue;
    }
    if (kills >= max_kills) {
      ASSERT_TRUE(w->Wait(120000).has_value()) << label;
      continue;
    }
    w->Kill();
    ++kills;
  }
  EXPECT_TRUE(h.Settle()) << label;
  h.CheckInvariants(h.Observe(), label + " after " + std::to_string(kills) + " kills");
  auto abandoned = ResolveAsOperator(h, label);
  CheckFinal(h, s, label, abandoned);
}

void RunInFlightKillScenario(int pipelines, uint64_t seed) {
  std::string label = "in-flight kills seed " + std::to_string(seed);
  std::mt19937_64 rng(seed);
  CrashHarness h;
  Started s = StartMix(h, pipelines, 2);
  int most_in_flight = 0, kills = 0;
  for (int round = 0; round < 12; ++round) {
    // Every fake effect takes 300 ms, so a round's charges and sends overlap on the
    // executor; the kill lands 150..650 ms after the start.
    auto w = h.SpawnWorker({{"KEEL_FAKE_DELAY_MS", "300"}}, {});
    auto code = w->Wait(150 + static_cast<int64_t>(rng() % 500));
    if (code) {
      ASSERT_EQ(*code, 0) << label << ": " << keel::testing::ReadFileOrDie(h.log_file());
      break;
    }
    w->Kill();
    ++kills;
    Observed o = h.Observe();
    int sending = 0;
    for (const auto& [token, state] : o.outbox_state) sending += state == "sending";
    most_in_flight = std::max(most_in_flight, sending);
    h.CheckInvariants(o, label + " after kill " + std::to_string(kills), false);
    if (kills >= 4) break;
  }
  EXPECT_GE(most_in_flight, 2) << label << ": no kill caught several effects in flight";
  EXPECT_TRUE(h.Settle()) << label;
  h.CheckInvariants(h.Observe(), label + " after " + std::to_string(kills) + " kills");
  auto abandoned = ResolveAsOperator(h, label);
  CheckFinal(h, s, label, abandoned);
}

}  // namespace keel::flow::testing
