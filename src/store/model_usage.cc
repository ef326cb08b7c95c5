#include "store/model_usage.h"

#include <algorithm>

#include "store/sqlite/sql.h"

namespace keel::store {

Status InsertModelCall(Txn& txn, const ModelCall& c) {
  if (c.id.empty() || c.provider.empty() || c.prompt_hash.empty()) {
    return InvalidArgument("a model call needs an id, a provider and a prompt hash");
  }
  if (c.input_tokens < 0 || c.output_tokens < 0 || c.cost_nanousd < 0) {
    return InvalidArgument("model call " + c.id + ": negative tokens or cost");
  }
  KEEL_ASSIGN_OR_RETURN(
      auto* st,
      txn.db()->Cached("INSERT INTO model_calls(id, time_us, run_id, step_id, agent, record_id, "
                       "provider, model, operation, input_tokens, output_tokens, cost_nanousd, "
                       "cached, finish_reason, prompt_hash, prompt_artifact, response_artifact, "
                       "ledger_seq) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"));
  st->Bind(1, c.id)
      .Bind(2, txn.now_us())
      .Bind(3, c.run_id)
      .Bind(4, c.step_id)
      .Bind(5, c.agent)
      .Bind(6, c.record_id)
      .Bind(7, c.provider)
      .Bind(8, c.model)
      .Bind(9, c.operation)
      .Bind(10, c.input_tokens)
      .Bind(11, c.output_tokens)
      .Bind(12, c.cost_nanousd)
      .Bind(13, int64_t{c.cached ? 1 : 0})
      .Bind(14, c.finish_reason)
      .Bind(15, c.prompt_hash)
      .Bind(16, c.prompt_artifact)
      .Bind(17, c.response_artifact)
      .Bind(18, c.ledger_seq);
  Status s = st->Run();
  st->Reset();
  return s;
}

Result<std::optional<CachedResponse>> LookupResponseCache(Workspace& ws,
                                                          const std::string& prompt_hash) {
  Reader rd(ws);
  KEEL_ASSIGN_OR_RETURN(auto* st,
                        rd.db()->Cached("SELECT response_artifact, provider, model, input_tokens, "
                                        "output_tokens, created_us, hits FROM model_response_cache "
                                        "WHERE prompt_hash = ?"));
  st->Bind(1, prompt_hash);
  return sql::FirstRow<CachedResponse>(st, [&](const sql::Stmt& s) {
    CachedResponse c;
    c.prompt_hash = prompt_hash;
    c.response_artifact = s.Text(0);
    c.provider = s.Text(1);
    c.model = s.Text(2);
    c.input_tokens = s.Int(3);
    c.output_tokens = s.Int(4);
    c.created_us = s.Int(5);
    c.hits = s.Int(6);
    return c;
  });
}

Status PutResponseCache(Txn& txn, const CachedResponse& e) {
  KEEL_ASSIGN_OR_RETURN(
      auto* st, txn.db()->Cached("INSERT INTO model_response_cache(prompt_hash, response_artifact, "
                                 "provider, model, input_tokens, output_tokens, created_us) "
                                 "VALUES (?,?,?,?,?,?,?) ON CONFLICT(prompt_hash) DO NOTHING"));
  st->Bind(1, e.prompt_hash)
      .Bind(2, e.response_artifact)
      .Bind(3, e.provider)
      .Bind(4, e.model)
      .Bind(5, e.input_tokens)
      .Bind(6, e.output_tokens)
      .Bind(7, txn.now_us());
  Status s = st->Run();
  st->Reset();
  return s;
}

Status CountCacheHit(Txn& txn, const std::string& prompt_hash) {
  KEEL_ASSIGN_OR_RETURN(auto* st, txn.db()->Cached("UPDATE model_response_cache SET hits = hits "
                                                   "+ 1 WHERE prompt_hash = ?"));
  st->Bind(1, prompt_hash);
  Status s = st->Run();
  st->Reset();
  return s;
}

namespace {

std::string Where(const CostQuery& q) {
  std::string w = " WHERE time_us >= ?";
  if (!q.record_id.empty()) w += " AND record_id = ?";
  if (!q.run_id.empty()) w += " AND run_id = ?";
  if (!q.agent.empty()) w += " AND agent = ?";
  return w;
}

int BindWhere(sql::Stmt* st, const CostQuery& q) {
  int i = 1;
  st->Bind(i++, q.since_us);
  if (!q.record_id.empty()) st->Bind(i++, q.record_id);
  if (!q.run_id.empty()) st->Bind(i++, q.run_id);
  if (!q.agent.empty()) st->Bind(i++, q.agent);
  return i;
}

constexpr char kSums[] =
    "count(*), coalesce(sum(cached), 0), coalesce(sum(input_tokens), 0), "
    "coalesce(sum(output_tokens), 0), coalesce(sum(cost_nanousd), 0)";

CostLine ReadLine(const sql::Stmt& st, int first) {
  CostLine l;
  l.calls = st.Int(first);
  l.cached_calls = st.Int(first + 1);
  l.input_tokens = st.Int(first + 2);
  l.output_tokens = st.Int(first + 3);
  l.cost_nanousd = st.Int(first + 4);
  return l;
}

Result<std::vector<CostLine>> Group(sql::Db* db, const CostQuery& q, const char* column) {
  std::string sql = std::string("SELECT ") + column + ", " + kSums + " FROM model_calls" +
                    Where(q) + " GROUP BY " + column + " ORDER BY 6 DESC, 1";
  KEEL_ASSIGN_OR_RETURN(auto st, db->Prepare(sql));
  BindWhere(st.get(), q);
  std::vector<CostLine> out;
  for (;;) {
    KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    CostLine l = ReadLine(*st, 1);
    l.key = st->Text(0);
    out.push_back(std::move(l));
  }
  return out;
}

}  // namespace

Result<CostReport> QueryCost(Workspace& ws, const CostQuery& q) {
  Reader rd(ws);
  CostReport r;
  {
    KEEL_ASSIGN_OR_RETURN(
        auto st, rd.db()->Prepare(std::string("SELECT ") + kSums + " FROM model_calls" + Where(q)));
    BindWhere(st.get(), q);
    KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
    if (row) r.total = ReadLine(*st, 0);
    r.total.key = "total";
  }
  KEEL_ASSIGN_OR_RETURN(r.by_agent, Group(rd.db(), q, "agent"));
  KEEL_ASSIGN_OR_RETURN(r.by_model, Group(rd.db(), q, "model"));
  KEEL_ASSIGN_OR_RETURN(r.by_record, Group(rd.db(), q, "record_id"));
  return r;
}

Result<std::vector<ModelCall>> ListModelCalls(Workspace& ws, const CostQuery& q, int64_t limit) {
  Reader rd(ws);
  std::string sql =
      "SELECT id, time_us, run_id, step_id, agent, record_id, provider, model, operation, "
      "input_tokens, output_tokens, cost_nanousd, cached, finish_reason, prompt_hash, "
      "prompt_artifact, response_artifact, ledger_seq FROM model_calls" +
      Where(q) + " ORDER BY time_us DESC, ledger_seq DESC LIMIT ?";
  KEEL_ASSIGN_OR_RETURN(auto st, rd.db()->Prepare(sql));
  int i = BindWhere(st.get(), q);
  st->Bind(i, limit > 0 ? limit : int64_t{1} << 40);
  std::vector<ModelCall> out;
  for (;;) {
    KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    ModelCall c;
    c.id = st->Text(0);
    c.time_us = st->Int(1);
    c.run_id = st->Text(2);
    c.step_id = st->Text(3);
    c.agent = st->Text(4);
    c.record_id = st->Text(5);
    c.provider = st->Text(6);
    c.model = st->Text(7);
    c.operation = st->Text(8);
    c.input_tokens = st->Int(9);
    c.output_tokens = st->Int(10);
    c.cost_nanousd = st->Int(11);
    c.cached = st->Int(12) != 0;
    c.finish_reason = st->Text(13);
    c.prompt_hash = st->Text(14);
    c.prompt_artifact = st->Text(15);
    c.response_artifact = st->Text(16);
    c.ledger_seq = st->Int(17);
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace keel::store
