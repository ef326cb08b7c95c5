#include "store/merkle.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdlib>

namespace keel::store {
namespace {

// Fetched once: in OpenSSL 3 an implicit fetch per EVP_DigestInit is measurable at the
// millions-of-hashes scale verify works at.
const EVP_MD* Sha256Md() {
  static const EVP_MD* md = [] {
    EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (m == nullptr) std::abort();  // no SHA-256 in the default provider: unusable build
    return m;
  }();
  return md;
}

EVP_MD_CTX* Ctx(void* p) {
  return static_cast<EVP_MD_CTX*>(p);
}

// Largest power of two strictly smaller than n (n >= 2).
uint64_t SplitPoint(uint64_t n) {
  uint64_t k = 1;
  while (k << 1 < n) k <<= 1;
  return k;
}

}  // namespace

MerkleHasher::MerkleHasher() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr) std::abort();  // out of memory
}

MerkleHasher::~MerkleHasher() {
  EVP_MD_CTX_free(Ctx(ctx_));
}

Digest MerkleHasher::Plain(std::string_view data) {
  Digest d;
  unsigned int len = 0;
  EVP_DigestInit_ex2(Ctx(ctx_), Sha256Md(), nullptr);
  EVP_DigestUpdate(Ctx(ctx_), data.data(), data.size());
  EVP_DigestFinal_ex(Ctx(ctx_), d.data(), &len);
  return d;
}

Digest MerkleHasher::Leaf(std::string_view data) {
  static const unsigned char kPrefix = 0x00;
  Digest d;
  unsigned int len = 0;
  EVP_DigestInit_ex2(Ctx(ctx_), Sha256Md(), nullptr);
  EVP_DigestUpdate(Ctx(ctx_), &kPrefix, 1);
  EVP_DigestUpdate(Ctx(ctx_), data.data(), data.size());
  EVP_DigestFinal_ex(Ctx(ctx_), d.data(), &len);
  return d;
}

Digest MerkleHasher::Node(const Digest& left, const Digest& right) {
  unsigned char buf[65];
  buf[0] = 0x01;
  std::copy(left.begin(), left.end(), buf + 1);
  std::copy(right.begin(), right.end(), buf + 33);
  Digest d;
  unsigned int len = 0;
  EVP_DigestInit_ex2(Ctx(ctx_), Sha256Md(), nullptr);
  EVP_DigestUpdate(Ctx(ctx_), buf, sizeof buf);
  EVP_DigestFinal_ex(Ctx(ctx_), d.data(), &len);
  return d;
}

Digest MerkleLeafHash(std::string_view data) {
  MerkleHasher h;
  return h.Leaf(data);
}

Digest MerkleNodeHash(const Digest& left, const Digest& right) {
  MerkleHasher h;
  return h.Node(left, right);
}

Digest MerkleEmptyRoot() {
  return Sha256Of("");
}

void MerkleTreeBuilder::AddLeafHash(const Digest& leaf_hash) {
  stack_.push_back(leaf_hash);
  ++size_;
  // Each trailing zero bit of the new size closes a perfect subtree: merge the top two.
  for (uint64_t s = size_; (s & 1) == 0; s >>= 1) {
    Digest right = stack_.back();
    stack_.pop_back();
    stack_.back() = hasher_.Node(stack_.back(), right);
  }
}

Digest MerkleTreeBuilder::Root() {
  if (stack_.empty()) return MerkleEmptyRoot();
  // RFC 6962 splits at the largest power of two, so the root folds the compact range from
  // the smallest (rightmost) subtree leftwards.
  Digest r = stack_.back();
  for (size_t i = stack_.size() - 1; i-- > 0;) r = hasher_.Node(stack_[i], r);
  return r;
}

Digest MerkleRootOfRange(const std::vector<Digest>& leaf_hashes, uint64_t begin, uint64_t end) {
  MerkleTreeBuilder b;
  for (uint64_t i = begin; i < end; ++i) b.AddLeafHash(leaf_hashes[i]);
  return b.Root();
}

Result<std::vector<Digest>> MerkleInclusionProof(const std::vector<Digest>& leaf_hashes,
                                                 uint64_t index, uint64_t tree_size) {
  if (tree_size > leaf_hashes.size() || index >= tree_size) {
    return InvalidArgument("inclusion proof of leaf " + std::to_string(index) + " in a tree of " +
                           std::to_string(tree_size) + " leaves (" +
                           std::to_string(leaf_hashes.size()) + " known)");
  }
  // PATH(m, D[lo:hi]) descends towards the leaf; the sibling subtree of each step is a proof
  // element, and the RFC lists them from the leaf up, so they are collected then reversed.
  std::vector<Digest> proof;
  uint64_t lo = 0, hi = tree_size;
  while (hi - lo > 1) {
    uint64_t k = SplitPoint(hi - lo);
    if (index - lo < k) {
      proof.push_back(MerkleRootOfRange(leaf_hashes, lo + k, hi));
      hi = lo + k;
    } else {
      proof.push_back(MerkleRootOfRange(leaf_hashes, lo, lo + k));
      lo += k;
    }
  }
  std::reverse(proof.begin(), proof.end());
  return proof;
}

