// Random: the only source of randomness in keel (ids, jitter, nonces come through it).
//
// SecureRandom draws from the OS CSPRNG and is what production uses; SeededRandom is a
// deterministic generator for tests and simulations (the same seed gives the same run).
// Key material for the vault and signing keys always comes from SecureRandom, never from an
// injected generator.
//
// Thread-safety: all methods are safe to call from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>

namespace keel {

class Random {
 public:
  virtual ~Random() = default;
  virtual uint64_t Next64() = 0;
  virtual void Fill(void* buf, size_t n);
  // Uniform in [0, 1).
  double NextDouble();
  // Uniform in [0, n) for n > 0.
  uint64_t Uniform(uint64_t n);
};

class SecureRandom final : public Random {
 public:
  uint64_t Next64() override;
  void Fill(void* buf, size_t n) override;
};
Random* SystemRandom();

class SeededRandom final : public Random {
 public:
  explicit SeededRandom(uint64_t seed) : state_(seed) {}
  uint64_t Next64() override;

 private:
  std::mutex mu_;
  uint64_t state_;
};

// A new id "<prefix>_<26 chars of Crockford base32>": 48 bits of time (ms) then 80 random
// bits, so ids sort by creation time and never collide in practice.
std::string NewId(const std::string& prefix, int64_t now_micros, Random* random);

}  // namespace keel
