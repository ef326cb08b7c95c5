#include "core/random.h"

#include <openssl/rand.h>

#include <cstring>
#include <stdexcept>

namespace keel {

void Random::Fill(void* buf, size_t n) {
  auto* p = static_cast<unsigned char*>(buf);
  while (n > 0) {
    uint64_t v = Next64();
    size_t k = n < 8 ? n : 8;
    std::memcpy(p, &v, k);
    p += k;
    n -= k;
  }
}

double Random::NextDouble() {
  return static_cast<double>(Next64() >> 11) * 0x1.0p-53;
}

uint64_t Random::Uniform(uint64_t n) {
  if (n <= 1) return 0;
  // Rejection sampling avoids modulo bias.
  uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t v;
  do {
    v = Next64();
  } while (v >= limit);
  return v % n;
}

uint64_t SecureRandom::Next64() {
  uint64_t v;
  Fill(&v, sizeof v);
  return v;
}

void SecureRandom::Fill(void* buf, size_t n) {
  // RAND_bytes only fails when the OS entropy source is unusable; continuing would hand out
  // predictable ids and keys, so this is one of the few places that ends the process.
  if (RAND_bytes(static_cast<unsigned char*>(buf), static_cast<int>(n)) != 1) {
    throw std::runtime_error("keel: the OS random source failed");
  }
}

Random* SystemRandom() {
  static SecureRandom r;
  return &r;
}

uint64_t SeededRandom::Next64() {
  // splitmix64: small, fast and good enough for tests.
  std::lock_guard<std::mutex> l(mu_);
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::string NewId(const std::string& prefix, int64_t now_micros, Random* random) {
  static const char kAlphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
  unsigned char bytes[16];
  uint64_t ms = static_cast<uint64_t>(now_micros / 1000);
  for (int i = 0; i < 6; ++i) bytes[i] = static_cast<unsigned char>(ms >> (8 * (5 - i)));
  random->Fill(bytes + 6, 10);
  // 128 bits -> 26 base32 characters (the first carries 3 bits).
  std::string out = prefix;
  out += '_';
  unsigned __int128 v = 0;
  for (unsigned char b : bytes) v = (v << 8) | b;
  char chars[26];
  for (int i = 25; i >= 0; --i) {
    chars[i] = kAlphabet[static_cast<int>(v & 31)];
    v >>= 5;
  }
  out.append(chars, 26);
  return out;
}

}  // namespace keel
