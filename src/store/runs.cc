#include "store/runs.h"

#include <algorithm>
#include <mutex>
#include <string>
#include <unordered_map>

#include "store/sqlite/sql.h"

namespace keel::store {
namespace {

using Lock = std::lock_guard<std::recursive_mutex>;

constexpr char kRunCols[] =
    "id, workflow, version, status, wait_kind, due_us, mono_due_us, epoch, wait_type, wait_key, "
    "state, input, output, error, parent_run, parent_step, lease_owner, lease_until_us, "
    "created_us, updated_us";

RunRow ReadRun(const sql::Stmt& s) {
  RunRow r;
  r.id = s.Text(0);
  r.workflow = s.Text(1);
  r.version = s.Text(2);
  r.status = s.Text(3);
  r.wait_kind = s.Text(4);
  r.due_us = s.Int(5);
  r.mono_due_us = s.Int(6);
  r.epoch = s.Text(7);
  r.wait_type = s.Text(8);
  r.wait_key = s.Text(9);
  r.state = s.Text(10);
  r.input = s.Text(11);
  r.output = s.Text(12);
  r.error = s.Text(13);
  r.parent_run = s.Text(14);
  r.parent_step = s.Text(15);
  r.lease_owner = s.Text(16);
  r.lease_until_us = s.Int(17);
  r.created_us = s.Int(18);
  r.updated_us = s.Int(19);
  return r;
}

JournalRow ReadJournal(const sql::Stmt& s) {
  JournalRow j;
  j.run_id = s.Text(0);
  j.step_key = s.Text(1);
  j.step_id = s.Text(2);
  j.kind = s.Text(3);
  j.status = s.Text(4);
  j.attempts = s.Int(5);
  j.output = s.Text(6);
  j.error = s.Text(7);
  j.finished_us = s.Int(8);
  j.seq = s.Int(9);
  return j;
}
constexpr char kJournalCols[] =
    "run_id, step_key, step_id, kind, status, attempts, output, error, finished_us, seq";

OutboxRow ReadOutbox(const sql::Stmt& s) {
  OutboxRow o;
  o.token = s.Text(0);
  o.run_id = s.Text(1);
  o.step_key = s.Text(2);
  o.adapter = s.Text(3);
  o.action = s.Text(4);
  o.params = s.Text(5);
  o.state = s.Text(6);
  o.attempts = s.Int(7);
  o.result = s.Text(8);
  o.error = s.Text(9);
  o.honours_key = s.Int(10) != 0;
  o.created_us = s.Int(11);
  o.updated_us = s.Int(12);
  return o;
}
constexpr char kOutboxCols[] =
    "token, run_id, step_key, adapter, action, params, state, attempts, result, error, "
    "honours_key, created_us, updated_us";

ApprovalRow ReadApproval(const sql::Stmt& s) {
  ApprovalRow a;
  a.id = s.Text(0);
  a.run_id = s.Text(1);
  a.step_key = s.Text(2);
  a.kind = s.Text(3);
  a.status = s.Text(4);
  a.summary = s.Text(5);
  a.recommend = s.Text(6);
  a.context = s.Text(7);
  a.decision = s.Text(8);
  a.deadline_us = s.Int(9);
  a.remind_us = s.Int(10);
  a.reminded = s.Int(11) != 0;
  a.created_us = s.Int(12);
  a.decided_us = s.Int(13);
  return a;
}
constexpr char kApprovalCols[] =
    "id, run_id, step_key, kind, status, summary, recommend, context, decision, deadline_us, "
    "remind_us, reminded, created_us, decided_us";

std::string Q(const char* head, const char* cols, const char* tail) {
  return std::string(head) + cols + tail;
}

}  // namespace

Status PutWorkflowVersion(Txn& txn, const std::string& hash, const std::string& name,
                          const std::string& path, const std::string& content) {
  KEEL_ASSIGN_OR_RETURN(
      auto* st, txn.db()->Cached("INSERT INTO workflow_versions(hash, name, path, content, "
                                 "created_us) VALUES (?,?,?,?,?) ON CONFLICT(hash) DO NOTHING"));
  st->Bind(1, hash).Bind(2, name).Bind(3, path).Bind(4, content).Bind(5, txn.now_us());
  Status s = st->Run();
  st->Reset();
  return s;
}

Result<std::string> GetWorkflowVersion(Workspace& ws, const std::string& hash) {
  Reader rd(ws);
  KEEL_ASSIGN_OR_RETURN(auto* st,
                        rd.db()->Cached("SELECT content FROM workflow_versions WHERE hash = ?"));
  st->Bind(1, hash);
  KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
  if (!row) {
    st->Reset();
    return NotFound("workflow version " + hash + " is not stored");
  }
  std::string c = st->Text(0);
  st->Reset();
  return c;
}

Result<bool> HasWorkflowNamed(Workspace& ws, const std::string& name) {
  Reader rd(ws);
  KEEL_ASSIGN_OR_RETURN(
      auto* st, rd.db()->Cached("SELECT EXISTS(SELECT 1 FROM workflow_versions WHERE name = ?)"));
  st->Bind(1, name);
  KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
  bool found = row && st->Int(0) != 0;
  st->Reset();
  return found;
}

Status InsertRun(Txn& txn, const RunRow& r) {
  static const std::string q =
      Q("INSERT INTO runs(", kRunCols, ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  KEEL_ASSIGN_OR_RETURN(auto* st, txn.db()->Cached(q.c_str()));
  st->Bind(1, r.id).Bind(2, r.workflow).Bind(3, r.version).Bind(4, r.status).Bind(5, r.wait_kind);
  st->Bind(6, r.due_us).Bind(7, r.mono_due_us).Bind(8, r.epoch).Bind(9, r.wait_type);
  st->Bind(10, r.wait_key).Bind(11, r.state).Bind(12, r.input).Bind(13, r.output);
  st->Bind(14, r.error).Bind(15, r.parent_run).Bind(16, r.parent_step).Bind(17, r.lease_owner);
  st->Bind(18, r.lease_until_us).Bind(19, txn.now_us()).Bind(20, txn.now_us());
  Status s = st->Run();
  st->Reset();
  return s;
}

namespace {
// The mutable columns of runs, in UPDATE order; bit i of a mask names kUpdateCols[i].
constexpr const char* kUpdateCols[] = {"status", "wait_kind", "due_us",      "mono_due_us",
                                       "epoch",  "wait_type", "wait_key",    "state",
                                       "output", "error",     "lease_owner", "lease_until_us"};
constexpr int kNumUpdateCols = 12;
constexpr uint32_t kAllUpdateCols = (1u << kNumUpdateCols) - 1;

uint32_t ChangedCols(const RunRow& a, const RunRow& b) {
  uint32_t m = 0;
  if (a.status != b.status) m |= 1u << 0;
  if (a.wait_kind != b.wait_kind) m |= 1u << 1;
  if (a.due_us != b.due_us) m |= 1u << 2;
  if (a.mono_due_us != b.mono_due_us) m |= 1u << 3;
  if (a.epoch != b.epoch) m |= 1u << 4;
  if (a.wait_type != b.wait_type) m |= 1u << 5;
  if (a.wait_key != b.wait_key) m |= 1u << 6;
  if (a.state != b.state) m |= 1u << 7;
  if (a.output != b.output) m |= 1u << 8;
  if (a.error != b.error) m |= 1u << 9;
  if (a.lease_owner != b.lease_owner) m |= 1u << 10;
  if (a.lease_until_us != b.lease_until_us) m |= 1u << 11;
  return m;
}

// The UPDATE text for a mask. The strings live for the whole process (Db::Cached keys its
// statements by the text's address); there are at most 4,096 of them, in practice a few.
const char* UpdateSql(uint32_t mask) {
  static std::mutex mu;
  static std::unordered_map<uint32_t, std::string> texts;
  std::lock_guard<std::mutex> l(mu);
  auto [it, added] = texts.try_emplace(mask);
  if (added) {
    std::string& q = it->second;
    q = "UPDATE runs SET ";
    for (int i = 0; i < kNumUpdateCols; ++i) {
      if (mask & (1u << i)) (q += kUpdateCols[i]) += "=?, ";
    }
    q += "updated_us=? WHERE id=?";
  }
  return it->second.c_str();
}
}  // namespace

Status UpdateRun(Txn& txn, const RunRow& r, const RunRow* before) {
  uint32_t mask = before != nullptr ? ChangedCols(r, *before) : kAllUpdateCols;
  KEEL_ASSIGN_OR_RETURN(auto* st, txn.db()->Cached(UpdateSql(mask)));
  int i = 1;
  if (mask & (1u << 0)) st->Bind(i++, r.status);
  if (mask & (1u << 1)) st->Bind(i++, r.wait_kind);
  if (mask & (1u << 2)) st->Bind(i++, r.due_us);
  if (mask & (1u << 3)) st->Bind(i++, r.mono_due_us);
  if (mask & (1u << 4)) st->Bind(i++, r.epoch);
  if (mask & (1u << 5)) st->Bind(i++, r.wait_type);
  if (mask & (1u << 6)) st->Bind(i++, r.wait_key);
  if (mask & (1u << 7)) st->Bind(i++, r.state);
  if (mask & (1u << 8)) st->Bind(i++, r.output);
  if (mask & (1u << 9)) st->Bind(i++, r.error);
  if (mask & (1u << 10)) st->Bind(i++, r.lease_owner);
  if (mask & (1u << 11)) st->Bind(i++, r.lease_until_us);
  st->Bind(i++, txn.now_us());
  st->Bind(i++, r.id);
  Status s = st->Run();
  int64_t changed = st->changes();
  st->Reset();
  KEEL_RETURN_IF_ERROR(s);
  if (changed != 1) return NotFound("run " + r.id + " not found");
  return OkStatus();
}

Result<std::optional<RunRow>> GetRun(Workspace& ws, const std::string& id) {
  Reader rd(ws);
  static const std::string q = Q("SELECT ", kRunCols, " FROM runs WHERE id = ?");
  KEEL_ASSIGN_OR_RETURN(auto* st, rd.db()->Cached(q.c_str()));
  st->Bind(1, id);
  KEEL_ASSIGN_OR_RETURN(auto rows, sql::CollectRows<RunRow>(st, ReadRun));
  if (rows.empty()) return std::optional<RunRow>();
  return std::optional<RunRow>(std::move(rows[0]));
}

Result<std::vector<std::string>> DueRuns(Workspace& ws, int64_t bound_us, int64_t now_us,
                                         const std::string& owner, int limit) {
  Reader rd(ws);
  KEEL_ASSIGN_OR_RETURN(auto* st, rd.db()->Cached("SELECT id FROM runs WHERE due_us <= ? AND "
                                                  "(lease_until_us <= ? OR lease_owner = ?) "
                                                  "ORDER BY due_us LIMIT ?"));
  st->Bind(1, bound_us).Bind(2, now_us).Bind(3, owner).Bind(4, limit);
  return sql::CollectRows<std::string>(st, [](const sql::Stmt& s) { return s.Text(0); });
}

Result<int64_t> NextDueUs(Workspace& ws) {
  Reader rd(ws);
  KEEL_ASSIGN_OR_RETURN(auto* st, rd.db()->Cached("SELECT min(due_us) FROM runs"));
  KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
  int64_t v = row && !st->IsNull(0) ? st->Int(0) : kNeverUs;
  st->Reset();
  return v;
}

Result<std::vector<RunRow>> ListRuns(Workspace& ws, const std::string& status, int limit,
                                     const RunListCursor& before) {
  Reader rd(ws);
  // Row values: the page continues strictly after the cursor in (created_us, id) order,
  // so runs created in the same microsecond are neither skipped nor repeated.
  static const std::string q =
      Q("SELECT ", kRunCols,
        " FROM runs WHERE (?1 = '' OR status = ?1) AND (created_us, id) < (?3, ?4) "
        "ORDER BY created_us DESC, id DESC LIMIT ?2");
  KEEL_ASSIGN_OR_RETURN(auto* st, rd.db()->Cached(q.c_str()));
  st->Bind(1, status).Bind(2, limit).Bind(3, before.created_us).Bind(4, before.id);
  return sql::CollectRows<RunRow>(st, ReadRun);
}

Result<std::vector<std::string>> RunsWaitingForEvent(Workspace& ws, const std::string& type,
                                                     const std::string& key) {
  Reader rd(ws);
  KEEL_ASSIGN_OR_RETURN(auto* st, rd.db()->Cached("SELECT id FROM runs WHERE wait_type = ? AND "
                                                  "wait_key = ? AND status = 'waiting' "
                                                  "ORDER BY created_us"));
  st->Bind(1, type).Bind(2, key);
  return sql::CollectRows<std::string>(st, [](const sql::Stmt& s) { return s.Text(0); });
}

Result<std::vector<std::string>> RunsWithWaitKind(Workspace& ws, const std::string& wait_kind) {
  Reader rd(ws);
  KEEL_ASSIGN_OR_RETURN(auto* st, rd.db()->Cached("SELECT id FROM runs WHERE status = 'waiting' "
                                                  "AND wait_kind = ? ORDER BY created_us"));
  st->Bind(1, wait_kind);
  return sql::CollectRows<std::string>(st, [](const sql::Stmt& s) { return s.Text(0); });
}

Result<bool> ClaimLease(Txn& txn, const std::string& run_id, const std::string& owner,
                        int64_t now_us, int64_t until_us) {
  KEEL_ASSIGN_OR_RETURN(
      auto* st, txn.db()->Cached("UPDATE runs SET lease_owner = ?, lease_until_us = ? "
                                 "WHERE id = ? AND (lease_until_us <= ? OR lease_owner = ?)"));
  st->Bind(1, owner).Bind(2, until_us).Bind(3, run_id).Bind(4, now_us).Bind(5, owner);
  Status s = st->Run();
  int64_t changed = st->changes();
  st->Reset();
  KEEL_RETURN_IF_ERROR(s);
  return changed == 1;
}

Result<std::vector<std::pair<std::string, int64_t>>> CountRuns(Workspace& ws) {
  Reader rd(ws);
  KEEL_ASSIGN_OR_RETURN(auto* st,
                        rd.db()->Cached("SELECT status, count(*) FROM runs GROUP BY status"));
  return sql::CollectRows<std::pair<std::string, int64_t>>(
      st, [](const sql::Stmt& s) { return std::make_pair(s.Text(0), s.Int(1)); });
}

Result<std::vector<DueGroup>> FutureDueGroups(Workspace& ws, int64_t now_us) {
  Reader rd(ws);
  KEEL_ASSIGN_OR_RETURN(
      auto* st, rd.db()->Cached("SELECT status, wait_kind, count(*), min(due_us) FROM runs "
                                "WHERE due_us > ?1 AND due_us < ?2 GROUP BY status, wait_kind"));
  st->Bind(1, now_us).Bind(2, kNeverUs);
  KEEL_ASSIGN_OR_RETURN(auto groups, sql::CollectRows<DueGroup>(st, [](const sql::Stmt& s) {
                          DueGroup g;
                          g.status = s.Text(0);
                          g.wait_kind = s.Text(1);
                          g.count = s.Int(2);
                          g.earliest_us = s.Int(3);
                          return g;
                        }));
  // One index seek per group (there are a handful) names the run that comes first.
  KEEL_ASSIGN_OR_RETURN(auto* first,
                        rd.db()->Cached("SELECT id FROM runs WHERE due_us = ?1 AND status = ?2 AND "
                                        "wait_kind = ?3 ORDER BY id LIMIT 1"));
  for (auto& g : groups) {
    first->Bind(1, g.earliest_us).Bind(2, g.status).Bind(3, g.wait_kind);
    KEEL_ASSIGN_OR_RETURN(
        auto id, sql::FirstRow<std::string>(first, [](const sql::Stmt& s) { return s.Text(0); }));
    g.earliest_run = id.value_or("");
  }
  std::sort(groups.begin(), groups.end(), [](const DueGroup& a, const DueGroup& b) {
    return a.earliest_us != b.earliest_us ? a.earliest_us < b.earliest_us
                                          : a.earliest_run < b.earliest_run;
  });
  return groups;
}

Result<DueNow> CountDueNow(Workspace& ws, int64_t now_us) {
  Reader rd(ws);
  KEEL_ASSIGN_OR_RETURN(
      auto* st,
      rd.db()->Cached("SELECT count(*), "
                      "coalesce(sum(CASE WHEN lease_until_us > ?1 THEN 1 ELSE 0 END), 0), "
                      "min(CASE WHEN lease_until_us > ?1 THEN lease_until_us END) "
                      "FROM runs WHERE due_us <= ?1"));
  st->Bind(1, now_us);
  KEEL_ASSIGN_OR_RETURN(auto row, sql::FirstRow<DueNow>(st, [](const sql::Stmt& s) {
                          DueNow d;
                          d.leased = s.Int(1);
                          d.free = s.Int(0) - d.leased;
                          if (!s.IsNull(2)) d.first_lease_end_us = s.Int(2);
                          return d;
                        }));
  DueNow d = row.value_or(DueNow());
  if (d.leased == 0) return d;
  KEEL_ASSIGN_OR_RETURN(auto* first, rd.db()->Cached("SELECT id FROM runs WHERE due_us <= ?1 AND "
                                                     "lease_until_us = ?2 ORDER BY id LIMIT 1"));
  first->Bind(1, now_us).Bind(2, d.first_lease_end_us);
  KEEL_ASSIGN_OR_RETURN(
      auto id, sql::FirstRow<std::string>(first, [](const sql::Stmt& s) { return s.Text(0); }));
  d.first_leased_run = id.value_or("");
  return d;
}

Status PutJournal(Txn& txn, const JournalRow& j) {
  static const std::string q =
      Q("INSERT INTO steps(", kJournalCols,
        ") VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(run_id, step_key) DO UPDATE SET "
        "step_id = excluded.step_id, kind = excluded.kind, status = excluded.status, "
        "attempts = excluded.attempts, output = excluded.output, error = excluded.error, "
        "finished_us = excluded.finished_us, seq = excluded.seq");
  KEEL_ASSIGN_OR_RETURN(auto* st, txn.db()->Cached(q.c_str()));
  st->Bind(1, j.run_id).Bind(2, j.step_key).Bind(3, j.step_id).Bind(4, j.kind).Bind(5, j.status);
  st->Bind(6, j.attempts).Bind(7, j.output).Bind(8, j.error).Bind(9, j.finished_us);
  st->Bind(10, j.seq);
  Status s = st->Run();
  st->Reset();
  return s;
}

Result<std::optional<JournalRow>> GetJournal(Workspace& ws, const std::string& run_id,
                                             const std::string& step_key) {
  Reader rd(ws);
  static const std::string q =
      Q("SELECT ", kJournalCols, " FROM steps WHERE run_id = ? AND step_key = ?");
  KEEL_ASSIGN_OR_RETURN(auto* st, rd.db()->Cached(q.c_str()));
  st->Bind(1, run_id).Bind(2, step_key);
  KEEL_ASSIGN_OR_RETURN(auto rows, sql::CollectRows<JournalRow>(st, ReadJournal));
  if (rows.empty()) return std::optional<JournalRow>();
  return std::optional<JournalRow>(std::move(rows[0]));
}

Result<std::vector<JournalRow>> ListJournal(Workspace& ws, const std::string& run_id) {
  Reader rd(ws);
  static const std::string q =
      Q("SELECT ", kJournalCols, " FROM steps WHERE run_id = ? ORDER BY seq, step_key");
  KEEL_ASSIGN_OR_RETURN(auto* st, rd.db()->Cached(q.c_str()));
  st->Bind(1, run_id);
  return sql::CollectRows<JournalRow>(st, ReadJournal);
}

Status InsertOutbox(Txn& txn, const OutboxRow& o) {
  static const std::string q =
      Q("INSERT INTO outbox(", kOutboxCols, ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)");
  KEEL_ASSIGN_OR_RETURN(auto* st, txn.db()->Cached(q.c_str()));
  st->Bind(1, o.token).Bind(2, o.run_id).Bind(3, o.step_key).Bind(4, o.adapter);
  st->Bind(5, o.action).Bind(6, o.params).Bind(7, o.state).Bind(8, o.attempts);
  st->Bind(9, o.result).Bind(10, o.error).Bind(11, o.honours_key ? 1 : 0);
  st->Bind(12, txn.now_us()).Bind(13, txn.now_us());
  Status s = st->Run();
  st->Reset();
  return s;
}

Status UpdateOutbox(Txn& txn, const OutboxRow& o) {
  KEEL_ASSIGN_OR_RETURN(
      auto* st, txn.db()->Cached("UPDATE outbox SET state=?, attempts=?, result=?, error=?, "
                                 "updated_us=? WHERE token=?"));
  st->Bind(1, o.state).Bind(2, o.attempts).Bind(3, o.result).Bind(4, o.error);
  st->Bind(5, txn.now_us()).Bind(6, o.token);
  Status s = st->Run();
  st->Reset();
  return s;
}

Result<std::optional<OutboxRow>> GetOutbox(Workspace& ws, const std::string& token) {
  Reader rd(ws);
  static const std::string q = Q("SELECT ", kOutboxCols, " FROM outbox WHERE token = ?");
  KEEL_ASSIGN_OR_RETURN(auto* st, rd.db()->Cached(q.c_str()));
  st->Bind(1, token);
  KEEL_ASSIGN_OR_RETURN(auto rows, sql::CollectRows<OutboxRow>(st, ReadOutbox));
  if (rows.empty()) return std::optional<OutboxRow>();
  return std::optional<OutboxRow>(std::move(rows[0]));
}

Result<std::vector<OutboxRow>> ListOutbox(Workspace& ws, const std::string& run_id,
                                          const std::string& state) {
  Reader rd(ws);
  static const std::string q = Q("SELECT ", kOutboxCols,
                                 " FROM outbox WHERE (?1 = '' OR run_id = ?1) AND "
                                 "(?2 = '' OR state = ?2) ORDER BY created_us, token");
  KEEL_ASSIGN_OR_RETURN(auto* st, rd.db()->Cached(q.c_str()));
  st->Bind(1, run_id).Bind(2, state);
  return sql::CollectRows<OutboxRow>(st, ReadOutbox);
}

Status InsertApproval(Txn& txn, const ApprovalRow& a) {
  static const std::string q =
      Q("INSERT INTO approvals(", kApprovalCols, ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  KEEL_ASSIGN_OR_RETURN(auto* st, txn.db()->Cached(q.c_str()));
  st->Bind(1, a.id).Bind(2, a.run_id).Bind(3, a.step_key).Bind(4, a.kind).Bind(5, a.status);
  st->Bind(6, a.summary).Bind(7, a.recommend).Bind(8, a.context).Bind(9, a.decision);
  st->Bind(10, a.deadline_us).Bind(11, a.remind_us).Bind(12, a.reminded ? 1 : 0);
  st->Bind(13, txn.now_us()).Bind(14, a.decided_us);
  Status s = st->Run();
  st->Reset();
  return s;
}

Status UpdateApproval(Txn& txn, const ApprovalRow& a) {
  KEEL_ASSIGN_OR_RETURN(auto* st,
                        txn.db()->Cached("UPDATE approvals SET status=?, decision=?, reminded=?, "
                                         "decided_us=?, context=? WHERE id=?"));
  st->Bind(1, a.status).Bind(2, a.decision).Bind(3, a.reminded ? 1 : 0).Bind(4, a.decided_us);
  st->Bind(5, a.context).Bind(6, a.id);
  Status s = st->Run();
  st->Reset();
  return s;
}

Result<std::optional<ApprovalRow>> GetApproval(Workspace& ws, const std::string& id) {
  Reader rd(ws);
  static const std::string q = Q("SELECT ", kApprovalCols, " FROM approvals WHERE id = ?");
  KEEL_ASSIGN_OR_RETURN(auto* st, rd.db()->Cached(q.c_str()));
  st->Bind(1, id);
  KEEL_ASSIGN_OR_RETURN(auto rows, sql::CollectRows<ApprovalRow>(st, ReadApproval));
  if (rows.empty()) return std::optional<ApprovalRow>();
  return std::optional<ApprovalRow>(std::move(rows[0]));
}

Result<std::optional<ApprovalRow>> FindApproval(Workspace& ws, const std::string& run_id,
                                                const std::string& step_key,
                                                const std::string& kind) {
  Reader rd(ws);
  static const std::string q =
      Q("SELECT ", kApprovalCols, " FROM approvals WHERE run_id = ? AND step_key = ? AND kind = ?");
  KEEL_ASSIGN_OR_RETURN(auto* st, rd.db()->Cached(q.c_str()));
  st->Bind(1, run_id).Bind(2, step_key).Bind(3, kind);
  KEEL_ASSIGN_OR_RETURN(auto rows, sql::CollectRows<ApprovalRow>(st, ReadApproval));
  if (rows.empty()) return std::optional<ApprovalRow>();
  return std::optional<ApprovalRow>(std::move(rows[0]));
}

Result<std::vector<ApprovalRow>> ListApprovals(Workspace& ws, const std::string& status,
                                               const std::string& run_id) {
  Reader rd(ws);
  static const std::string q = Q("SELECT ", kApprovalCols,
                                 " FROM approvals WHERE (?1 = '' OR status = ?1) AND "
                                 "(?2 = '' OR run_id = ?2) ORDER BY created_us, id");
  KEEL_ASSIGN_OR_RETURN(auto* st, rd.db()->Cached(q.c_str()));
  st->Bind(1, status).Bind(2, run_id);
  return sql::CollectRows<ApprovalRow>(st, ReadApproval);
}

Result<bool> InsertEvent(Txn& txn, const std::string& id, const std::string& type,
                         const std::string& key, const std::string& data, int64_t delivered) {
  KEEL_ASSIGN_OR_RETURN(auto* st,
                        txn.db()->Cached("INSERT INTO events(id, type, key, data, received_us, "
                                         "delivered) VALUES (?,?,?,?,?,?) "
                                         "ON CONFLICT(id) DO NOTHING"));
  st->Bind(1, id).Bind(2, type).Bind(3, key).Bind(4, data).Bind(5, txn.now_us()).Bind(6, delivered);
  Status s = st->Run();
  int64_t changed = st->changes();
  st->Reset();
  KEEL_RETURN_IF_ERROR(s);
  return changed == 1;
}

Status SetPause(Txn& txn, const std::string& scope, const std::string& name, bool paused) {
  const char* q = paused ? "INSERT INTO pauses(scope, name, since_us) VALUES (?,?,?) "
                           "ON CONFLICT(scope, name) DO NOTHING"
                         : "DELETE FROM pauses WHERE scope = ? AND name = ?";
  KEEL_ASSIGN_OR_RETURN(auto* st, txn.db()->Cached(q));
  st->Bind(1, scope).Bind(2, name);
  if (paused) st->Bind(3, txn.now_us());
  Status s = st->Run();
  st->Reset();
  return s;
}

Result<std::vector<std::pair<std::string, std::string>>> ListPauses(Workspace& ws) {
  Reader rd(ws);
  KEEL_ASSIGN_OR_RETURN(auto* st,
                        rd.db()->Cached("SELECT scope, name FROM pauses ORDER BY scope, name"));
  return sql::CollectRows<std::pair<std::string, std::string>>(
      st, [](const sql::Stmt& s) { return std::make_pair(s.Text(0), s.Text(1)); });
}

Status UpsertSchedule(Txn& txn, const ScheduleRow& s) {
  KEEL_ASSIGN_OR_RETURN(
      auto* st, txn.db()->Cached("INSERT INTO schedules(workflow, path, cron, tz, next_us, "
                                 "last_us) VALUES (?,?,?,?,?,?) ON CONFLICT(workflow) DO UPDATE "
                                 "SET path = excluded.path, cron = excluded.cron, "
                                 "tz = excluded.tz, next_us = excluded.next_us, "
                                 "last_us = excluded.last_us"));
  st->Bind(1, s.workflow).Bind(2, s.path).Bind(3, s.cron).Bind(4, s.tz).Bind(5, s.next_us);
  st->Bind(6, s.last_us);
  Status r = st->Run();
  st->Reset();
  return r;
}

Result<std::vector<ScheduleRow>> ListSchedules(Workspace& ws) {
  Reader rd(ws);
  KEEL_ASSIGN_OR_RETURN(auto* st, rd.db()->Cached("SELECT workflow, path, cron, tz, next_us, "
                                                  "last_us FROM schedules ORDER BY workflow"));
  return sql::CollectRows<ScheduleRow>(st, [](const sql::Stmt& s) {
    ScheduleRow r;
    r.workflow = s.Text(0);
    r.path = s.Text(1);
    r.cron = s.Text(2);
    r.tz = s.Text(3);
    r.next_us = s.Int(4);
    r.last_us = s.Int(5);
    return r;
  });
}

Result<std::vector<std::string>> IdsWithPrefix(Workspace& ws, IdTable table,
                                               const std::string& prefix, int limit) {
  Reader rd(ws);
  // A range over the primary key: [prefix, prefix + U+10FFFF) holds exactly the ids that
  // start with `prefix` (ids are ASCII), so the lookup is an index seek, not a scan.
  const char* q = table == IdTable::kRuns
                      ? "SELECT id FROM runs WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT ?3"
                      : "SELECT id FROM approvals WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT ?3";
  KEEL_ASSIGN_OR_RETURN(auto* st, rd.db()->Cached(q));
  st->Bind(1, prefix).Bind(2, prefix + "\xf4\x8f\xbf\xbf").Bind(3, limit);
  return sql::CollectRows<std::string>(st, [](const sql::Stmt& s) { return s.Text(0); });
}

}  // namespace keel::store