Result<std::vector<Digest>> MerkleConsistencyProof(const std::vector<Digest>& leaf_hashes,
                                                   uint64_t size1, uint64_t size2) {
  if (size1 > size2 || size2 > leaf_hashes.size()) {
    return InvalidArgument("consistency proof between tree sizes " + std::to_string(size1) +
                           " and " + std::to_string(size2) + " (" +
                           std::to_string(leaf_hashes.size()) + " leaves known)");
  }
  std::vector<Digest> proof;
  if (size1 == 0 || size1 == size2) return proof;
  // SUBPROOF(m, D[lo:hi], b), unrolled. `complete` is the RFC's b: true while the old tree
  // is still the left edge of the current subtree (its root is then known to the verifier).
  uint64_t lo = 0, hi = size2, m = size1;
  bool complete = true;
  for (;;) {
    uint64_t n = hi - lo;
    if (m == n) {
      if (!complete) proof.push_back(MerkleRootOfRange(leaf_hashes, lo, hi));
      break;
    }
    uint64_t k = SplitPoint(n);
    if (m <= k) {
      proof.push_back(MerkleRootOfRange(leaf_hashes, lo + k, hi));
      hi = lo + k;
    } else {
      proof.push_back(MerkleRootOfRange(leaf_hashes, lo, lo + k));
      lo += k;
      m -= k;
      complete = false;
    }
  }
  std::reverse(proof.begin(), proof.end());
  return proof;
}

Result<Digest> MerkleRootFromInclusionProof(uint64_t index, uint64_t tree_size,
                                            const Digest& leaf_hash,
                                            const std::vector<Digest>& proof) {
  if (index >= tree_size) {
    return DataLoss("inclusion proof: leaf " + std::to_string(index) + " is outside a tree of " +
                    std::to_string(tree_size));
  }
  MerkleHasher h;
  uint64_t fn = index, sn = tree_size - 1;
  Digest r = leaf_hash;
  for (const Digest& p : proof) {
    if (sn == 0) return DataLoss("inclusion proof is longer than the tree is high");
    if ((fn & 1) != 0 || fn == sn) {
      r = h.Node(p, r);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = h.Node(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return DataLoss("inclusion proof is shorter than the tree is high");
  return r;
}

Status MerkleVerifyInclusion(uint64_t index, uint64_t tree_size, const Digest& leaf_hash,
                             const std::vector<Digest>& proof, const Digest& root) {
  KEEL_ASSIGN_OR_RETURN(Digest got,
                        MerkleRootFromInclusionProof(index, tree_size, leaf_hash, proof));
  if (got != root) return DataLoss("inclusion proof leads to a different root");
  return OkStatus();
}

Status MerkleVerifyConsistency(uint64_t size1, uint64_t size2, const Digest& root1,
                               const Digest& root2, const std::vector<Digest>& proof) {
  if (size2 < size1) {
    return DataLoss("consistency proof: tree size " + std::to_string(size2) + " is smaller than " +
                    std::to_string(size1));
  }
  if (size1 == size2) {
    if (!proof.empty()) return DataLoss("consistency proof between equal sizes must be empty");
    if (root1 != root2) return DataLoss("two trees of the same size have different roots");
    return OkStatus();
  }
  if (size1 == 0) {
    if (!proof.empty()) return DataLoss("consistency proof from the empty tree must be empty");
    return OkStatus();
  }
  if (proof.empty()) return DataLoss("consistency proof is empty");
  // When the old tree is a perfect subtree its root is the proof's implicit first element.
  std::vector<Digest> path;
  path.reserve(proof.size() + 1);
  if ((size1 & (size1 - 1)) == 0) path.push_back(root1);
  path.insert(path.end(), proof.begin(), proof.end());
  MerkleHasher h;
  uint64_t fn = size1 - 1, sn = size2 - 1;
  while ((fn & 1) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  Digest fr = path[0], sr = path[0];
  for (size_t i = 1; i < path.size(); ++i) {
    const Digest& c = path[i];
    if (sn == 0) return DataLoss("consistency proof is too long");
    if ((fn & 1) != 0 || fn == sn) {
      fr = h.Node(c, fr);
      sr = h.Node(c, sr);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      sr = h.Node(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return DataLoss("consistency proof is too short");
  if (fr != root1) return DataLoss("consistency proof does not lead to the old root");
  if (sr != root2) return DataLoss("consistency proof does not lead to the new root");
  return OkStatus();
}

}  // namespace keel::store
