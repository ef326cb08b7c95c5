// Memory benchmark: ingest N synthetic facts (batched transactions, one ledger entry per fact),
// then measure recall latency over Q queries, and the memory and disk used.
//
//   scripts/bench memory [--facts N] [--queries Q] [--batch B] [--logged L] [--window C]
//                        [--and-window F] [--keep | --reuse WORKSPACE]   (--help: all flags)
//
// Facts are about N/10 subjects ("rec_000123"), ten facts each, from templates over a
// vocabulary of people, invented company names, roles, cities and products, so words range
// from rare (a company name) to common ("budget" is in ~10% of facts). A third of the queries
// name a subject (what agents do: "facts about this lead relevant to X"), a third search
// everything with a rare word, a third with common words only (the worst case).
// Recall is measured unlogged (the search itself) and, on a sample, logged (one more write
// transaction with its fsync). Ends with one line of key=value figures.
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "bench_flags.h"
#include "core/clock.h"
#include "core/fs.h"
#include "core/random.h"
#include "memory/memory.h"
#include "store/facts.h"
#include "store/workspace.h"

namespace {

using Clock = std::chrono::steady_clock;

const char* kFirst[] = {"Jane",  "John",  "Marta", "Tom",    "Lena",  "Priya", "Alan",
                        "Sofia", "Omar",  "Chen",  "Ines",   "Lukas", "Amara", "Noah",
                        "Eva",   "Mateo", "Yuki",  "Fatima", "Oskar", "Clara", "Ravi",
                        "Hana",  "Felix", "Nora",  "Diego",  "Mia",   "Ivan",  "Zara"};
const char* kLast[] = {"Doe",    "Silva",  "Becker", "Fischer", "Nair",   "Grant",  "Okafor",
                       "Tanaka", "Muller", "Rossi",  "Novak",   "Larsen", "Dubois", "Kowalski",
                       "Haddad", "Moreau", "Costa",  "Berg",    "Ahmed",  "Walsh",  "Ortiz",
                       "Keller", "Sato",   "Meyer",  "Lopez",   "Jensen", "Varga",  "Lindqvist"};
const char* kRoles[] = {"CEO",
                        "CFO",
                        "CTO",
                        "Head of Sales",
                        "founder",
                        "COO",
                        "Marketing Manager",
                        "Office Manager",
                        "Director",
                        "Procurement Lead",
                        "Product Manager",
                        "owner"};
const char* kCities[] = {"Lisbon", "Berlin",  "Porto",   "Madrid", "Vienna", "Dublin",
                         "Prague", "Krakow",  "Lyon",    "Turin",  "Ghent",  "Aarhus",
                         "Bergen", "Tallinn", "Seville", "Bristol"};
const char* kProducts[] = {"pumps",   "turbines",  "valves",    "sensors",   "bearings",
                           "website", "branding",  "packaging", "catering",  "cabinets",
                           "solar",   "forklifts", "lighting",  "flooring",  "signage",
                           "audit",   "payroll",   "hosting",   "analytics", "training"};
const char* kSyl[] = {"nor", "va",  "tek", "bri", "lo",  "zen", "kor", "mi",  "sta", "lux",
                      "pra", "del", "ven", "tra", "qui", "fal", "ber", "ox",  "lin", "dar",
                      "sol", "ka",  "ru",  "mon", "ter", "gal", "pix", "ron", "wel", "fin"};

std::string CompanyName(uint64_t k) {
  // Three syllables from 30: 27,000 names, most of them distinct words.
  std::string s = kSyl[k % 30];
  s += kSyl[(k / 30) % 30];
  s += kSyl[(k / 900) % 30];
  s[0] = static_cast<char>(s[0] - 32);
  return s;
}

struct Subject {
  std::string id;
  std::string company;
  std::string first, last, role, city, product;
};

Subject MakeSubject(uint64_t i, keel::Random& r) {
  Subject s;
  char buf[32];
  std::snprintf(buf, sizeof buf, "rec_%07llu", static_cast<unsigned long long>(i));
  s.id = buf;
  s.company = CompanyName(r.Uniform(27000));
  s.first = kFirst[r.Uniform(std::size(kFirst))];
  s.last = kLast[r.Uniform(std::size(kLast))];
  s.role = kRoles[r.Uniform(std::size(kRoles))];
  s.city = kCities[r.Uniform(std::size(kCities))];
  s.product = kProducts[r.Uniform(std::size(kProducts))];
  return s;
}

std::string FactText(const Subject& s, int k, keel::Random& r) {
  std::string lc = s.company;
  lc[0] = static_cast<char>(lc[0] + 32);
  std::string first_lc = s.first;
  first_lc[0] = static_cast<char>(first_lc[0] + 32);
  switch (k) {
    case 0:
      return s.first + " " + s.last + " is " + s.role + " at " + s.company;
    case 1:
      return "email: " + first_lc + "@" + lc + ".example";
    case 2:
      return "phone: +351 21 " + std::to_string(100 + r.Uniform(900)) + " " +
             std::to_string(1000 + r.Uniform(9000));
    case 3:
      return s.company + " is based in " + s.city;
    case 4:
      return s.company + " budget for " + s.product + " is " +
             std::to_string(1000 * (1 + r.Uniform(90))) + " EUR";
    case 5:
      return s.company + " asked for a quote on " + std::to_string(2 + r.Uniform(200)) + " " +
             s.product;
    case 6:
      return "meeting with " + s.first + " on 2026-0" + std::to_string(1 + r.Uniform(9)) + "-1" +
             std::to_string(r.Uniform(10)) + " about " + s.product;
    case 7:
      return s.company + " has " + std::to_string(3 + r.Uniform(400)) + " employees";
    case 8:
      return s.first + " prefers " + (r.Uniform(2) ? "email" : "phone") + " contact in the " +
             (r.Uniform(2) ? "morning" : "afternoon");
    default:
      return s.company + " pays invoices within " + std::to_string(7 * (1 + r.Uniform(8))) +
             " days";
  }
}

int64_t ReadStatusKb(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key, 0) == 0) return std::atoll(line.c_str() + std::strlen(key));
  }
  return -1;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(std::lround(p * static_cast<double>(v.size() - 1)));
  return v[std::min(i, v.size() - 1)];
}

