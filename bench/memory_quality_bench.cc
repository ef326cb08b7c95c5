// Memory quality evaluation: `scripts/bench memory-quality [--eval DIR]`.
//
// Reads tests/fixtures/memory-eval/eval.json: fictional documents with the facts a careful
// reader would extract, and questions with the fact that answers each. Scores
//  - extraction: precision and recall of the rule-based extractor (memory/extract.h) against
//    the expected facts (same kind and normalised value; a role also names its person), and
//  - retrieval: recall@k (k = 1, 3, 5): the share of questions whose answer is among the top k
//    facts of Memory::Recall, end to end (facts were extracted by ExtractFrom, so a fact the
//    extractor missed is a retrieval miss too).
// Prints the misses, a table, and one line of key=value figures.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "bench_flags.h"
#include "core/clock.h"
#include "core/random.h"
#include "memory/extract.h"
#include "memory/memory.h"
#include "store/artifacts.h"
#include "store/workspace.h"

namespace {

using keel::memory::NormalizeText;
using nlohmann::json;

std::string KeyOf(const std::string& kind) {
  if (kind == "money") return "amount";
  return kind;  // email, phone, date, url, company, person, role
}

bool Contains(const std::string& hay, const std::string& needle) {
  return (" " + NormalizeText(hay) + " ").find(" " + NormalizeText(needle) + " ") !=
         std::string::npos;
}

// Whether an extracted or stored fact (key, value, text) is the expected one.
bool Matches(const json& want, const std::string& key, const std::string& value,
             const std::string& text) {
  if (KeyOf(want["kind"]) != key) return false;
  if (NormalizeText(value) != NormalizeText(want["value"].get<std::string>())) return false;
  if (want.contains("person")) return Contains(text, want["person"].get<std::string>());
  return true;
}

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = std::string(KEEL_SOURCE_DIR) + "/tests/fixtures/memory-eval";
  keel::bench::Flags flags("memory quality bench", "scripts/bench memory-quality");
  flags.Str("--eval", &dir, "DIR", "folder holding eval.json");
  flags.Parse(argc, argv);
  std::string text = ReadAll(dir + "/eval.json");
  json eval = json::parse(text, nullptr, false);
  if (eval.is_discarded() || !eval.contains("documents") || !eval.contains("questions")) {
    std::fprintf(stderr, "memory_quality: %s/eval.json is missing or not valid\n", dir.c_str());
    return 65;
  }

  char tmpl[] = "/tmp/keel-bench-memq-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return 1;
  std::string ws_dir = std::string(tmpl) + "/ws";
  keel::SimulatedClock clock;
  keel::SeededRandom random(5);
  keel::Env env;
  env.clock = &clock;
  env.random = &random;
  if (auto s = keel::store::Workspace::Init(ws_dir, {}, env); !s.ok()) {
    std::fprintf(stderr, "init: %s\n", s.ToString().c_str());
    return 1;
  }
  auto ws = keel::store::Workspace::Open(ws_dir, {}, env);
  if (!ws.ok()) return 1;
  keel::memory::Memory mem(ws->get());

