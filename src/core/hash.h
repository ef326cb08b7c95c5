// SHA-256 and hex helpers (OpenSSL underneath).
//
// Thread-safety: free functions and a value type; Sha256 instances are single-threaded.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace keel {

using Digest = std::array<uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(const void* data, size_t n);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  Digest Finish();

 private:
  void* ctx_;  // EVP_MD_CTX*
};

Digest Sha256Of(std::string_view data);
std::string Sha256Hex(std::string_view data);

std::string ToHex(const uint8_t* data, size_t n);
inline std::string ToHex(const Digest& d) {
  return ToHex(d.data(), d.size());
}
// Parses exactly 64 lowercase or uppercase hex characters.
bool ParseDigestHex(std::string_view hex, Digest* out);
// True for exactly 64 lowercase hex characters: the only accepted artifact address.
bool IsDigestHex(std::string_view s);

// Constant-time comparison (for MACs and tokens).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// HMAC-SHA256(key, data) as raw bytes.
std::string HmacSha256(std::string_view key, std::string_view data);

}  // namespace keel