// The one-minute load average: the figures mean little on a busy machine, so they say it.
double Load1() {
  double l[1] = {-1};
  return getloadavg(l, 1) == 1 ? l[0] : -1;
}

int64_t FileSize(const std::string& p) {
  auto s = keel::DefaultFileSystem()->FileSize(p);
  return s.ok() ? static_cast<int64_t>(*s) : 0;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t n_facts = 1000000, n_queries = 2000, batch = 10000, n_logged = 200;
  int64_t and_window = keel::memory::MemoryOptions{}.and_window_facts;
  int64_t window = keel::memory::MemoryOptions{}.candidate_window;
  bool keep = false;
  std::string reuse;  // an existing workspace from --keep: skip the ingest
  keel::bench::Flags flags("memory bench", "scripts/bench memory");
  flags.Int("--facts", &n_facts, 10, 100000000, "facts to ingest");
  flags.Int("--queries", &n_queries, 1, 100000000, "recall queries, unlogged");
  flags.Int("--batch", &batch, 1, 100000000, "facts per ingest transaction");
  flags.Int("--logged", &n_logged, 0, 100000000, "of the queries, how many also run logged");
  flags.Int("--window", &window, 1, 1000000000, "recall's candidate window");
  flags.Int("--and-window", &and_window, 1, 1000000000, "recall's AND-query window, in facts");
  flags.Bool("--keep", &keep, "keep the workspace (its path is printed) for --reuse");
  flags.Str("--reuse", &reuse, "WORKSPACE", "a workspace kept with --keep: skip the ingest");
  flags.Parse(argc, argv);
  if (keep && !reuse.empty()) flags.Fail("--keep and --reuse exclude each other");

  const char* base_env = std::getenv("KEEL_BENCH_DIR");
  std::string base = base_env && *base_env ? base_env : ".";
  std::string tmpl = base + "/keel-bench-memory-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  std::string dir = reuse.empty() ? std::string(buf.data()) + "/ws" : reuse;

  keel::SeededRandom ids(1);
  keel::Env env;
  env.random = &ids;
  if (!reuse.empty()) {
    keep = true;
  } else if (auto s = keel::store::Workspace::Init(dir, {}, env); !s.ok()) {
    std::fprintf(stderr, "init: %s\n", s.ToString().c_str());
    return 1;
  }
  auto ws = keel::store::Workspace::Open(dir, {}, env);
  if (!ws.ok()) {
    std::fprintf(stderr, "open: %s\n", ws.status().ToString().c_str());
    return 1;
  }
  keel::memory::MemoryOptions mopts;
  mopts.and_window_facts = static_cast<int>(and_window);
  mopts.candidate_window = static_cast<int>(window);
  keel::memory::Memory mem(ws->get(), mopts);

  // --- ingest
  keel::SeededRandom gen(2026);
  int64_t n_subjects = n_facts / 10;
  std::vector<Subject> subjects;
  subjects.reserve(static_cast<size_t>(n_subjects));
  for (int64_t i = 0; i < n_subjects; ++i) subjects.push_back(MakeSubject(i, gen));
  std::printf("memory benchmark: %lld facts about %lld subjects, batches of %lld\n",
              static_cast<long long>(n_facts), static_cast<long long>(n_subjects),
              static_cast<long long>(batch));
  auto t0 = Clock::now();
  int64_t done = 0, merged = 0;
  std::vector<keel::memory::NewFact> pending;
  pending.reserve(static_cast<size_t>(batch));
  for (int64_t i = 0; reuse.empty() && i < n_facts; ++i) {
    // Subject by subject, as facts arrive from one page or email at a time.
    const Subject& s = subjects[static_cast<size_t>(i / 10)];
    keel::memory::NewFact f;
    f.subject = s.id;
    f.text = FactText(s, static_cast<int>(i % 10), gen);
    f.confidence = 0.5 + 0.5 * gen.NextDouble();
    f.by = {"research", "run_bench", "extract"};
    f.free_subject = true;  // synthetic subjects: creating records would add to what is timed
    pending.push_back(std::move(f));
    if (static_cast<int64_t>(pending.size()) == batch || i + 1 == n_facts) {
      auto r = mem.RememberAll(pending);
      if (!r.ok()) {
        std::fprintf(stderr, "ingest: %s\n", r.status().ToString().c_str());
        return 1;
      }
      for (const auto& x : *r) merged += x.merged ? 1 : 0;
      done += static_cast<int64_t>(pending.size());
      pending.clear();
      if (done % (n_facts / 10 > 0 ? (n_facts / 10 / batch) * batch : batch) == 0 ||
          done == n_facts) {
        double s = std::chrono::duration<double>(Clock::now() - t0).count();
        std::printf("  %9lld facts  %7.1f s  %9.0f facts/s\n", static_cast<long long>(done), s,
                    static_cast<double>(done) / s);
        std::fflush(stdout);
      }
    }
  }
  double ingest_s = std::chrono::duration<double>(Clock::now() - t0).count();
  double ingest_rate = static_cast<double>(n_facts) / ingest_s;
  int64_t rss_after_ingest_kb = ReadStatusKb("VmRSS:");

  // --- recall
  // Three classes of query (docs/benchmarks.md): `subject`, restricted to one subject (what
  // agents do); `rare`, over everything with at least one rare word (a company or a surname
  // with a first name); `frequent`, over everything with only common words ("quote", "phone",
  // a product, a city: 0.6-15% of all facts each), the worst case for candidate generation.
  enum Class { kSubject, kRare, kFrequent, kClasses };
  const char* kClassNames[kClasses] = {"subject", "rare", "frequent"};
  std::vector<keel::memory::RecallQuery> queries;
  std::vector<int> classes;
  keel::SeededRandom qgen(99);
  for (int64_t i = 0; i < n_queries; ++i) {
    const Subject& s =
        subjects[static_cast<size_t>(qgen.Uniform(static_cast<uint64_t>(n_subjects)))];
    keel::memory::RecallQuery q;
    q.budget_tokens = 400;
    q.limit = 10;
    q.log = false;
    int cls = static_cast<int>(i % kClasses);
    if (cls == kFrequent) {
      switch (qgen.Uniform(4)) {
        case 0:
          q.query = "quote " + std::string(s.product) + " " + s.city;
          break;
        case 1:
          q.query = "phone " + s.first;
          break;
        case 2:
          q.query = "budget " + std::string(s.product) + " EUR";
          break;
        default:
          q.query = s.first + " prefers email in the morning";
          break;
      }
    } else {
      switch (qgen.Uniform(cls == kRare ? 4 : 6)) {
        case 0:
          q.query = "Who is the " + s.role + " at " + s.company + "?";
          break;
        case 1:
          q.query = s.company + " budget " + s.product;
          break;
        case 2:
          q.query = s.first + " " + s.last + " email";
          break;
        case 3:
          q.query = "how does " + s.company + " pay invoices";
          break;
        case 4:
          q.query = "quote " + s.product + " " + s.city;
          break;
        default:
          q.query = "phone " + s.first;
          break;
      }
    }
    if (cls == kSubject) q.subject = s.id;
    queries.push_back(std::move(q));
    classes.push_back(cls);
  }
  // Warm the page cache and statement cache the way a long-running process would be.
  for (size_t i = 0; i < std::min<size_t>(50, queries.size()); ++i) (void)mem.Recall(queries[i]);

  // Wall time and this thread's CPU time: on a shared machine the wall-clock tail is mostly
  // time spent waiting for a core; the CPU-time tail is what the recall itself costs.
  auto cpu_ms = [] {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
  };
  std::vector<double> lat, lat_subject, lat_global, lat_cpu;
  std::vector<double> by_class[kClasses], cpu_by_class[kClasses];
  int64_t returned = 0, empty = 0;
  for (size_t qi = 0; qi < queries.size(); ++qi) {
    const auto& q = queries[qi];
    auto a = Clock::now();
    double c0 = cpu_ms();
    auto r = mem.Recall(q);
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - a).count();
    lat_cpu.push_back(cpu_ms() - c0);
    by_class[classes[qi]].push_back(ms);
    cpu_by_class[classes[qi]].push_back(lat_cpu.back());
    if (!r.ok()) {
      std::fprintf(stderr, "recall '%s': %s\n", q.query.c_str(), r.status().ToString().c_str());
      return 1;
    }
    returned += static_cast<int64_t>(r->facts.size());
    if (r->facts.empty()) ++empty;
    lat.push_back(ms);
    (q.subject.empty() ? lat_global : lat_subject).push_back(ms);
    if (std::getenv("KEEL_BENCH_SLOW") != nullptr &&
        lat_cpu.back() > std::atof(std::getenv("KEEL_BENCH_SLOW"))) {
      std::printf("  slow: %.2f ms (CPU %.2f ms)  subject=%s  query=%s\n", ms, lat_cpu.back(),
                  q.subject.c_str(), q.query.c_str());
    }
  }
  std::vector<double> lat_logged;
  for (int64_t i = 0; i < n_logged && i < n_queries; ++i) {
    auto q = queries[static_cast<size_t>(i)];
    q.log = true;
    q.agent = "bench";
    auto a = Clock::now();
    auto r = mem.Recall(q);
    lat_logged.push_back(std::chrono::duration<double, std::milli>(Clock::now() - a).count());
    if (!r.ok()) {
      std::fprintf(stderr, "logged recall: %s\n", r.status().ToString().c_str());
      return 1;
    }
  }

  auto fp = keel::store::MeasureFootprint(**ws);
  int64_t db_file = FileSize(dir + "/keel.db") + FileSize(dir + "/keel.db-wal");
  int64_t rss_kb = ReadStatusKb("VmRSS:");
  int64_t hwm_kb = ReadStatusKb("VmHWM:");

  double p50 = Percentile(lat, 0.50), p99 = Percentile(lat, 0.99), pmax = Percentile(lat, 1.0);
  std::printf("\ningest: %lld facts in %.1f s = %.0f facts/s (%lld merged as duplicates)\n",
              static_cast<long long>(n_facts), ingest_s, ingest_rate,
              static_cast<long long>(merged));
  std::printf(
      "recall (unlogged, %lld queries): p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms\n",
      static_cast<long long>(n_queries), p50, Percentile(lat, 0.90), p99, pmax);
  std::printf("  CPU time per recall: p50 %.3f ms  p99 %.3f ms  max %.3f ms\n",
              Percentile(lat_cpu, 0.5), Percentile(lat_cpu, 0.99), Percentile(lat_cpu, 1.0));
  std::printf(
      "  with a subject: p50 %.3f ms  p99 %.3f ms;  all subjects: p50 %.3f ms  p99 %.3f ms\n",
      Percentile(lat_subject, 0.5), Percentile(lat_subject, 0.99), Percentile(lat_global, 0.5),
      Percentile(lat_global, 0.99));
  for (int c = 0; c < kClasses; ++c) {
    std::printf("  %-8s (%4zu): wall p50 %.3f ms  p99 %.3f ms;  CPU p50 %.3f ms  p99 %.3f ms\n",
                kClassNames[c], by_class[c].size(), Percentile(by_class[c], 0.5),
                Percentile(by_class[c], 0.99), Percentile(cpu_by_class[c], 0.5),
                Percentile(cpu_by_class[c], 0.99));
  }
  std::printf("  facts returned per query: %.1f; queries with no result: %lld\n",
              static_cast<double>(returned) / static_cast<double>(n_queries),
              static_cast<long long>(empty));
  std::printf(
      "recall (logged: one write transaction + fsync, %zu queries): p50 %.3f ms  p99 %.3f ms\n",
      lat_logged.size(), Percentile(lat_logged, 0.5), Percentile(lat_logged, 0.99));
  std::printf("disk: database %.1f MB (file + WAL %.1f MB), FTS index %.1f MB\n",
              static_cast<double>(fp.ok() ? fp->db_bytes : 0) / 1e6,
              static_cast<double>(db_file) / 1e6,
              static_cast<double>(fp.ok() ? fp->fts_bytes : -1) / 1e6);
  std::printf("memory: RSS %.1f MB after ingest, %.1f MB now, peak %.1f MB\n",
              static_cast<double>(rss_after_ingest_kb) / 1024, static_cast<double>(rss_kb) / 1024,
              static_cast<double>(hwm_kb) / 1024);
  if (!keep) {
    ws->reset();
    std::string cmd = "rm -rf '" + std::string(buf.data()) + "'";
    if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", buf.data());
  } else {
    std::printf("kept: %s\n", dir.c_str());
  }
  std::printf(
      "facts=%lld ingest_facts_per_s=%.0f recall_p50_ms=%.3f recall_p99_ms=%.3f "
      "recall_cpu_p99_ms=%.3f recall_subject_p99_ms=%.3f recall_global_p99_ms=%.3f "
      "recall_logged_p99_ms=%.3f recall_cpu_p50_ms=%.3f "
      "subject_p50_ms=%.3f subject_p99_ms=%.3f subject_cpu_p99_ms=%.3f "
      "rare_p50_ms=%.3f rare_p99_ms=%.3f rare_cpu_p99_ms=%.3f "
      "frequent_p50_ms=%.3f frequent_p99_ms=%.3f frequent_cpu_p99_ms=%.3f load1=%.2f "
      "db_mb=%.1f fts_mb=%.1f rss_mb=%.1f peak_rss_mb=%.1f\n",
      static_cast<long long>(n_facts), ingest_rate, p50, p99, Percentile(lat_cpu, 0.99),
      Percentile(lat_subject, 0.99), Percentile(lat_global, 0.99), Percentile(lat_logged, 0.99),
      Percentile(lat_cpu, 0.5), Percentile(by_class[kSubject], 0.5),
      Percentile(by_class[kSubject], 0.99), Percentile(cpu_by_class[kSubject], 0.99),
      Percentile(by_class[kRare], 0.5), Percentile(by_class[kRare], 0.99),
      Percentile(cpu_by_class[kRare], 0.99), Percentile(by_class[kFrequent], 0.5),
      Percentile(by_class[kFrequent], 0.99), Percentile(cpu_by_class[kFrequent], 0.99), Load1(),
      static_cast<double>(fp.ok() ? fp->db_bytes : 0) / 1e6,
      static_cast<double>(fp.ok() ? fp->fts_bytes : -1) / 1e6, static_cast<double>(rss_kb) / 1024,
      static_cast<double>(hwm_kb) / 1024);
  return 0;
}
