#include "app/memory.h"

#include <utility>

namespace keel::app {

namespace {

// "90s", "15m", "2h", "7d", "1w" -> microseconds.
Result<int64_t> ParseDuration(const std::string& s) {
  if (s.size() < 2)
    return InvalidArgument("--ttl '" + s + "' needs a number and a unit (s, m, h, d, w)");
  char unit = s.back();
  std::string num = s.substr(0, s.size() - 1);
  if (num.empty() || num.find_first_not_of("0123456789") != std::string::npos || num.size() > 9) {
    return InvalidArgument("--ttl '" + s + "' is not a duration like 90s, 15m, 2h, 7d or 1w");
  }
  int64_t n = std::stoll(num);
  int64_t sec = 0;
  switch (unit) {
    case 's':
      sec = 1;
      break;
    case 'm':
      sec = 60;
      break;
    case 'h':
      sec = 3600;
      break;
    case 'd':
      sec = 86400;
      break;
    case 'w':
      sec = 7 * 86400;
      break;
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

Result<memory::RememberResult> Remember(Runtime& rt, const RememberRequest& req) {
  KEEL_RETURN_IF_ERROR(CheckConfidence(req.confidence));
  memory::NewFact f;
  f.subject = req.subject;
  f.text = req.text;
  f.key = req.key;
  f.value = req.value;
  if (f.text.empty() && (f.key.empty() || f.value.empty())) {
    return InvalidArgument("give the fact as TEXT, or as --key and --value");
  }
  f.confidence = req.confidence;
  f.source_artifact = req.source;
  if (!req.span.empty()) {
    KEEL_ASSIGN_OR_RETURN(auto sp, ParseSpan(req.span));
    f.span_begin = sp.first;
    f.span_end = sp.second;
  }
  if (!req.ttl.empty()) {
    KEEL_ASSIGN_OR_RETURN(f.ttl_us, ParseDuration(req.ttl));
    f.scope = memory::Scope::kShort;
  }
  f.by = req.by;
  f.free_subject = req.free_subject;  // else the memory layer refuses a subject that is no record
  return rt.memory().Remember(f);
}

Result<memory::RecallResult> Recall(Runtime& rt, const RecallRequest& req) {
  if (req.budget_tokens <= 0) {
    return InvalidArgument("--budget must be a positive number of tokens");
  }
  if (req.limit <= 0) return InvalidArgument("--limit must be positive");
  memory::RecallQuery q;
  q.query = req.query;
  q.subject = req.subject;
  q.budget_tokens = req.budget_tokens;
  q.limit = req.limit;
  q.agent = req.agent;
  q.workflow = req.workflow;
  q.run_id = req.run_id;
  q.step_id = req.step_id;
  q.include_short = req.include_short;
  q.log = req.log;
  return rt.memory().Recall(q);
}

Result<std::vector<memory::Fact>> ListFacts(Runtime& rt, const std::string& subject, bool all) {
  return rt.memory().FactsOf(subject, all);
}

Result<memory::MemoryStats> GetMemoryStats(Runtime& rt) {
  return rt.memory().Stats();
}

Result<int64_t> PurgeExpiredFacts(Runtime& rt) {
  return rt.memory().PurgeExpired();
}

Status MarkFactsUsed(Runtime& rt, const std::string& retrieval_id,
                     const std::vector<std::string>& fact_ids) {
  return rt.memory().MarkUsed(retrieval_id, fact_ids);
}

Result<std::vector<memory::RememberResult>> ExtractFacts(Runtime& rt, const ExtractRequest& req) {
  return rt.memory().ExtractFrom(req.artifact, req.subject, req.by, req.free_subject);
}

Result<std::string> SupersedeFact(Runtime& rt, const SupersedeRequest& req) {
  KEEL_RETURN_IF_ERROR(CheckConfidence(req.confidence));
  memory::NewFact f;
  f.text = req.text;
  f.confidence = req.confidence;
  f.by.agent = req.agent;
  return rt.memory().Supersede(req.fact_id, f, req.reason);
}

Result<memory::Summary> PutSummary(Runtime& rt, const std::string& subject, const std::string& text,
                                   const std::string& agent) {
  return rt.memory().PutSummary(subject, text, {agent, "", ""});
}

Result<memory::Summary> LatestSummary(Runtime& rt, const std::string& subject) {
  KEEL_ASSIGN_OR_RETURN(auto latest, rt.memory().LatestSummary(subject));
  if (!latest) return NotFound("no summary of " + subject + " yet");
  return *latest;
}

Result<std::vector<memory::Decision>> ListDecisions(Runtime& rt, const std::string& subject) {
  return rt.memory().Decisions(subject);
}

}  // namespace keel::app
