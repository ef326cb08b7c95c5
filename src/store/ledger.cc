#include "store/ledger.h"

namespace keel::store {
namespace {

void PutU32(std::string* out, uint32_t v) {
  char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
               static_cast<char>(v)};
  out->append(b, 4);
}

void PutU64(std::string* out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (56 - 8 * i));
  out->append(b, 8);
}

void PutStr(std::string* out, const std::string& s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

}  // namespace

void EncodeEntry(const LedgerEntry& e, std::string* out) {
  out->append("keel.ledger.v1\n");
  PutU64(out, static_cast<uint64_t>(e.seq));
  PutU64(out, static_cast<uint64_t>(e.time_us));
  PutStr(out, e.actor);
  PutStr(out, e.kind);
  PutStr(out, e.subject);
  PutStr(out, e.run_id);
  PutStr(out, e.step_id);
  PutStr(out, e.payload);
  PutU32(out, static_cast<uint32_t>(e.artifacts.size()));
  for (const Digest& d : e.artifacts) out->append(reinterpret_cast<const char*>(d.data()), 32);
  out->append(reinterpret_cast<const char*>(e.prev_hash.data()), 32);
}

Digest ComputeEntryHash(const LedgerEntry& e, std::string* scratch) {
  scratch->clear();
  EncodeEntry(e, scratch);
  return Sha256Of(*scratch);
}

}  // namespace keel::store
