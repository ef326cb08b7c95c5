// keel remember | recall | facts | memory stats|purge|used|extract|supersede|summary|decisions
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/memory.h"
#include "app/views.h"
#include "cli/cli.h"
#include "core/clock.h"

namespace keel::cli {
namespace {

using nlohmann::json;

double Round(double v, double scale) {
  return std::round(v * scale) / scale;
}

std::string SourceLine(const memory::Source& s) {
  std::string out = s.artifact.empty() ? "entered" : "artifact " + s.artifact.substr(0, 12);
  if (s.span_begin >= 0) {
    out += " [" + std::to_string(s.span_begin) + "," + std::to_string(s.span_end) + ")";
  }
  out += " by " + s.agent;
  if (!s.run_id.empty()) out += " run " + s.run_id;
  if (!s.step_id.empty()) out += " step " + s.step_id;
  return out;
}

void PrintFact(const memory::Fact& f, const std::string& prefix) {
  std::cout << prefix << f.text << "\n      " << f.id << "  confidence " << Round(f.confidence, 100)
            << "  " << memory::ScopeName(f.scope);
  if (f.expires_us != 0) std::cout << "  expires " << FormatTimeMicros(f.expires_us);
  if (!f.superseded_by.empty()) std::cout << "  superseded by " << f.superseded_by;
  std::cout << "\n";
  for (const auto& s : f.provenance.sources) std::cout << "      source: " << SourceLine(s) << "\n";
}

}  // namespace

void RegisterMemoryCommands(CLI::App& app, Context* ctx) {
  {
    auto* cmd = app.add_subcommand(
        "remember",
        "Remember a fact about SUBJECT, a record id (lead_…), or with --free-subject any other "
        "subject. Equal or near-duplicate facts of the same subject are merged into one fact "
        "with several sources");
    struct Opts {
      app::RememberRequest req;
      bool json = false;
    };
    auto o = std::make_shared<Opts>();
    app::RememberRequest& r = o->req;
    cmd->add_option("SUBJECT", r.subject, "Record id the fact is about")->required();
    cmd->add_option("TEXT", r.text, "The fact, in words (or use --key/--value)");
    cmd->add_flag("--free-subject", r.free_subject,
                  "SUBJECT is not a record id (a run, a topic): remember it as given");
    cmd->add_option("--source", r.source, "Artifact address of the raw text it came from");
    cmd->add_option("--span", r.span, "BEGIN:END byte offsets of the fact in --source");
    cmd->add_option("--ttl", r.ttl, "Short-term: forget after this long (90s, 15m, 2h, 7d, 1w)");
    cmd->add_option("--confidence", r.confidence, "Confidence between 0 and 1 (default 1)");
    cmd->add_option("--key", r.key, "Key of a key/value fact (email, role, ...)");
    cmd->add_option("--value", r.value, "Value of a key/value fact");
    cmd->add_option("--agent", r.by.agent, "Who states it (default: operator)");
    cmd->add_option("--run", r.by.run_id, "Run id it belongs to");
    cmd->add_option("--step", r.by.step_id, "Step id it belongs to");
    cmd->add_flag("--json", o->json, "Print JSON");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime());
      KEEL_ASSIGN_OR_RETURN(auto r, app::Remember(*rt, o->req));
      if (o->json) {
        PrintJson(app::views::Remembered(r));
      } else if (r.already_known) {
        std::cout << r.fact_id << " (already known from this source; nothing written)\n";
      } else if (r.merged) {
        std::cout << r.fact_id << " (merged into the existing fact as one more source)\n";
      } else {
        std::cout << r.fact_id << "\n";
      }
      return OkStatus();
    }));
  }
  {
    auto* cmd = app.add_subcommand(
        "recall",
        "Find the facts most relevant to QUERY within a token budget, each with its provenance. "
        "The retrieval is logged for `keel memory stats` unless --no-log");
    struct Opts {
      app::RecallRequest req;
      bool json = false, no_log = false, no_short = false;
    };
    auto o = std::make_shared<Opts>();
    app::RecallRequest& r = o->req;
    cmd->add_option("QUERY", r.query, "Free text; search syntax is treated as plain words")
        ->required();
    cmd->add_option("--subject", r.subject, "Only facts about this record id");
    cmd->add_option("--budget", r.budget_tokens,
                    "Token budget (about 4 bytes per token; default 1000)");
    cmd->add_option("--limit", r.limit, "At most this many facts (default 20)");
    cmd->add_option("--agent", r.agent, "Agent the retrieval is for (for stats)");
    cmd->add_option("--workflow", r.workflow, "Workflow the retrieval is for (for stats)");
    cmd->add_option("--run", r.run_id, "Run id");
    cmd->add_option("--step", r.step_id, "Step id");
    cmd->add_flag("--no-short", o->no_short, "Leave out short-term facts");
    cmd->add_flag("--no-log", o->no_log, "Do not log the retrieval (read-only)");
    cmd->add_flag("--json", o->json, "Print JSON: facts each with a provenance object");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      app::RecallRequest req = o->req;
      req.include_short = !o->no_short;
      req.log = !o->no_log;
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime(o->no_log));
      KEEL_ASSIGN_OR_RETURN(auto r, app::Recall(*rt, req));
      if (o->json) {
        PrintJson(app::views::Recall(r, req.query, req.subject, req.budget_tokens));
        return OkStatus();
      }
      if (r.facts.empty()) std::cout << "no facts match\n";
      for (size_t i = 0; i < r.facts.size(); ++i) {
        PrintFact(r.facts[i].fact, std::to_string(i + 1) + ". [" +
                                       std::to_string(Round(r.facts[i].score, 100)).substr(0, 4) +
                                       "] ");
      }
      std::cout << r.tokens_used << " of " << req.budget_tokens << " tokens";
      if (r.dropped_for_budget > 0) {
        std::cout << "; " << r.dropped_for_budget << " more facts did not fit the budget";
      }
      if (!r.retrieval_id.empty()) std::cout << "; retrieval " << r.retrieval_id;
      std::cout << "\n";
      return OkStatus();
    }));
  }
  {
    auto* cmd = app.add_subcommand("facts", "List the facts about SUBJECT, newest first");
    struct Opts {
      std::string subject;
      bool all = false, json = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("SUBJECT", o->subject, "Record id (or another subject)")->required();
    cmd->add_flag("--all", o->all, "Include superseded and expired facts");
    cmd->add_flag("--json", o->json, "Print JSON");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime(true));
      KEEL_ASSIGN_OR_RETURN(auto facts, app::ListFacts(*rt, o->subject, o->all));
      if (o->json) {
        json arr = json::array();
        for (const auto& f : facts) arr.push_back(app::views::Fact(f));
        PrintJson(arr);
        return OkStatus();
      }
      if (facts.empty()) std::cout << "no facts about " << o->subject << "\n";
      for (const auto& f : facts) PrintFact(f, "- ");
      return OkStatus();
    }));
  }

  auto* mem_cmd = app.add_subcommand("memory", "Memory telemetry and maintenance");
  mem_cmd->require_subcommand(1);
  {
    auto* cmd = mem_cmd->add_subcommand(
        "stats",
        "Fact counts and retrieval hit/miss rates per agent and workflow (hit: a returned fact "
        "was used; miss: marked with none used, or nothing returned; pending: not marked yet)");
    auto js = std::make_shared<bool>(false);
    cmd->add_flag("--json", *js, "Print JSON");
    cmd->callback(Run(ctx, [ctx, js]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime(true));
      KEEL_ASSIGN_OR_RETURN(auto s, app::GetMemoryStats(*rt));
      if (*js) {
        PrintJson(app::views::MemoryStats(s));
        return OkStatus();
      }
      std::cout << "facts: " << s.facts_active << " active, " << s.facts_superseded
                << " superseded, " << s.facts_expired << " expired (not purged); " << s.merged_facts
                << " merged from several sources (" << s.sources << " sources)\n"
                << "summaries: " << s.summaries << "; decisions: " << s.decisions << "\n"
                << "retrievals: " << s.total.retrievals << " (" << s.total.hits << " hits, "
                << s.total.misses << " misses, " << s.total.pending << " pending); hit rate "
                << Round(s.total.hit_rate * 100, 10) << "%\n";
      auto table = [](const char* title, const std::vector<memory::RateStats>& rows) {
        if (rows.empty()) return;
        std::cout << title << ":\n";
        for (const auto& r : rows) {
          std::cout << "  " << (r.name.empty() ? "(none)" : r.name) << ": " << r.retrievals
                    << " retrievals, " << r.hits << " hits, " << r.misses << " misses, "
                    << r.pending << " pending, hit rate " << Round(r.hit_rate * 100, 10) << "%, "
                    << r.facts_used << "/" << r.facts_returned << " facts used\n";
        }
      };
      table("by agent", s.by_agent);
      table("by workflow", s.by_workflow);
      return OkStatus();
    }));
  }
  {
    auto* cmd = mem_cmd->add_subcommand("purge", "Delete short-term facts whose TTL has passed");
    cmd->callback(Run(ctx, [ctx]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime());
      KEEL_ASSIGN_OR_RETURN(int64_t n, app::PurgeExpiredFacts(*rt));
      std::cout << "purged " << n << " expired short-term facts\n";
      return OkStatus();
    }));
  }
  {
    auto* cmd = mem_cmd->add_subcommand(
        "used", "Record which facts of retrieval RETRIEVAL_ID a step used (none: a miss)");
    auto id = std::make_shared<std::string>();
    auto facts = std::make_shared<std::vector<std::string>>();
    cmd->add_option("RETRIEVAL_ID", *id, "Retrieval id (ret_…) printed by recall")->required();
    cmd->add_option("FACT_ID", *facts, "Ids of the facts used");
    cmd->callback(Run(ctx, [ctx, id, facts]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime());
      KEEL_RETURN_IF_ERROR(app::MarkFactsUsed(*rt, *id, *facts));
      std::cout << "marked " << facts->size() << " facts used by " << *id << "\n";
      return OkStatus();
    }));
  }
  {
    auto* cmd = mem_cmd->add_subcommand(
        "extract",
        "Extract facts (people, roles, companies, emails, phones, money, dates, URLs) from a raw "
        "text ARTIFACT into the memory of --subject. Refused for text keel generated");
    struct Opts {
      app::ExtractRequest req;
      bool json = false;
    };
    auto o = std::make_shared<Opts>();
    app::ExtractRequest& r = o->req;
    cmd->add_option("ARTIFACT", r.artifact, "Artifact address of the raw text")->required();
    cmd->add_option("--subject", r.subject, "Record id the facts are about")->required();
    cmd->add_flag("--free-subject", r.free_subject,
                  "--subject is not a record id (a run, a topic): extract into it as given");
    cmd->add_option("--agent", r.by.agent, "Extracting agent name (default: offline)");
    cmd->add_option("--run", r.by.run_id, "Run id");
    cmd->add_option("--step", r.by.step_id, "Step id");
    cmd->add_flag("--json", o->json, "Print JSON");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime());
      KEEL_ASSIGN_OR_RETURN(auto rs, app::ExtractFacts(*rt, o->req));
      int64_t added = 0, merged = 0;
      json arr = json::array();
      for (const auto& r : rs) {
        (r.merged ? merged : added) += 1;
        arr.push_back(app::views::ExtractedFact(r));
      }
      if (o->json) {
        PrintJson(arr);
      } else {
        std::cout << added << " new facts, " << merged << " merged into known facts\n";
      }
      return OkStatus();
    }));
  }
  {
    auto* cmd = mem_cmd->add_subcommand(
        "supersede", "Replace fact FACT_ID by a newer TEXT; the old fact is kept, marked");
    auto o = std::make_shared<app::SupersedeRequest>();
    cmd->add_option("FACT_ID", o->fact_id, "The fact to replace")->required();
    cmd->add_option("TEXT", o->text, "The newer fact")->required();
    cmd->add_option("--reason", o->reason, "Why")->required();
    cmd->add_option("--confidence", o->confidence, "Confidence of the new fact (default 1)");
    cmd->add_option("--agent", o->agent, "Who states it (default: operator)");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime());
      KEEL_ASSIGN_OR_RETURN(std::string id, app::SupersedeFact(*rt, *o));
      std::cout << id << " (supersedes " << o->fact_id << ")\n";
      return OkStatus();
    }));
  }
  {
    auto* cmd = mem_cmd->add_subcommand(
        "summary",
        "Show SUBJECT's long-term summary, or store TEXT (@file, - for stdin) as its "
        "next version");
    struct Opts {
      std::string subject, text, agent = "operator";
      bool json = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("SUBJECT", o->subject, "Record id")->required();
    cmd->add_option("TEXT", o->text, "New summary text");
    cmd->add_option("--agent", o->agent, "Author (default: operator)");
    cmd->add_flag("--json", o->json, "Print JSON");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      memory::Summary s;
      if (!o->text.empty()) {
        KEEL_ASSIGN_OR_RETURN(std::string text, TextOrFile(o->text, 1 << 20));
        KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime());
        KEEL_ASSIGN_OR_RETURN(s, app::PutSummary(*rt, o->subject, text, o->agent));
      } else {
        KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime(true));
        KEEL_ASSIGN_OR_RETURN(s, app::LatestSummary(*rt, o->subject));
      }
      if (o->json) {
        PrintJson(app::views::Summary(s));
      } else {
        std::cout << "v" << s.version << " " << s.artifact << " by " << s.by.agent << "\n"
                  << s.text << (s.text.empty() || s.text.back() == '\n' ? "" : "\n");
      }
      return OkStatus();
    }));
  }
  {
    auto* cmd = mem_cmd->add_subcommand("decisions", "The decision log of SUBJECT, oldest first");
    struct Opts {
      std::string subject;
      bool json = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("SUBJECT", o->subject, "Record id")->required();
    cmd->add_flag("--json", o->json, "Print JSON");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime(true));
      KEEL_ASSIGN_OR_RETURN(auto ds, app::ListDecisions(*rt, o->subject));
      if (o->json) {
        json arr = json::array();
        for (const auto& d : ds) arr.push_back(app::views::Decision(d));
        PrintJson(arr);
        return OkStatus();
      }
      for (const auto& d : ds) {
        std::cout << FormatTimeMicros(d.time_us).substr(0, 19) << "Z  " << d.decided_by << ": "
                  << d.decision << "\n    why: " << d.reason << "\n";
        for (const auto& f : d.fact_ids) std::cout << "    from " << f << "\n";
      }
      if (ds.empty()) std::cout << "no decisions about " << o->subject << "\n";
      return OkStatus();
    }));
  }
}

}  // namespace keel::cli
