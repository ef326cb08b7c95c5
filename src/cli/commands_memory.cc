// keel remember | recall | facts | memory stats|purge|used|extract|supersede|summary|decisions
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "memory/memory.h"

namespace keel::cli {
namespace {

using nlohmann::json;

json TimeOrNull(int64_t us) { return us == 0 ? json() : json(FormatTimeMicros(us)); }
json StrOrNull(const std::string& s) { return s.empty() ? json() : json(s); }
json Span(int64_t b, int64_t e) { return b < 0 ? json() : json::array({b, e}); }
double Round(double v, double scale = 1e4) { return std::round(v * scale) / scale; }

json FactJson(const memory::Fact& f) {
  json sources = json::array();
  for (const auto& s : f.provenance.sources) {
    sources.push_back({{"artifact", StrOrNull(s.artifact)},
                       {"span", Span(s.span_begin, s.span_end)},
                       {"agent", s.agent},
                       {"run_id", StrOrNull(s.run_id)},
                       {"step_id", StrOrNull(s.step_id)},
                       {"confidence", Round(s.confidence)},
                       {"added", FormatTimeMicros(s.added_us)},
                       {"ledger_seq", s.ledger_seq}});
  }
  const auto& p = f.provenance;
  return {{"id", f.id},
          {"subject", f.subject},
          {"text", f.text},
          {"key", StrOrNull(f.key)},
          {"value", StrOrNull(f.value)},
          {"confidence", Round(f.confidence)},
          {"scope", std::string(memory::ScopeName(f.scope))},
          {"expires", TimeOrNull(f.expires_us)},
          {"valid_from", TimeOrNull(f.valid_from_us)},
          {"valid_to", TimeOrNull(f.valid_to_us)},
          {"superseded_by", StrOrNull(f.superseded_by)},
          {"supersedes", StrOrNull(f.supersedes)},
          {"created", FormatTimeMicros(f.created_us)},
          {"provenance",
           {{"artifact", StrOrNull(p.artifact)},
            {"span", Span(p.span_begin, p.span_end)},
            {"agent", p.agent},
            {"run_id", StrOrNull(p.run_id)},
            {"step_id", StrOrNull(p.step_id)},
            {"ledger_seq", p.ledger_seq},
            {"sources", sources}}}};
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
  std::cout << prefix << f.text << "\n      " << f.id << "  confidence "
            << Round(f.confidence, 100) << "  " << memory::ScopeName(f.scope);
  if (f.expires_us != 0) std::cout << "  expires " << FormatTimeMicros(f.expires_us);
  if (!f.superseded_by.empty()) std::cout << "  superseded by " << f.superseded_by;
  std::cout << "\n";
  for (const auto& s : f.provenance.sources) std::cout << "      source: " << SourceLine(s) << "\n";
}

json RateJson(const memory::RateStats& r) {
  return {{"name", r.name},
          {"retrievals", r.retrievals},
          {"hits", r.hits},
          {"misses", r.misses},
          {"pending", r.pending},
          {"facts_returned", r.facts_returned},
          {"facts_used", r.facts_used},
          {"hit_rate", Round(r.hit_rate)}};
}

// "90s", "15m", "2h", "7d", "1w" -> microseconds.
Result<int64_t> ParseDuration(const std::string& s) {
  if (s.size() < 2) return InvalidArgument("--ttl '" + s + "' needs a number and a unit (s, m, h, d, w)");
  char unit = s.back();
  std::string num = s.substr(0, s.size() - 1);
  if (num.empty() || num.find_first_not_of("0123456789") != std::string::npos || num.size() > 9) {
    return InvalidArgument("--ttl '" + s + "' is not a duration like 90s, 15m, 2h, 7d or 1w");
  }
  int64_t n = std::stoll(num);
  int64_t sec = 0;
  switch (unit) {
    case 's': sec = 1; break;
    case 'm': sec = 60; break;
    case 'h': sec = 3600; break;
    case 'd': sec = 86400; break;
    case 'w': sec = 7 * 86400; break;
    default:
      return InvalidArgument("--ttl '" + s + "' has an unknown unit '" + std::string(1, unit) +
                             "' (use s, m, h, d or w)");
  }
  if (n <= 0) return InvalidArgument("--ttl must be greater than zero");
  return n * sec * 1000000;
}

Result<std::pair<int64_t, int64_t>> ParseSpan(const std::string& s) {
  auto colon = s.find(':');
  auto digits = [](const std::string& x) {
    return !x.empty() && x.size() < 16 && x.find_first_not_of("0123456789") == std::string::npos;
  };
  if (colon == std::string::npos || !digits(s.substr(0, colon)) || !digits(s.substr(colon + 1))) {
    return InvalidArgument("--span '" + s + "' must be BEGIN:END byte offsets, e.g. 120:164");
  }
  return std::make_pair(static_cast<int64_t>(std::stoll(s.substr(0, colon))),
                        static_cast<int64_t>(std::stoll(s.substr(colon + 1))));
}

Status CheckConfidence(double c) {
  if (!(c >= 0.0 && c <= 1.0)) return InvalidArgument("--confidence must be between 0 and 1");
  return OkStatus();
}

}  // namespace

void RegisterMemoryCommands(CLI::App& app, Context* ctx) {
  {
    auto* cmd = app.add_subcommand(
        "remember",
        "Remember a fact about SUBJECT (a record id). Equal or near-duplicate facts of the same "
        "subject are merged into one fact with several sources");
    struct Opts {
      std::string subject, text, source, span, ttl, key, value, agent = "operator", run, step;
      double confidence = 1.0;
      bool json = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("subject", o->subject, "Record id the fact is about")->required();
    cmd->add_option("text", o->text, "The fact, in words (or use --key/--value)");
    cmd->add_option("--source", o->source, "Artifact address of the raw text it came from");
    cmd->add_option("--span", o->span, "BEGIN:END byte offsets of the fact in --source");
    cmd->add_option("--ttl", o->ttl, "Short-term: forget after this long (90s, 15m, 2h, 7d, 1w)");
    cmd->add_option("--confidence", o->confidence, "Confidence between 0 and 1 (default 1)");
    cmd->add_option("--key", o->key, "Key of a key/value fact (email, role, ...)");
    cmd->add_option("--value", o->value, "Value of a key/value fact");
    cmd->add_option("--agent", o->agent, "Who states it (default: operator)");
    cmd->add_option("--run", o->run, "Run id it belongs to");
    cmd->add_option("--step", o->step, "Step id it belongs to");
    cmd->add_flag("--json", o->json, "Print JSON");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      KEEL_RETURN_IF_ERROR(CheckConfidence(o->confidence));
      memory::NewFact f;
      f.subject = o->subject;
      f.text = o->text;
      f.key = o->key;
      f.value = o->value;
      if (f.text.empty() && (f.key.empty() || f.value.empty())) {
        return InvalidArgument("give the fact as TEXT, or as --key and --value");
      }
      f.confidence = o->confidence;
      f.source_artifact = o->source;
      if (!o->span.empty()) {
        KEEL_ASSIGN_OR_RETURN(auto sp, ParseSpan(o->span));
        f.span_begin = sp.first;
        f.span_end = sp.second;
      }
      if (!o->ttl.empty()) {
        KEEL_ASSIGN_OR_RETURN(f.ttl_us, ParseDuration(o->ttl));
        f.scope = memory::Scope::kShort;
      }
      f.by = {o->agent, o->run, o->step};
      KEEL_ASSIGN_OR_RETURN(auto ws, ctx->OpenWorkspace());
      memory::Memory mem(ws.get());
      KEEL_ASSIGN_OR_RETURN(auto r, mem.Remember(f));
      if (o->json) {
        std::cout << json{{"fact_id", r.fact_id},
                          {"merged", r.merged},
                          {"already_known", r.already_known}}
                         .dump(2)
                  << "\n";
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
      std::string query, subject, agent, workflow, run, step;
      int64_t budget = 1000;
      int limit = 20;
      bool json = false, no_log = false, no_short = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("query", o->query, "Free text; search syntax is treated as plain words")
        ->required();
    cmd->add_option("--subject", o->subject, "Only facts about this record id");
    cmd->add_option("--budget", o->budget, "Token budget (about 4 bytes per token; default 1000)");
    cmd->add_option("--limit", o->limit, "At most this many facts (default 20)");
    cmd->add_option("--agent", o->agent, "Agent the retrieval is for (for stats)");
    cmd->add_option("--workflow", o->workflow, "Workflow the retrieval is for (for stats)");
    cmd->add_option("--run", o->run, "Run id");
    cmd->add_option("--step", o->step, "Step id");
    cmd->add_flag("--no-short", o->no_short, "Leave out short-term facts");
    cmd->add_flag("--no-log", o->no_log, "Do not log the retrieval (read-only)");
    cmd->add_flag("--json", o->json, "Print JSON: facts each with a provenance object");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      if (o->budget <= 0) return InvalidArgument("--budget must be a positive number of tokens");
      if (o->limit <= 0) return InvalidArgument("--limit must be positive");
      KEEL_ASSIGN_OR_RETURN(auto ws, ctx->OpenWorkspace(o->no_log));
      memory::Memory mem(ws.get());
      memory::RecallQuery q;
      q.query = o->query;
      q.subject = o->subject;
      q.budget_tokens = o->budget;
      q.limit = o->limit;
      q.agent = o->agent;
      q.workflow = o->workflow;
      q.run_id = o->run;
      q.step_id = o->step;
      q.include_short = !o->no_short;
      q.log = !o->no_log;
      KEEL_ASSIGN_OR_RETURN(auto r, mem.Recall(q));
      if (o->json) {
        json facts = json::array();
        for (const auto& s : r.facts) {
          json j = FactJson(s.fact);
          j["score"] = Round(s.score);
          j["relevance"] = Round(s.relevance);
          j["recency"] = Round(s.recency);
          j["tokens"] = s.tokens;
          facts.push_back(std::move(j));
        }
        std::cout << json{{"retrieval_id", StrOrNull(r.retrieval_id)},
                          {"query", o->query},
                          {"subject", StrOrNull(o->subject)},
                          {"budget_tokens", o->budget},
                          {"tokens_used", r.tokens_used},
                          {"dropped_for_budget", r.dropped_for_budget},
                          {"facts", facts}}
                         .dump(2)
                  << "\n";
        return OkStatus();
      }
      if (r.facts.empty()) std::cout << "no facts match\n";
      for (size_t i = 0; i < r.facts.size(); ++i) {
        PrintFact(r.facts[i].fact, std::to_string(i + 1) + ". [" +
                                       std::to_string(Round(r.facts[i].score, 100)).substr(0, 4) +
                                       "] ");
      }
      std::cout << r.tokens_used << " of " << o->budget << " tokens";
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
    cmd->add_option("subject", o->subject, "Record id")->required();
    cmd->add_flag("--all", o->all, "Include superseded and expired facts");
    cmd->add_flag("--json", o->json, "Print JSON");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto ws, ctx->OpenWorkspace(true));
      memory::Memory mem(ws.get());
      KEEL_ASSIGN_OR_RETURN(auto facts, mem.FactsOf(o->subject, o->all));
      if (o->json) {
        json arr = json::array();
        for (const auto& f : facts) arr.push_back(FactJson(f));
        std::cout << arr.dump(2) << "\n";
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
      KEEL_ASSIGN_OR_RETURN(auto ws, ctx->OpenWorkspace(true));
      memory::Memory mem(ws.get());
      KEEL_ASSIGN_OR_RETURN(auto s, mem.Stats());
      if (*js) {
        json by_agent = json::array(), by_wf = json::array();
        for (const auto& r : s.by_agent) by_agent.push_back(RateJson(r));
        for (const auto& r : s.by_workflow) by_wf.push_back(RateJson(r));
        json total = RateJson(s.total);
        total.erase("name");
        std::cout << json{{"facts",
                           {{"active", s.facts_active},
                            {"superseded", s.facts_superseded},
                            {"expired", s.facts_expired},
                            {"sources", s.sources},
                            {"merged", s.merged_facts}}},
                          {"summaries", s.summaries},
                          {"decisions", s.decisions},
                          {"retrievals", total},
                          {"by_agent", by_agent},
                          {"by_workflow", by_wf}}
                         .dump(2)
                  << "\n";
        return OkStatus();
      }
      std::cout << "facts: " << s.facts_active << " active, " << s.facts_superseded
                << " superseded, " << s.facts_expired << " expired (not purged); "
                << s.merged_facts << " merged from several sources (" << s.sources
                << " sources)\n"
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
                    << r.pending << " pending, hit rate " << Round(r.hit_rate * 100, 10)
                    << "%, " << r.facts_used << "/" << r.facts_returned << " facts used\n";
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
      KEEL_ASSIGN_OR_RETURN(auto ws, ctx->OpenWorkspace());
      memory::Memory mem(ws.get());
      KEEL_ASSIGN_OR_RETURN(int64_t n, mem.PurgeExpired());
      std::cout << "purged " << n << " expired short-term facts\n";
      return OkStatus();
    }));
  }
  {
    auto* cmd = mem_cmd->add_subcommand(
        "used", "Record which facts of retrieval RETRIEVAL_ID a step used (none: a miss)");
    auto id = std::make_shared<std::string>();
    auto facts = std::make_shared<std::vector<std::string>>();
    cmd->add_option("retrieval", *id, "Retrieval id (ret_…) printed by recall")->required();
    cmd->add_option("facts", *facts, "Ids of the facts used");
    cmd->callback(Run(ctx, [ctx, id, facts]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto ws, ctx->OpenWorkspace());
      memory::Memory mem(ws.get());
      KEEL_RETURN_IF_ERROR(mem.MarkUsed(*id, *facts));
      std::cout << "marked " << facts->size() << " facts used by " << *id << "\n";
      return OkStatus();
    }));
  }
  {
    auto* cmd = mem_cmd->add_subcommand(
        "extract",
        "Extract facts (people, roles, companies, emails, phones, money, dates, URLs) from a raw "
        "text artifact into SUBJECT's memory. Refused for text keel generated");
    struct Opts {
      std::string artifact, subject, agent = "offline", run, step;
      bool json = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("artifact", o->artifact, "Artifact address of the raw text")->required();
    cmd->add_option("--subject", o->subject, "Record id the facts are about")->required();
    cmd->add_option("--agent", o->agent, "Extracting agent name (default: offline)");
    cmd->add_option("--run", o->run, "Run id");
    cmd->add_option("--step", o->step, "Step id");
    cmd->add_flag("--json", o->json, "Print JSON");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto ws, ctx->OpenWorkspace());
      memory::Memory mem(ws.get());
      KEEL_ASSIGN_OR_RETURN(auto rs, mem.ExtractFrom(o->artifact, o->subject,
                                                     {o->agent, o->run, o->step}));
      int64_t added = 0, merged = 0;
      json arr = json::array();
      for (const auto& r : rs) {
        (r.merged ? merged : added) += 1;
        arr.push_back({{"fact_id", r.fact_id}, {"merged", r.merged}});
      }
      if (o->json) {
        std::cout << arr.dump(2) << "\n";
      } else {
        std::cout << added << " new facts, " << merged << " merged into known facts\n";
      }
      return OkStatus();
    }));
  }
  {
    auto* cmd = mem_cmd->add_subcommand(
        "supersede", "Replace fact FACT_ID by a newer TEXT; the old fact is kept, marked");
    struct Opts {
      std::string id, text, reason, agent = "operator";
      double confidence = 1.0;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("fact", o->id, "The fact to replace")->required();
    cmd->add_option("text", o->text, "The newer fact")->required();
    cmd->add_option("--reason", o->reason, "Why")->required();
    cmd->add_option("--confidence", o->confidence, "Confidence of the new fact (default 1)");
    cmd->add_option("--agent", o->agent, "Who states it (default: operator)");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      KEEL_RETURN_IF_ERROR(CheckConfidence(o->confidence));
      KEEL_ASSIGN_OR_RETURN(auto ws, ctx->OpenWorkspace());
      memory::Memory mem(ws.get());
      memory::NewFact f;
      f.text = o->text;
      f.confidence = o->confidence;
      f.by.agent = o->agent;
      KEEL_ASSIGN_OR_RETURN(std::string id, mem.Supersede(o->id, f, o->reason));
      std::cout << id << " (supersedes " << o->id << ")\n";
      return OkStatus();
    }));
  }
  {
    auto* cmd = mem_cmd->add_subcommand(
        "summary", "Show SUBJECT's long-term summary, or store TEXT (@file, - for stdin) as its "
                   "next version");
    struct Opts {
      std::string subject, text, agent = "operator";
      bool json = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("subject", o->subject, "Record id")->required();
    cmd->add_option("text", o->text, "New summary text");
    cmd->add_option("--agent", o->agent, "Author (default: operator)");
    cmd->add_flag("--json", o->json, "Print JSON");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      memory::Summary s;
      if (!o->text.empty()) {
        KEEL_ASSIGN_OR_RETURN(std::string text, TextOrFile(o->text, 1 << 20));
        KEEL_ASSIGN_OR_RETURN(auto ws, ctx->OpenWorkspace());
        memory::Memory mem(ws.get());
        KEEL_ASSIGN_OR_RETURN(s, mem.PutSummary(o->subject, text, {o->agent, "", ""}));
      } else {
        KEEL_ASSIGN_OR_RETURN(auto ws, ctx->OpenWorkspace(true));
        memory::Memory mem(ws.get());
        KEEL_ASSIGN_OR_RETURN(auto latest, mem.LatestSummary(o->subject));
        if (!latest) return NotFound("no summary of " + o->subject + " yet");
        s = *latest;
      }
      if (o->json) {
        std::cout << json{{"subject", s.subject},
                          {"version", s.version},
                          {"artifact", s.artifact},
                          {"parent", StrOrNull(s.parent_artifact)},
                          {"agent", s.by.agent},
                          {"created", FormatTimeMicros(s.created_us)},
                          {"text", s.text}}
                         .dump(2)
                  << "\n";
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
    cmd->add_option("subject", o->subject, "Record id")->required();
    cmd->add_flag("--json", o->json, "Print JSON");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto ws, ctx->OpenWorkspace(true));
      memory::Memory mem(ws.get());
      KEEL_ASSIGN_OR_RETURN(auto ds, mem.Decisions(o->subject));
      json arr = json::array();
      for (const auto& d : ds) {
        if (o->json) {
          arr.push_back({{"id", d.id},
                         {"decision", d.decision},
                         {"decided_by", d.decided_by},
                         {"reason", d.reason},
                         {"facts", d.fact_ids},
                         {"run_id", StrOrNull(d.run_id)},
                         {"step_id", StrOrNull(d.step_id)},
                         {"time", FormatTimeMicros(d.time_us)},
                         {"ledger_seq", d.ledger_seq}});
        } else {
          std::cout << FormatTimeMicros(d.time_us).substr(0, 19) << "Z  " << d.decided_by
                    << ": " << d.decision << "\n    why: " << d.reason << "\n";
          for (const auto& f : d.fact_ids) std::cout << "    from " << f << "\n";
        }
      }
      if (o->json) std::cout << arr.dump(2) << "\n";
      if (!o->json && ds.empty()) std::cout << "no decisions about " << o->subject << "\n";
      return OkStatus();
    }));
  }
}

}  // namespace keel::cli
