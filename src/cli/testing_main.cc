// keel-testbin: the shipped `keel` plus what only tests may use (built only for tests, never
// installed). Crash, bench and CLI tests run it instead of `keel`:
// - the counting fake adapters `fake_keyed` (honours the idempotency key, like a payment
//   API) and `fake_smtp` (cannot deduplicate, like SMTP); with KEEL_FAKE_EFFECTS=FILE each
//   effect is appended (fsynced) to FILE so a test counts effects across SIGKILLs, and
//   KEEL_FAKE_DELAY_MS=N makes every call take N ms (to reach code that runs only during
//   long batches);
// - `keel debug append`, which prints acknowledgements for the ledger crash tests.
#include <cstdlib>

#include "cli/cli.h"
#include "flow/testing_adapters.h"

namespace keel::cli {
void RegisterDebugCommands(CLI::App& app, Context* ctx);  // testing_debug.cc
}

int main(int argc, char** argv) {
  using keel::flow::CountingAdapter;
  const char* fx = std::getenv("KEEL_FAKE_EFFECTS");
  const std::string effects = fx ? fx : "";
  const char* d = std::getenv("KEEL_FAKE_DELAY_MS");
  const int64_t delay_us = d != nullptr && std::atoi(d) > 0 ? int64_t{std::atoi(d)} * 1000 : 0;
  keel::cli::MainHooks hooks;
  for (auto [name, keyed] : {std::pair{"fake_keyed", true}, std::pair{"fake_smtp", false}}) {
    keel::app::AdapterFactory f;
    f.name = name;
    f.make = [name = std::string(name), keyed = keyed, effects,
              delay_us](const keel::Env& env) -> std::unique_ptr<keel::flow::ActionAdapter> {
      auto a = std::make_unique<CountingAdapter>(name, keyed, effects);
      if (delay_us > 0) a->set_delay(env.clock, delay_us);
      return a;
    };
    hooks.test_adapters.push_back(std::move(f));
  }
  hooks.extra_commands = keel::cli::RegisterDebugCommands;
  return keel::cli::Main(argc, argv, hooks);
}
