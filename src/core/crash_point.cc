#include "core/crash_point.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

namespace keel {
namespace {

struct CrashConfig {
  bool enabled = false;
  std::mutex mu;
  std::map<std::string, long> target;  // name -> hit number that crashes
  std::map<std::string, long> hits;
};

CrashConfig& Config() {
  static CrashConfig* c = [] {
    auto* cfg = new CrashConfig;
    const char* env = std::getenv("KEEL_CRASH_AT");
    if (env == nullptr || *env == '\0') return cfg;
    std::string spec = env;
    size_t start = 0;
    while (start <= spec.size()) {
      size_t end = spec.find(',', start);
      if (end == std::string::npos) end = spec.size();
      std::string item = spec.substr(start, end - start);
      if (!item.empty()) {
        long hit = 1;
        auto colon = item.rfind(':');
        if (colon != std::string::npos) {
          hit = std::strtol(item.c_str() + colon + 1, nullptr, 10);
          item.resize(colon);
        }
        cfg->target[item] = hit < 1 ? 1 : hit;
      }
      start = end + 1;
    }
    cfg->enabled = !cfg->target.empty();
    return cfg;
  }();
  return *c;
}

}  // namespace

bool CrashPointsEnabled() {
  return Config().enabled;
}

void MaybeCrash(const char* name) {
  CrashConfig& c = Config();
  std::lock_guard<std::mutex> l(c.mu);
  auto it = c.target.find(name);
  if (it == c.target.end()) return;
  if (++c.hits[name] == it->second) {
    static const char kMsg[] = "keel: crash point reached\n";
    ssize_t ignored = ::write(2, kMsg, sizeof kMsg - 1);
    (void)ignored;
    ::kill(::getpid(), SIGKILL);
    ::_exit(137);
  }
}

}  // namespace keel