  // --- extraction
  int64_t extracted_total = 0, extracted_right = 0, expected_total = 0, expected_found = 0;
  std::printf("extraction misses and extra facts:\n");
  for (const auto& doc : eval["documents"]) {
    std::string file = doc["file"];
    std::string content = ReadAll(dir + "/" + file);
    auto facts = keel::memory::ExtractFacts(content);
    std::vector<bool> used(facts.size(), false);
    for (const auto& want : doc["expected"]) {
      ++expected_total;
      bool found = false;
      for (size_t i = 0; i < facts.size(); ++i) {
        if (!used[i] && Matches(want, facts[i].key, facts[i].value, facts[i].text)) {
          used[i] = true;
          found = true;
          break;
        }
      }
      if (found) {
        ++expected_found;
      } else {
        std::printf("  missed  %-24s %s\n", file.c_str(), want.dump().c_str());
      }
    }
    for (size_t i = 0; i < facts.size(); ++i) {
      ++extracted_total;
      if (used[i]) {
        ++extracted_right;
      } else {
        std::printf("  extra   %-24s %s=%s (%s)\n", file.c_str(), facts[i].kind.c_str(),
                    facts[i].value.c_str(), facts[i].text.c_str());
      }
    }
    // Store it and extract into memory.
    std::string hash;
    auto s = (*ws)->Write([&](keel::store::Txn& txn) -> keel::Status {
      keel::store::PutArtifactOptions o;
      o.media_type =
          file.size() > 5 && file.substr(file.size() - 5) == ".html" ? "text/html" : "text/plain";
      o.name = file;
      KEEL_ASSIGN_OR_RETURN(auto info, keel::store::PutArtifact(txn, content, o));
      hash = info.hash;
      return keel::OkStatus();
    });
    if (!s.ok()) {
      std::fprintf(stderr, "put %s: %s\n", file.c_str(), s.ToString().c_str());
      return 1;
    }
    auto r = mem.ExtractFrom(hash, doc["subject"], {"offline", "run_eval", "extract"},
                             /*free_subject=*/true);  // the corpus's subjects are labels
    if (!r.ok()) {
      std::fprintf(stderr, "extract %s: %s\n", file.c_str(), r.status().ToString().c_str());
      return 1;
    }
  }
  double precision = extracted_total ? static_cast<double>(extracted_right) / extracted_total : 0;
  double recall = expected_total ? static_cast<double>(expected_found) / expected_total : 0;

  // --- retrieval
  int64_t n_q = 0, at1 = 0, at3 = 0, at5 = 0;
  std::printf("\nretrieval misses (answer not in the top 5):\n");
  for (const auto& q : eval["questions"]) {
    ++n_q;
    keel::memory::RecallQuery rq;
    rq.query = q["q"];
    if (q.contains("subject")) rq.subject = q["subject"];
    rq.limit = 5;
    rq.budget_tokens = 2000;
    rq.log = false;
    auto r = mem.Recall(rq);
    if (!r.ok()) {
      std::fprintf(stderr, "recall '%s': %s\n", rq.query.c_str(), r.status().ToString().c_str());
      return 1;
    }
    int rank = 0;
    for (size_t i = 0; i < r->facts.size(); ++i) {
      const auto& f = r->facts[i].fact;
      if (Matches(q["answer"], f.key, f.value, f.text)) {
        rank = static_cast<int>(i) + 1;
        break;
      }
    }
    at1 += rank == 1;
    at3 += rank >= 1 && rank <= 3;
    at5 += rank >= 1 && rank <= 5;
    if (rank == 0) {
      std::printf("  %-50s %s top: %s\n", rq.query.c_str(),
                  rq.subject.empty() ? "(all)" : rq.subject.c_str(),
                  r->facts.empty() ? "(none)" : r->facts[0].fact.text.c_str());
    }
  }
  auto pct = [](int64_t a, int64_t b) { return b ? static_cast<double>(a) / b : 0.0; };
  std::printf("\n%zu documents, %lld expected facts, %lld extracted, %lld questions\n",
              eval["documents"].size(), static_cast<long long>(expected_total),
              static_cast<long long>(extracted_total), static_cast<long long>(n_q));
  std::printf("extraction: precision %.3f  recall %.3f\n", precision, recall);
  std::printf("retrieval:  recall@1 %.3f  recall@3 %.3f  recall@5 %.3f\n", pct(at1, n_q),
              pct(at3, n_q), pct(at5, n_q));
  ws->reset();
  std::string cmd = std::string("rm -rf '") + tmpl + "'";
  if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", tmpl);
  std::printf(
      "documents=%zu questions=%lld extraction_precision=%.3f extraction_recall=%.3f "
      "recall_at_1=%.3f recall_at_3=%.3f recall_at_5=%.3f\n",
      eval["documents"].size(), static_cast<long long>(n_q), precision, recall, pct(at1, n_q),
      pct(at3, n_q), pct(at5, n_q));
  return 0;
}
