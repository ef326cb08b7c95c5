// The ledger: the append-only, hash-chained record of every action (docs/ledger-format.md).
//
// Entries are appended only through Txn::Append (store/workspace.h), inside the same
// database transaction as the change they describe. This header holds the entry types and
// the canonical encoding, which are pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/hash.h"

namespace keel::store {

// Upper bound of a payload; larger content belongs in an artifact.
inline constexpr size_t kMaxPayloadBytes = 64 * 1024;

// What a caller appends. `payload` must be a canonical JSON object (core/json.h
// CanonicalJson); an empty payload is stored as "{}".
struct NewEntry {
  std::string actor;
  std::string kind;
  std::string subject;
  std::string run_id;
  std::string step_id;
  std::string payload;
  std::vector<std::string> artifacts;  // 64-hex SHA-256 digests
};

struct LedgerEntry {
  int64_t seq = 0;
  int64_t time_us = 0;
  std::string actor;
  std::string kind;
  std::string subject;
  std::string run_id;
  std::string step_id;
  std::string payload;
  std::vector<Digest> artifacts;
  // The images of the state-table rows its transaction changed since the entry before it
  // (store/state.h); empty when it changed none. An entry with images is hashed with the
  // v2 encoding, one without with v1 (docs/ledger-format.md).
  std::string state;
  Digest prev_hash{};
  Digest hash{};
};

// The big-endian primitives of keel's canonical encodings (ledger entries here, state
// images in store/state.h): u32be, u64be, and a string as u32be(length) + bytes.
inline void PutU32(std::string* out, uint32_t v) {
  char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
               static_cast<char>(v)};
  out->append(b, 4);
}
inline void PutU64(std::string* out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (56 - 8 * i));
  out->append(b, 8);
}
inline void PutStr(std::string* out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

// Appends the canonical encoding of `e` (all fields but `hash`) to `out`.
void EncodeEntry(const LedgerEntry& e, std::string* out);
// SHA-256 of the canonical encoding. `scratch` is reused between calls to avoid allocation.
Digest ComputeEntryHash(const LedgerEntry& e, std::string* scratch);

// True iff `text` is one JSON object (RFC 8259, UTF-8). The append path's payload check:
// a validator that builds nothing is several times cheaper than a parser.
bool IsJsonObjectText(std::string_view text);

// Filters for listing the ledger. Empty strings and zeros mean "any".
struct LedgerQuery {
  std::string subject;
  std::string kind;  // exact, or a prefix when it ends with '*' ("record.*")
  std::string actor;
  std::string run_id;
  int64_t since_us = 0;   // inclusive
  int64_t until_us = 0;   // exclusive; 0 = no bound
  int64_t after_seq = 0;  // entries with seq > after_seq
  int64_t limit = 0;      // 0 = no limit
  bool newest_first = false;
};

}  // namespace keel::store
