#include "store/run_events.h"

#include <mutex>

#include "store/sqlite/sql.h"

namespace keel::store {
namespace {

using Lock = std::lock_guard<std::recursive_mutex>;

}  // namespace

Result<std::optional<EventRow>> NextEventForRun(Workspace& ws, const std::string& type,
                                                const std::string& key, const std::string& run_id,
                                                int64_t since_us) {
  Reader rd(ws);
  KEEL_ASSIGN_OR_RETURN(
      auto* st, rd.db()->Cached("SELECT id, type, key, data, received_us FROM events e "
                                "WHERE type = ?1 AND key = ?2 AND received_us >= ?3 AND NOT EXISTS "
                                "(SELECT 1 FROM event_deliveries d WHERE d.event_id = e.id AND "
                                "d.run_id = ?4) ORDER BY received_us, id LIMIT 1"));
  st->Bind(1, type).Bind(2, key).Bind(3, since_us).Bind(4, run_id);
  return sql::FirstRow<EventRow>(st, [](const sql::Stmt& s) {
    EventRow e;
    e.id = s.Text(0);
    e.type = s.Text(1);
    e.key = s.Text(2);
    e.data = s.Text(3);
    e.received_us = s.Int(4);
    return e;
  });
}

Status RecordEventDelivery(Txn& txn, const std::string& event_id, const std::string& run_id,
                           const std::string& step_key) {
  KEEL_ASSIGN_OR_RETURN(auto* st, txn.db()->Cached("INSERT INTO event_deliveries(event_id, run_id, "
                                                   "step_key, delivered_us) VALUES (?,?,?,?)"));
  st->Bind(1, event_id).Bind(2, run_id).Bind(3, step_key).Bind(4, txn.now_us());
  Status s = st->Run();
  st->Reset();
  return s;
}

Result<std::optional<int64_t>> OldestEventUs(Workspace& ws) {
  Reader rd(ws);
  KEEL_ASSIGN_OR_RETURN(auto* st, rd.db()->Cached("SELECT min(received_us) FROM events"));
  KEEL_ASSIGN_OR_RETURN(auto v, sql::FirstRow<std::optional<int64_t>>(st, [](const sql::Stmt& s) {
                          return s.IsNull(0) ? std::nullopt : std::optional<int64_t>(s.Int(0));
                        }));
  return v ? *v : std::nullopt;
}

Result<int64_t> PurgeEventsBefore(Txn& txn, int64_t before_us) {
  KEEL_ASSIGN_OR_RETURN(auto* del,
                        txn.db()->Cached("DELETE FROM event_deliveries WHERE event_id IN "
                                         "(SELECT id FROM events WHERE received_us < ?)"));
  del->Bind(1, before_us);
  Status s = del->Run();
  del->Reset();
  KEEL_RETURN_IF_ERROR(s);
  KEEL_ASSIGN_OR_RETURN(auto* ev, txn.db()->Cached("DELETE FROM events WHERE received_us < ?"));
  ev->Bind(1, before_us);
  s = ev->Run();
  int64_t purged = ev->changes();
  ev->Reset();
  KEEL_RETURN_IF_ERROR(s);
  return purged;
}

Result<std::vector<std::string>> ActiveChildRuns(Workspace& ws, const std::string& parent_run) {
  Reader rd(ws);
  KEEL_ASSIGN_OR_RETURN(auto* st,
                        rd.db()->Cached("SELECT id FROM runs WHERE parent_run = ? AND status IN "
                                        "('running','waiting') ORDER BY created_us, id"));
  st->Bind(1, parent_run);
  return sql::CollectRows<std::string>(st, [](const sql::Stmt& s) { return s.Text(0); });
}

}  // namespace keel::store
