// keel record add|show|list|set|types, keel import leads: flags in, one application service
// called (app/records.h), its view printed (text, or --json).
#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/records.h"
#include "app/views.h"
#include "cli/cli.h"

namespace keel::cli {
namespace {

using nlohmann::json;
namespace views = app::views;

std::string Str(const json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// A field's value as display text ("" when unset), from a record view's `fields`.
std::string Field(const json& fields, const char* name) {
  if (!fields.is_object() || !fields.contains(name) || fields[name].is_null()) return "";
  return Str(fields[name]);
}

// An RFC 3339 time from a view, to the second.
std::string Short(const json& t) {
  return Str(t).substr(0, 19) + "Z";
}

// "k=v" -> (k, v); the value may contain '='.
Result<std::pair<std::string, std::string>> SplitAssignment(const std::string& arg,
                                                            const char* flag) {
  auto eq = arg.find('=');
  if (eq == std::string::npos || eq == 0) {
    return InvalidArgument(std::string(flag) + " '" + arg + "' must look like FIELD=VALUE");
  }
  return std::make_pair(arg.substr(0, eq), arg.substr(eq + 1));
}

Result<store::FieldValues> ParseSets(const std::vector<std::string>& sets) {
  store::FieldValues values;
  for (const auto& s : sets) {
    KEEL_ASSIGN_OR_RETURN(auto kv, SplitAssignment(s, "--set"));
    if (kv.second.empty()) {
      return InvalidArgument("--set " + kv.first + "= has no value; use --unset " + kv.first +
                             " to remove a field");
    }
    if (!values.emplace(kv.first, kv.second).second) {
      return InvalidArgument("--set " + kv.first + " is given more than once");
    }
  }
  return values;
}

// One line naming a record (a record view): its label, email and status.
std::string Summary(const json& rec) {
  const json& f = rec["fields"];
  std::string label;
  for (const char* k : {"name", "title", "number"}) {
    if (!Field(f, k).empty()) {
      label = Field(f, k);
      break;
    }
  }
  std::string out = label;
  if (!Field(f, "email").empty()) out += (out.empty() ? "" : " ") + ("<" + Field(f, "email") + ">");
  if (!Field(f, "company").empty()) out += " (" + Field(f, "company") + ")";
  if (!Field(f, "value").empty()) out += "  " + Field(f, "value") + " " + Field(f, "currency");
  if (!Field(f, "amount").empty()) out += "  " + Field(f, "amount") + " " + Field(f, "currency");
  if (!Field(f, "status").empty()) out += "  [" + Field(f, "status") + "]";
  return out;
}

// One history entry (views::RecordHistoryEntry) as a line: what changed, and where an
// imported record came from.
std::string HistoryLine(const json& e) {
  std::string line =
      Str(e["seq"]) + "  " + Short(e["time"]) + "  " + Str(e["actor"]) + "  " + Str(e["kind"]);
  const json& p = e["payload"];
  if (!p.is_object()) return line;
  if (e["kind"] == "record.changed" && p.contains("changes") && p["changes"].is_object()) {
    std::string parts;
    for (auto it = p["changes"].begin(); it != p["changes"].end(); ++it) {
      auto show = [](const json& v) { return v.is_null() ? std::string("(unset)") : Str(v); };
      const json& ch = *it;
      if (!ch.is_array() || ch.size() != 2) continue;
      parts += (parts.empty() ? "" : "; ") + it.key() + ": " + show(ch[0]) + " -> " + show(ch[1]);
    }
    line += "  " + parts;
  }
  if (p.contains("source") && p["source"].is_object()) {
    const json& s = p["source"];
    if (s.contains("artifact") && s["artifact"].is_string() && s.contains("line")) {
      line += "  from import " + s["artifact"].get<std::string>().substr(0, 12) + "… line " +
              s["line"].dump();
    }
  }
  return line;
}

void PrintRecord(const json& v, const store::RecordTypeSpec* spec) {
  std::cout << Str(v["id"]) << "  (" << Str(v["type"]) << ", version " << Str(v["version"])
            << ")\n";
  const json& fields = v["fields"];
  size_t width = 0;
  for (auto it = fields.begin(); it != fields.end(); ++it) width = std::max(width, it.key().size());
  // Schema order reads better than alphabetical.
  for (const auto& f : spec ? spec->fields : std::vector<store::FieldSpec>{}) {
    std::string val = Field(fields, f.name.c_str());
    if (val.empty()) continue;
    std::cout << "  " << f.name << std::string(width - std::min(width, f.name.size()), ' ') << "  "
              << val << "\n";
  }
  std::cout << "  created " << Short(v["created"]) << ", updated " << Short(v["updated"]) << "\n";
  std::cout << "history:\n";
  for (const auto& e : v["history"]) std::cout << "  " << HistoryLine(e) << "\n";
}

void PrintChange(const json& v) {
  if (!v["changed"].get<bool>()) {
    std::cout << Str(v["id"]) << " unchanged (version " << Str(v["version"]) << ")\n";
    return;
  }
  std::cout << Str(v["id"]) << (v["dry_run"].get<bool>() ? " would be" : "") << " version "
            << Str(v["version"]) << "\n";
  for (auto it = v["changes"].begin(); it != v["changes"].end(); ++it) {
    std::string was = Str((*it)[0]), now = Str((*it)[1]);
    std::cout << "  " << it.key() << ": " << (was.empty() ? "(unset)" : was) << " -> "
              << (now.empty() ? "(unset)" : now) << "\n";
  }
}

void PrintType(const json& t) {
  std::cout << Str(t["type"]) << " (ids " << Str(t["id_prefix"]) << "…): " << Str(t["help"])
            << (t["person"].get<bool>() ? " (a person)" : "") << "\n";
  for (const auto& f : t["fields"]) {
    std::string type = Str(f["type"]);
    if (f.contains("allowed")) {
      type = "";
      for (const auto& a : f["allowed"]) type += (type.empty() ? "" : "|") + Str(a);
    }
    if (f.contains("ref_type")) type = Str(f["ref_type"]) + " id";
    std::string line = "  " + Str(f["name"]);
    line.resize(std::max<size_t>(line.size() + 1, 18), ' ');
    line += type;
    line.resize(std::max<size_t>(line.size() + 1, 54), ' ');
    line += Str(f["help"]);
    if (f["required"].get<bool>()) line += " (required)";
    if (f.contains("default")) line += " (default " + Str(f["default"]) + ")";
    if (f["personal"].get<bool>()) line += " (personal)";
    std::cout << line << "\n";
  }
  for (const auto& g : t["one_of"]) {
    std::string names;
    for (const auto& n : g) names += (names.empty() ? "" : " or ") + Str(n);
    std::cout << "  rule: needs " << names << "\n";
  }
  for (const auto& r : t["rules"]) std::cout << "  rule: " << Str(r) << "\n";
  if (t.contains("retention")) std::cout << "  retention: " << Str(t["retention"]) << "\n";
}

// The import report (views::ImportReport) for a person: problems on stderr, the outcome on
// stdout unless the import was refused.
void PrintImport(const json& v, const std::string& file, bool refused) {
  for (const auto& p : v["problems"]) {
    std::cerr << "line " << Str(p["line"]) << ": " << Str(p["reason"]) << "\n";
  }
  if (refused) return;
  int64_t imported = v["imported"].get<int64_t>();
  int64_t skipped = v["skipped"].get<int64_t>();
  std::cout << (v["dry_run"].get<bool>() ? "would import " : "imported ") << imported << " lead"
            << (imported == 1 ? "" : "s") << " from " << file;
  if (skipped) std::cout << ", skipped " << skipped << " bad row(s)";
  if (v["written"].get<bool>()) {
    std::cout << "\n  file stored as artifact " << Str(v["file_hash"]) << "\n  ledger entry "
              << v.value("ledger_seq", int64_t{0});
  }
  std::cout << "\n";
}

}  // namespace

void RegisterRecordCommands(CLI::App& app, Context* ctx) {
  auto* rec = app.add_subcommand(
      "record",
      "Business records: leads, contacts, companies, deals, projects, documents, "
      "invoices (every change is a ledger entry)");
  rec->require_subcommand(1);

  // keel record add TYPE --set k=v...
  {
    auto* cmd = rec->add_subcommand("add", "Create a record of TYPE; prints its id");
    struct Opts {
      app::AddRecordRequest req;
      std::vector<std::string> sets;
      bool json = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("TYPE", o->req.type, "Record type (see `keel record types`)")->required();
    cmd->add_option("--set", o->sets, "FIELD=VALUE; repeat for each field")
        ->allow_extra_args(false);
    cmd->add_flag("--json", o->json, "Print the new record as JSON instead of its id");
    cmd->add_flag("--dry-run", o->req.dry_run, "Validate and show the record; write nothing");
    cmd->footer("Example: keel record add lead --set email=ann@example.com --set name=\"Ann Lee\"");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      KEEL_ASSIGN_OR_RETURN(o->req.values, ParseSets(o->sets));
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime());
      KEEL_ASSIGN_OR_RETURN(store::Record r, app::AddRecord(*rt, o->req));
      json v = views::RecordAdded(r, o->req.dry_run);
      if (o->json) {
        PrintJson(v);
      } else if (o->req.dry_run) {
        std::cout << "would create " << Str(v["type"]) << " " << Summary(v) << "\n";
        for (auto it = v["fields"].begin(); it != v["fields"].end(); ++it) {
          std::cout << "  " << it.key() << ": " << Str(*it) << "\n";
        }
      } else {
        std::cout << Str(v["id"]) << "\n";
      }
      return OkStatus();
    }));
  }

  // keel record show ID
  {
    auto* cmd = rec->add_subcommand("show",
                                    "Show a record's fields and its history from the "
                                    "ledger");
    struct Opts {
      std::string id;
      bool json = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("ID", o->id, "Record id (lead_…, deal_…)")->required();
    cmd->add_flag("--json", o->json, "Print JSON (fields and history)");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime(true));
      KEEL_ASSIGN_OR_RETURN(app::RecordDetail d, app::ShowRecord(*rt, o->id));
      json v = views::RecordWithHistory(d.record, d.history);
      if (o->json) {
        PrintJson(v);
      } else {
        PrintRecord(v, d.spec);
      }
      return OkStatus();
    }));
  }

  // keel record list [TYPE] [--where k=v] [--limit N]
  {
    auto* cmd = rec->add_subcommand("list", "List records, oldest first");
    struct Opts {
      app::ListRecordsRequest req;
      std::vector<std::string> where;
      bool json = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("TYPE", o->req.type, "Only this type (lead, deal, ...)");
    cmd->add_option("--where", o->where,
                    "FIELD=VALUE filter (needs TYPE); repeat to combine; "
                    "FIELD= matches records without the field")
        ->allow_extra_args(false);
    cmd->add_option("--limit", o->req.limit,
                    "At most this many, 1..100000 (default 100000; a note on standard error "
                    "says when more match)")
        ->check(CLI::Range(int64_t{1}, app::kMaxListLimit));
    cmd->add_flag("--json", o->json, "Print a JSON array of records");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      o->req.where.clear();
      for (const auto& w : o->where) {
        KEEL_ASSIGN_OR_RETURN(auto kv, SplitAssignment(w, "--where"));
        o->req.where.push_back(kv);
      }
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime(true));
      KEEL_ASSIGN_OR_RETURN(app::RecordList list, app::ListRecords(*rt, o->req));
      json arr = json::array();
      for (const auto& r : list.records) arr.push_back(views::Record(r));
      if (o->json) {
        PrintJson(arr);
      } else {
        for (const auto& v : arr) std::cout << Str(v["id"]) << "  " << Summary(v) << "\n";
        if (arr.empty()) std::cerr << "no matching records\n";
      }
      if (list.more) {
        std::cerr << "more records match; showing the first " << o->req.limit
                  << " (raise --limit, or narrow with TYPE and --where)\n";
      }
      return OkStatus();
    }));
  }

  // keel record set ID --set k=v --unset k
  {
    auto* cmd = rec->add_subcommand("set", "Change fields of record ID (prints the new version)");
    struct Opts {
      app::SetRecordRequest req;
      std::vector<std::string> sets;
      bool json = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("ID", o->req.id, "Record id")->required();
    cmd->add_option("--set", o->sets, "FIELD=VALUE; repeat for each field")
        ->allow_extra_args(false);
    cmd->add_option("--unset", o->req.unset, "FIELD to remove; repeatable")
        ->allow_extra_args(false);
    cmd->add_option("--expect-version", o->req.expected_version,
                    "Refuse (exit 1) unless the record is at this version");
    cmd->add_flag("--json", o->json, "Print the record and the changes as JSON");
    cmd->add_flag("--dry-run", o->req.dry_run, "Validate and show the changes; write nothing");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      KEEL_ASSIGN_OR_RETURN(o->req.set, ParseSets(o->sets));
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime());
      KEEL_ASSIGN_OR_RETURN(store::UpdateResult res, app::SetRecord(*rt, o->req));
      json v = views::RecordChange(res, o->req.dry_run);
      if (o->json) {
        PrintJson(v);
      } else {
        PrintChange(v);
      }
      return OkStatus();
    }));
  }

  // keel record types
  {
    auto* cmd = rec->add_subcommand("types", "List record types, their fields and rules");
    auto as_json = std::make_shared<bool>(false);
    cmd->add_flag("--json", *as_json, "Print JSON");
    cmd->callback(Run(ctx, [as_json]() -> Status {
      json arr = json::array();
      for (const auto& t : app::RecordTypes()) arr.push_back(views::RecordType(t));
      if (*as_json) {
        PrintJson(arr);
      } else {
        for (const auto& t : arr) PrintType(t);
      }
      return OkStatus();
    }));
  }

  // keel import leads FILE.csv
  auto* imp = app.add_subcommand("import", "Import records from files");
  imp->require_subcommand(1);
  {
    auto* cmd = imp->add_subcommand(
        "leads",
        "Import leads from a CSV file (UTF-8, header row naming lead fields, email required). "
        "Every row is checked first; if any row is bad, each is reported as `line N: reason` "
        "and nothing is imported (exit 65) unless --skip-bad is given");
    struct Opts {
      app::ImportRequest req;
      std::string file;
      bool json = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("FILE", o->file, "CSV file, or - for standard input")->required();
    cmd->add_flag("--skip-bad", o->req.skip_bad,
                  "Import the good rows, report the bad ones and exit 0");
    cmd->add_flag("--dry-run", o->req.dry_run, "Check every row; write nothing");
    cmd->add_flag("--json", o->json, "Print the report as JSON on standard output");
    cmd->footer("Columns: " + app::FindRecordType("lead")->FieldList() +
                " (any order, case-insensitive; see docs/records.md).");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      KEEL_ASSIGN_OR_RETURN(o->req.csv, ReadInput(o->file, app::MaxImportBytes()));
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime());
      if (o->file != "-") {
        auto slash = o->file.find_last_of('/');
        o->req.file_name = slash == std::string::npos ? o->file : o->file.substr(slash + 1);
      }
      auto result = app::ImportLeads(*rt, o->req);
      if (!result.ok()) return result.status().WithContext(o->file);
      json v = views::ImportReport(result->report, o->req.dry_run);
      if (o->json) {
        PrintJson(v);
      } else {
        PrintImport(v, o->file, result->refused);
      }
      if (result->refused) {
        ctx->exit_code = 65;
        std::cerr << "keel: error: " << result->report.problems.size() << " bad row(s) in "
                  << o->file << "; nothing imported"
                  << (o->req.skip_bad ? "" : " (fix them, or pass --skip-bad to import the rest)")
                  << "\n";
      }
      return OkStatus();
    }));
  }
}

}  // namespace keel::cli
