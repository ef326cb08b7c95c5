// RFC 6962 Merkle trees over the ledger (docs/ledger-format.md, "Signed checkpoints").
//
// leaf_hash = SHA-256(0x00 || data), node_hash = SHA-256(0x01 || left || right); a tree of
// n > 1 leaves splits at k, the largest power of two smaller than n; the empty tree's hash is
// SHA-256(""). Pinned by the published Certificate Transparency vectors in merkle_test.cc.
//
// Everything here works on leaf *hashes* (for the ledger: MerkleLeafHash(entry hash)).
// Roots are computed iteratively with a compact range (O(log n) memory, no recursion), so a
// million-leaf root costs two million SHA-256 compressions and nothing else.
//
// Thread-safety: free functions are thread-safe; a MerkleHasher or MerkleTreeBuilder is used
// by one thread at a time.
// Errors: InvalidArgument (index or sizes out of range) for proof generation; the Verify*
// functions return DataLoss when a proof does not prove what it claims.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "core/hash.h"
#include "core/status.h"

namespace keel::store {

// A reusable SHA-256 context (OpenSSL EVP, SHA extensions when the CPU has them). Creating
// an EVP context per hash costs more than hashing 65 bytes, hence this class.
class MerkleHasher {
 public:
  MerkleHasher();
  ~MerkleHasher();
  MerkleHasher(const MerkleHasher&) = delete;
  MerkleHasher& operator=(const MerkleHasher&) = delete;

  Digest Leaf(std::string_view data);  // SHA-256(0x00 || data)
  Digest Leaf(const Digest& d) {
    return Leaf(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
  }
  Digest Node(const Digest& left, const Digest& right);  // SHA-256(0x01 || left || right)
  Digest Plain(std::string_view data);                   // SHA-256(data)

 private:
  void* ctx_;  // EVP_MD_CTX*
};

Digest MerkleLeafHash(std::string_view data);
Digest MerkleNodeHash(const Digest& left, const Digest& right);
// SHA-256 of the empty string: the hash of a tree with no leaves.
Digest MerkleEmptyRoot();

// Builds the root incrementally: append leaf hashes in order, ask for the root at any time.
// Keeps one subtree hash per set bit of size() (the "compact range").
class MerkleTreeBuilder {
 public:
  void AddLeafHash(const Digest& leaf_hash);
  void AddLeaf(std::string_view data) { AddLeafHash(hasher_.Leaf(data)); }
  uint64_t size() const { return size_; }
  // The RFC 6962 tree hash of the leaves added so far. O(log size).
  Digest Root();

 private:
  MerkleHasher hasher_;
  uint64_t size_ = 0;
  std::vector<Digest> stack_;  // perfect subtrees, largest (leftmost) first
};

// The tree hash of leaf_hashes[begin, end).
Digest MerkleRootOfRange(const std::vector<Digest>& leaf_hashes, uint64_t begin, uint64_t end);
inline Digest MerkleRoot(const std::vector<Digest>& leaf_hashes) {
  return MerkleRootOfRange(leaf_hashes, 0, leaf_hashes.size());
}

// RFC 6962 §2.1.1 audit path of leaf `index` in the tree of the first `tree_size` leaves,
// ordered from the leaf up. InvalidArgument unless index < tree_size <= leaf_hashes.size().
Result<std::vector<Digest>> MerkleInclusionProof(const std::vector<Digest>& leaf_hashes,
                                                 uint64_t index, uint64_t tree_size);
// RFC 6962 §2.1.2 consistency proof between the trees of the first `size1` and `size2`
// leaves. Empty when size1 is 0 or equals size2. InvalidArgument unless
// size1 <= size2 <= leaf_hashes.size().
Result<std::vector<Digest>> MerkleConsistencyProof(const std::vector<Digest>& leaf_hashes,
                                                   uint64_t size1, uint64_t size2);

// The root an inclusion proof leads to (RFC 9162 §2.1.3.2). DataLoss if the proof has the
// wrong length for (index, tree_size) or index >= tree_size.
Result<Digest> MerkleRootFromInclusionProof(uint64_t index, uint64_t tree_size,
                                            const Digest& leaf_hash,
                                            const std::vector<Digest>& proof);
// OK iff `proof` shows that `leaf_hash` is leaf `index` of the tree with hash `root`.
Status MerkleVerifyInclusion(uint64_t index, uint64_t tree_size, const Digest& leaf_hash,
                             const std::vector<Digest>& proof, const Digest& root);
// OK iff `proof` shows that the tree (size1, root1) is a prefix of the tree (size2, root2)
// (RFC 9162 §2.1.4.2).
Status MerkleVerifyConsistency(uint64_t size1, uint64_t size2, const Digest& root1,
                               const Digest& root2, const std::vector<Digest>& proof);

}  // namespace keel::store
