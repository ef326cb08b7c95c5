#include "store/ledger.h"

#include "store/merkle.h"

namespace keel::store {

void EncodeEntry(const LedgerEntry& e, std::string* out) {
  out->append(e.state.empty() ? "keel.ledger.v1\n" : "keel.ledger.v2\n");
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
  if (!e.state.empty()) PutStr(out, e.state);
  out->append(reinterpret_cast<const char*>(e.prev_hash.data()), 32);
}

Digest ComputeEntryHash(const LedgerEntry& e, std::string* scratch) {
  scratch->clear();
  EncodeEntry(e, scratch);
  // A per-thread context with the digest fetched once: EVP_Digest re-fetches SHA-256 on
  // every call, which costs more than hashing a typical entry.
  thread_local MerkleHasher hasher;
  return hasher.Plain(*scratch);
}

namespace {

// A recursive-descent check of RFC 8259 JSON text. Depth-limited so that hostile input
// cannot exhaust the stack.
class JsonChecker {
 public:
  explicit JsonChecker(std::string_view s) : s_(s) {}
  bool Object() {
    Ws();
    if (!Peek('{')) return false;
    if (!Value(0)) return false;
    Ws();
    return i_ == s_.size();
  }

 private:
  static constexpr int kMaxDepth = 512;
  bool Peek(char c) const { return i_ < s_.size() && s_[i_] == c; }
  void Ws() {
    while (i_ < s_.size() &&
           (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) {
      ++i_;
    }
  }
  bool Lit(std::string_view w) {
    if (s_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }
  bool Digits() {
    size_t b = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    return i_ > b;
  }
  bool Number() {
    if (Peek('-')) ++i_;
    if (Peek('0')) {
      ++i_;
    } else if (!Digits()) {
      return false;
    }
    if (Peek('.')) {
      ++i_;
      if (!Digits()) return false;
    }
    if (Peek('e') || Peek('E')) {
      ++i_;
      if (Peek('+') || Peek('-')) ++i_;
      if (!Digits()) return false;
    }
    return true;
  }
  static int Hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  bool U4(unsigned* out) {
    if (i_ + 4 > s_.size()) return false;
    unsigned v = 0;
    for (int k = 0; k < 4; ++k) {
      int h = Hex(s_[i_ + k]);
      if (h < 0) return false;
      v = v * 16 + static_cast<unsigned>(h);
    }
    i_ += 4;
    *out = v;
    return true;
  }
  // A UTF-8 sequence starting at i_ (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
  bool Utf8() {
    auto b = [&](size_t k) { return static_cast<unsigned char>(s_[i_ + k]); };
    unsigned char c = b(0);
    size_t n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (i_ + n >= s_.size()) return false;
    if (b(1) < lo || b(1) > hi) return false;
    for (size_t k = 2; k <= n; ++k) {
      if (b(k) < 0x80 || b(k) > 0xBF) return false;
    }
    i_ += n + 1;
    return true;
  }
  bool String() {
    ++i_;  // opening quote
    while (i_ < s_.size()) {
      unsigned char c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        ++i_;
        if (i_ >= s_.size()) return false;
        char e = s_[i_++];
        if (e == 'u') {
          unsigned u;
          if (!U4(&u)) return false;
          if (u >= 0xDC00 && u <= 0xDFFF) return false;  // a low surrogate alone
          if (u >= 0xD800 && u <= 0xDBFF) {              // must pair with a low one
            if (!Lit("\\u") || !U4(&u) || u < 0xDC00 || u > 0xDFFF) return false;
          }
        } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
          return false;
        }
      } else if (c < 0x80) {
        ++i_;
      } else if (!Utf8()) {
        return false;
      }
    }
    return false;
  }
  bool Value(int depth) {
    if (depth > kMaxDepth) return false;
    Ws();
    if (i_ >= s_.size()) return false;
    switch (s_[i_]) {
      case '{': {
        ++i_;
        Ws();
        if (Peek('}')) {
          ++i_;
          return true;
        }
        for (;;) {
          Ws();
          if (!Peek('"') || !String()) return false;
          Ws();
          if (!Peek(':')) return false;
          ++i_;
          if (!Value(depth + 1)) return false;
          Ws();
          if (Peek(',')) {
            ++i_;
            continue;
          }
          if (Peek('}')) {
            ++i_;
            return true;
          }
          return false;
        }
      }
      case '[': {
        ++i_;
        Ws();
        if (Peek(']')) {
          ++i_;
          return true;
        }
        for (;;) {
          if (!Value(depth + 1)) return false;
          Ws();
          if (Peek(',')) {
            ++i_;
            continue;
          }
          if (Peek(']')) {
            ++i_;
            return true;
          }
          return false;
        }
      }
      case '"':
        return String();
      case 't':
        return Lit("true");
      case 'f':
        return Lit("false");
      case 'n':
        return Lit("null");
      default:
        return Number();
    }
  }
  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

bool IsJsonObjectText(std::string_view text) {
  return JsonChecker(text).Object();
}

}  // namespace keel::store
