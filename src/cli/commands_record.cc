// keel record add|show|list|set|types, keel import leads.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "core/json.h"
#include "store/csv.h"
#include "store/records.h"

namespace keel::cli {
namespace {

using nlohmann::json;

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

json RecordJson(const store::Record& r) {
  json fields = json::parse(r.data_json, nullptr, false);
  if (fields.is_discarded()) fields = json::object();
  return {{"id", r.id},
          {"type", r.type},
          {"version", r.version},
          {"created", FormatTimeMicros(r.created_us)},
          {"updated", FormatTimeMicros(r.updated_us)},
          {"fields", fields}};
}

// One line naming the record: its label, email and status.
std::string Summary(const store::Record& r) {
  std::string label;
  for (const char* k : {"name", "title", "number"}) {
    if (!r.Get(k).empty()) {
      label = r.Get(k);
      break;
    }
  }
  std::string out = label;
  if (!r.Get("email").empty()) out += (out.empty() ? "" : " ") + ("<" + r.Get("email") + ">");
  if (!r.Get("company").empty()) out += " (" + r.Get("company") + ")";
  if (!r.Get("value").empty()) out += "  " + r.Get("value") + " " + r.Get("currency");
  if (!r.Get("amount").empty()) out += "  " + r.Get("amount") + " " + r.Get("currency");
  if (!r.Get("status").empty()) out += "  [" + r.Get("status") + "]";
  return out;
}

std::string HistoryLine(const store::LedgerEntry& e) {
  std::string line = std::to_string(e.seq) + "  " + FormatTimeMicros(e.time_us).substr(0, 19) +
                     "Z  " + e.actor + "  " + e.kind;
  json p = json::parse(e.payload, nullptr, false);
  if (p.is_discarded()) return line;
  if (e.kind == "record.changed" && p.contains("changes") && p["changes"].is_object()) {
    std::string parts;
    for (auto it = p["changes"].begin(); it != p["changes"].end(); ++it) {
      auto show = [](const json& v) {
        if (v.is_null()) return std::string("(unset)");
        return v.is_string() ? v.get<std::string>() : v.dump();
      };
      const json& ch = *it;
      if (!ch.is_array() || ch.size() != 2) continue;
      parts += (parts.empty() ? "" : "; ") + it.key() + ": " + show(ch[0]) + " -> " + show(ch[1]);
    }
    line += "  " + parts;
  }
  if (p.contains("source") && p["source"].is_object()) {
    const json& s = p["source"];
    if (s.contains("artifact") && s.contains("line")) {
      line += "  from import " + s["artifact"].get<std::string>().substr(0, 12) + "… line " +
              s["line"].dump();
    }
  }
  return line;
}

void PrintProblems(const store::ImportReport& r) {
  for (const auto& p : r.problems) std::cerr << "line " << p.line << ": " << p.reason << "\n";
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
      std::string type;
      std::vector<std::string> sets;
      bool json = false, dry_run = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("type", o->type, "Record type (see `keel record types`)")->required();
    cmd->add_option("--set", o->sets, "FIELD=VALUE; repeat for each field")
        ->allow_extra_args(false);
    cmd->add_flag("--json", o->json, "Print the new record as JSON instead of its id");
    cmd->add_flag("--dry-run", o->dry_run, "Validate and show the record; write nothing");
    cmd->footer("Example: keel record add lead --set email=ann@example.com --set name=\"Ann Lee\"");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto values, ParseSets(o->sets));
      KEEL_ASSIGN_OR_RETURN(auto ws, ctx->OpenWorkspace());
      KEEL_ASSIGN_OR_RETURN(store::Record r,
                            store::CreateRecord(*ws, o->type, values, {}, o->dry_run));
      if (o->json) {
        json j = RecordJson(r);
        if (o->dry_run) j["dry_run"] = true;
        std::cout << j.dump(2) << "\n";
      } else if (o->dry_run) {
        std::cout << "would create " << r.type << " " << Summary(r) << "\n";
        for (const auto& [k, v] : r.fields) std::cout << "  " << k << ": " << v << "\n";
      } else {
        std::cout << r.id << "\n";
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
    cmd->add_option("id", o->id, "Record id (lead_…, deal_…)")->required();
    cmd->add_flag("--json", o->json, "Print JSON (fields and history)");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto ws, ctx->OpenWorkspace(true));
      KEEL_ASSIGN_OR_RETURN(store::Record r, store::GetRecord(*ws, o->id));
      store::LedgerQuery q;
      q.subject = r.id;
      KEEL_ASSIGN_OR_RETURN(auto history, ws->QueryLedger(q));
      if (o->json) {
        json j = RecordJson(r);
        j["history"] = json::array();
        for (const auto& e : history) {
          json p = json::parse(e.payload, nullptr, false);
          j["history"].push_back({{"seq", e.seq},
                                  {"time", FormatTimeMicros(e.time_us)},
                                  {"actor", e.actor},
                                  {"kind", e.kind},
                                  {"payload", p.is_discarded() ? json(e.payload) : p}});
        }
        std::cout << j.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
        return OkStatus();
      }
      std::cout << r.id << "  (" << r.type << ", version " << r.version << ")\n";
      const store::RecordTypeSpec* spec = store::FindRecordType(r.type);
      size_t width = 0;
      for (const auto& [k, v] : r.fields) width = std::max(width, k.size());
      // Schema order reads better than alphabetical.
      for (const auto& f : spec ? spec->fields : std::vector<store::FieldSpec>{}) {
        std::string v = r.Get(f.name);
        if (v.empty()) continue;
        std::cout << "  " << f.name << std::string(width - f.name.size(), ' ') << "  " << v << "\n";
      }
      std::cout << "  created " << FormatTimeMicros(r.created_us).substr(0, 19) << "Z, updated "
                << FormatTimeMicros(r.updated_us).substr(0, 19) << "Z\n";
      std::cout << "history:\n";
      for (const auto& e : history) std::cout << "  " << HistoryLine(e) << "\n";
      return OkStatus();
    }));
  }

  // keel record list [TYPE] [--where k=v] [--limit N]
  {
    auto* cmd = rec->add_subcommand("list", "List records, oldest first");
    struct Opts {
      std::string type;
      std::vector<std::string> where;
      int64_t limit = 0;
      bool json = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("type", o->type, "Only this type (lead, deal, ...)");
    cmd->add_option("--where", o->where,
                    "FIELD=VALUE filter (needs TYPE); repeat to combine; "
                    "FIELD= matches records without the field")
        ->allow_extra_args(false);
    cmd->add_option("--limit", o->limit, "At most N records");
    cmd->add_flag("--json", o->json, "Print a JSON array of records");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      store::RecordQuery q;
      q.type = o->type;
      q.limit = o->limit;
      for (const auto& w : o->where) {
        KEEL_ASSIGN_OR_RETURN(auto kv, SplitAssignment(w, "--where"));
        q.where.push_back(kv);
      }
      KEEL_ASSIGN_OR_RETURN(auto ws, ctx->OpenWorkspace(true));
      KEEL_ASSIGN_OR_RETURN(auto records, store::ListRecords(*ws, q));
      if (o->json) {
        json arr = json::array();
        for (const auto& r : records) arr.push_back(RecordJson(r));
        std::cout << arr.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
        return OkStatus();
      }
      for (const auto& r : records) std::cout << r.id << "  " << Summary(r) << "\n";
      if (records.empty()) std::cerr << "no matching records\n";
      return OkStatus();
    }));
  }

  // keel record set ID --set k=v --unset k
  {
    auto* cmd = rec->add_subcommand("set", "Change fields of record ID (prints the new version)");
    struct Opts {
      std::string id;
      std::vector<std::string> sets, unsets;
      int64_t expect_version = 0;
      bool json = false, dry_run = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("id", o->id, "Record id")->required();
    cmd->add_option("--set", o->sets, "FIELD=VALUE; repeat for each field")
        ->allow_extra_args(false);
    cmd->add_option("--unset", o->unsets, "FIELD to remove; repeatable")->allow_extra_args(false);
    cmd->add_option("--expect-version", o->expect_version,
                    "Refuse (exit 1) unless the record is at this version");
    cmd->add_flag("--json", o->json, "Print the record and the changes as JSON");
    cmd->add_flag("--dry-run", o->dry_run, "Validate and show the changes; write nothing");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      store::RecordUpdate u;
      KEEL_ASSIGN_OR_RETURN(u.set, ParseSets(o->sets));
      u.unset = o->unsets;
      u.expected_version = o->expect_version;
      if (u.set.empty() && u.unset.empty()) {
        return InvalidArgument("nothing to change: give --set FIELD=VALUE or --unset FIELD");
      }
      KEEL_ASSIGN_OR_RETURN(auto ws, ctx->OpenWorkspace());
      KEEL_ASSIGN_OR_RETURN(auto res, store::UpdateRecord(*ws, o->id, u, {}, o->dry_run));
      if (o->json) {
        json j = RecordJson(res.record);
        j["changed"] = res.changed;
        j["dry_run"] = o->dry_run;
        j["changes"] = json::object();
        for (const auto& [k, ch] : res.changes) j["changes"][k] = {ch.first, ch.second};
        std::cout << j.dump(2) << "\n";
        return OkStatus();
      }
      if (!res.changed) {
        std::cout << res.record.id << " unchanged (version " << res.record.version << ")\n";
        return OkStatus();
      }
      std::cout << res.record.id << (o->dry_run ? " would be" : "") << " version "
                << res.record.version << "\n";
      for (const auto& [k, ch] : res.changes) {
        std::cout << "  " << k << ": " << (ch.first.empty() ? "(unset)" : ch.first) << " -> "
                  << (ch.second.empty() ? "(unset)" : ch.second) << "\n";
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
      if (*as_json) {
        json arr = json::array();
        for (const auto& t : store::RecordTypes()) {
          json fields = json::array();
          for (const auto& f : t.fields) {
            json jf = {{"name", f.name},
                       {"type", std::string(store::FieldTypeName(f.type))},
                       {"required", f.required},
                       {"help", f.help}};
            if (!f.allowed.empty()) jf["allowed"] = f.allowed;
            if (!f.ref_type.empty()) jf["ref_type"] = f.ref_type;
            if (!f.default_value.empty()) jf["default"] = f.default_value;
            fields.push_back(jf);
          }
          arr.push_back({{"type", t.type},
                         {"id_prefix", t.prefix + "_"},
                         {"help", t.help},
                         {"fields", fields},
                         {"one_of", t.one_of},
                         {"rules", t.rules}});
        }
        std::cout << arr.dump(2) << "\n";
        return OkStatus();
      }
      for (const auto& t : store::RecordTypes()) {
        std::cout << t.type << " (ids " << t.prefix << "_…): " << t.help << "\n";
        for (const auto& f : t.fields) {
          std::string type(store::FieldTypeName(f.type));
          if (!f.allowed.empty()) {
            type = "";
            for (const auto& a : f.allowed) type += (type.empty() ? "" : "|") + a;
          }
          if (!f.ref_type.empty()) type = f.ref_type + " id";
          std::string line = "  " + f.name;
          line.resize(std::max<size_t>(line.size() + 1, 18), ' ');
          line += type;
          line.resize(std::max<size_t>(line.size() + 1, 54), ' ');
          line += f.help;
          if (f.required) line += " (required)";
          if (!f.default_value.empty()) line += " (default " + f.default_value + ")";
          std::cout << line << "\n";
        }
        for (const auto& g : t.one_of) {
          std::string names;
          for (const auto& n : g) names += (names.empty() ? "" : " or ") + n;
          std::cout << "  rule: needs " << names << "\n";
        }
        for (const auto& r : t.rules) std::cout << "  rule: " << r << "\n";
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
      std::string file;
      bool skip_bad = false, dry_run = false, json = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("file", o->file, "CSV file, or - for standard input")->required();
    cmd->add_flag("--skip-bad", o->skip_bad,
                  "Import the good rows, report the bad ones and exit 0");
    cmd->add_flag("--dry-run", o->dry_run, "Check every row; write nothing");
    cmd->add_flag("--json", o->json, "Print the report as JSON on standard output");
    cmd->footer("Columns: " + store::FindRecordType("lead")->FieldList() +
                " (any order, case-insensitive; see docs/records.md).");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      store::CsvLimits limits;
      KEEL_ASSIGN_OR_RETURN(std::string text, ReadInput(o->file, limits.max_bytes));
      KEEL_ASSIGN_OR_RETURN(auto ws, ctx->OpenWorkspace());
      store::ImportOptions io;
      io.skip_bad = o->skip_bad;
      io.dry_run = o->dry_run;
      if (o->file != "-") {
        auto slash = o->file.find_last_of('/');
        io.file_name = slash == std::string::npos ? o->file : o->file.substr(slash + 1);
      }
      auto report = store::ImportLeads(*ws, text, io);
      if (!report.ok()) return report.status().WithContext(o->file);
      const store::ImportReport& r = *report;
      bool refused = !r.problems.empty() && (!o->skip_bad || r.imported == 0);
      if (o->json) {
        json problems = json::array();
        for (const auto& p : r.problems)
          problems.push_back({{"line", p.line}, {"reason", p.reason}});
        json j = {{"file_hash", r.file_hash}, {"rows", r.rows},       {"imported", r.imported},
                  {"skipped", r.skipped},     {"problems", problems}, {"ids", r.ids},
                  {"written", r.written},     {"dry_run", o->dry_run}};
        if (r.ledger_seq) j["ledger_seq"] = r.ledger_seq;
        std::cout << j.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
      } else {
        PrintProblems(r);
        if (!refused) {
          std::cout << (o->dry_run ? "would import " : "imported ") << r.imported << " lead"
                    << (r.imported == 1 ? "" : "s") << " from " << o->file;
          if (r.skipped) std::cout << ", skipped " << r.skipped << " bad row(s)";
          if (r.written) {
            std::cout << "\n  file stored as artifact " << r.file_hash << "\n  ledger entry "
                      << r.ledger_seq;
          }
          std::cout << "\n";
        }
      }
      if (refused) {
        ctx->exit_code = 65;
        std::cerr << "keel: error: " << r.problems.size() << " bad row(s) in " << o->file
                  << "; nothing imported"
                  << (o->skip_bad ? "" : " (fix them, or pass --skip-bad to import the rest)")
                  << "\n";
      }
      return OkStatus();
    }));
  }
}

}  // namespace keel::cli
