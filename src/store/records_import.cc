// CSV import of leads (ImportLeads): the file is checked row by row against the schema and
// the store, then written in one transaction with its artifact and an import.completed entry.
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/hash.h"
#include "core/json.h"
#include "store/artifacts.h"
#include "store/csv.h"
#include "store/records.h"
#include "store/records_internal.h"

namespace keel::store {

using namespace records_internal;

namespace {

struct ImportPlan {
  std::vector<std::pair<int64_t, FieldValues>> good;  // line, values
  std::vector<ImportProblem> problems;
  int64_t rows = 0;
  bool header_bad = false;
};

Result<ImportPlan> PlanImport(Workspace& ws, const std::vector<CsvRow>& rows) {
  const RecordTypeSpec& spec = *FindRecordType("lead");
  ImportPlan plan;
  std::vector<std::string> columns;
  std::set<std::string> seen;
  const CsvRow& header = rows[0];
  for (const auto& raw : header.fields) {
    std::string name = Lower(Trim(raw));
    if (name.empty()) {
      plan.problems.push_back({header.line, "a column has no name"});
    } else if (!spec.Field(name)) {
      plan.problems.push_back(
          {header.line, "unknown column " + Quote(raw) + " (allowed: " + spec.FieldList() + ")"});
    } else if (!seen.insert(name).second) {
      plan.problems.push_back({header.line, "column " + name + " appears twice"});
    }
    columns.push_back(name);
  }
  if (!seen.count("email")) {
    plan.problems.push_back({header.line,
                             "the header has no email column (imported leads are "
                             "matched by email)"});
  }
  plan.rows = static_cast<int64_t>(rows.size()) - 1;
  if (!plan.problems.empty()) {
    plan.header_bad = true;
    return plan;
  }
  std::map<std::string, int64_t> first_line;  // email -> line of its first good row
  for (size_t i = 1; i < rows.size(); ++i) {
    const CsvRow& row = rows[i];
    auto bad = [&](std::string why) { plan.problems.push_back({row.line, std::move(why)}); };
    bool blank = std::all_of(row.fields.begin(), row.fields.end(),
                             [](const std::string& f) { return Trim(f).empty(); });
    if (blank) {
      --plan.rows;
      continue;
    }
    if (row.fields.size() != columns.size()) {
      bad((row.fields.size() > columns.size() ? "too many fields: " : "too few fields: ") +
          std::to_string(row.fields.size()) + " where the header has " +
          std::to_string(columns.size()));
      continue;
    }
    FieldValues values;
    for (size_t c = 0; c < columns.size(); ++c) values[columns[c]] = row.fields[c];
    if (Trim(values["email"]).empty()) {
      bad("missing required field email");
      continue;
    }
    auto data = BuildNewData(spec, values);
    if (!data.ok()) {
      bad(data.status().message());
      continue;
    }
    std::string email = Str(*data, "email");
    if (auto it = first_line.find(email); it != first_line.end()) {
      bad("duplicate email " + email + " (first on line " + std::to_string(it->second) + ")");
      continue;
    }
    Status s = CheckAgainstStore(ws, spec, *data, "", nullptr);
    if (!s.ok()) {
      if (s.code() != StatusCode::kAlreadyExists && s.code() != StatusCode::kInvalidArgument) {
        return s;  // a storage error, not a bad row
      }
      bad(s.message());
      continue;
    }
    first_line[email] = row.line;
    plan.good.emplace_back(row.line, std::move(values));
  }
  return plan;
}

void FillReport(const ImportPlan& plan, const ImportOptions& opts, ImportReport* report) {
  report->rows = plan.rows;
  report->problems = plan.problems;
  bool proceed = !plan.header_bad && (plan.problems.empty() || opts.skip_bad);
  report->imported = proceed ? static_cast<int64_t>(plan.good.size()) : 0;
  report->skipped = proceed ? static_cast<int64_t>(plan.problems.size()) : 0;
}

}  // namespace

Result<ImportReport> ImportLeads(Workspace& ws, std::string_view csv, const ImportOptions& opts) {
  auto parsed = ParseCsv(csv);
  if (!parsed.ok()) return parsed.status();
  const std::vector<CsvRow>& rows = *parsed;
  if (rows.empty()) {
    return InvalidArgument("the file is empty; expected a header line naming the columns (" +
                           FindRecordType("lead")->FieldList() + ")");
  }
  ImportReport report;
  report.file_hash = Sha256Hex(csv);
  if (opts.dry_run) {
    Reader rd(ws);
    KEEL_ASSIGN_OR_RETURN(ImportPlan plan, PlanImport(ws, rows));
    FillReport(plan, opts, &report);
    if (report.rows == 0) return InvalidArgument("the file has a header but no rows");
    return report;
  }
  Status s = ws.Write([&](Txn& txn) -> Status {
    // Planned inside the write transaction, so no other writer can add a lead with one of
    // these emails between the check and the insert.
    KEEL_ASSIGN_OR_RETURN(ImportPlan plan, PlanImport(ws, rows));
    FillReport(plan, opts, &report);
    if (report.rows == 0) return InvalidArgument("the file has a header but no rows");
    if (report.imported == 0) return OkStatus();  // nothing to write
    PutArtifactOptions ap;
    ap.media_type = "text/csv";
    ap.name = opts.file_name;
    ap.actor = opts.actor;
    KEEL_ASSIGN_OR_RETURN(ArtifactInfo art, PutArtifact(txn, csv, ap));
    for (const auto& [line, values] : plan.good) {
      RecordWriteOptions wo;
      wo.actor = opts.actor;
      wo.source_json =
          CanonicalJson(Json{{"import", "leads"}, {"artifact", art.hash}, {"line", line}});
      wo.artifacts = {art.hash};
      auto r = CreateRecord(txn, "lead", values, wo);
      if (!r.ok()) return r.status().WithContext("line " + std::to_string(line));
      report.ids.push_back(r->id);
    }
    Json skipped_lines = Json::array();
    for (const auto& p : plan.problems) {
      if (skipped_lines.size() >= 1000) break;  // keeps the payload bounded
      skipped_lines.push_back(p.line);
    }
    Json payload = {{"import", "leads"},
                    {"file", opts.file_name},
                    {"file_hash", art.hash},
                    {"rows", report.rows},
                    {"imported", report.imported},
                    {"skipped", report.skipped},
                    {"skipped_lines", skipped_lines}};
    KEEL_ASSIGN_OR_RETURN(LedgerEntry e, txn.Append({opts.actor,
                                                     "import.completed",
                                                     art.hash,
                                                     "",
                                                     "",
                                                     CanonicalJson(payload),
                                                     {art.hash}}));
    report.ledger_seq = e.seq;
    return OkStatus();
  });
  if (!s.ok()) return s;
  report.written = report.ledger_seq != 0;
  return report;
}

}  // namespace keel::store
