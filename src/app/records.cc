#include "app/records.h"

#include "store/csv.h"
#include "store/workspace.h"

namespace keel::app {

const std::vector<store::RecordTypeSpec>& RecordTypes() {
  return store::RecordTypes();
}

const store::RecordTypeSpec* FindRecordType(const std::string& type) {
  return store::FindRecordType(type);
}

Result<store::Record> AddRecord(Runtime& rt, const AddRecordRequest& req) {
  store::RecordWriteOptions o;
  o.actor = req.actor;
  return store::CreateRecord(rt.ws(), req.type, req.values, o, req.dry_run);
}

Result<RecordDetail> ShowRecord(Runtime& rt, const std::string& id) {
  RecordDetail d;
  KEEL_ASSIGN_OR_RETURN(d.record, store::GetRecord(rt.ws(), id));
  d.spec = store::FindRecordType(d.record.type);
  store::LedgerQuery q;
  q.subject = d.record.id;
  KEEL_ASSIGN_OR_RETURN(d.history, rt.ws().QueryLedger(q));
  return d;
}

Result<RecordList> ListRecords(Runtime& rt, const ListRecordsRequest& req) {
  if (req.limit < 1 || req.limit > kMaxListLimit) {
    return InvalidArgument("limit must be between 1 and " + std::to_string(kMaxListLimit));
  }
  store::RecordQuery q;
  q.type = req.type;
  q.where = req.where;
  q.limit = req.limit + 1;  // one more than asked tells whether more match
  RecordList out;
  KEEL_ASSIGN_OR_RETURN(out.records, store::ListRecords(rt.ws(), q));
  if (static_cast<int64_t>(out.records.size()) > req.limit) {
    out.records.resize(static_cast<size_t>(req.limit));
    out.more = true;
  }
  return out;
}

Result<store::UpdateResult> SetRecord(Runtime& rt, const SetRecordRequest& req) {
  if (req.set.empty() && req.unset.empty()) {
    return InvalidArgument("nothing to change: give --set FIELD=VALUE or --unset FIELD");
  }
  store::RecordUpdate u;
  u.set = req.set;
  u.unset = req.unset;
  u.expected_version = req.expected_version;
  store::RecordWriteOptions o;
  o.actor = req.actor;
  return store::UpdateRecord(rt.ws(), req.id, u, o, req.dry_run);
}

uint64_t MaxImportBytes() {
  return store::CsvLimits{}.max_bytes;
}

Result<ImportResult> ImportLeads(Runtime& rt, const ImportRequest& req) {
  store::ImportOptions io;
  io.skip_bad = req.skip_bad;
  io.dry_run = req.dry_run;
  io.actor = req.actor;
  io.file_name = req.file_name;
  ImportResult out;
  KEEL_ASSIGN_OR_RETURN(out.report, store::ImportLeads(rt.ws(), req.csv, io));
  out.refused = !out.report.problems.empty() && (!req.skip_bad || out.report.imported == 0);
  return out;
}

}  // namespace keel::app
