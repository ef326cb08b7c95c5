#include "store/merkle.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace keel::store {
namespace {

std::string Unhex(const std::string& h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16)));
  }
  return out;
}

Digest D(const std::string& hex) {
  Digest d;
  EXPECT_TRUE(ParseDigestHex(hex, &d)) << hex;
  return d;
}

// The published Certificate Transparency / RFC 6962 reference data (the 8-leaf tree used by
// certificate-transparency and transparency-dev/merkle). Data only, typed in from there.
const std::vector<std::string> kLeafData = {"",
                                            "00",
                                            "10",
                                            "2021",
                                            "3031",
                                            "40414243",
                                            "5051525354555657",
                                            "606162636465666768696a6b6c6d6e6f"};
const std::vector<std::string> kRoots = {
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",  // size 0
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};

struct ProofVector {
  uint64_t a, b;  // inclusion: leaf index (0-based), tree size; consistency: size1, size2
  std::vector<std::string> proof;
};

const std::vector<ProofVector> kInclusion = {
    {0,
     8,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {5,
     8,
     {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2, 3, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
    {1,
     5,
     {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
    {0, 1, {}},
};

const std::vector<ProofVector> kConsistency = {
    {1, 1, {}},
    {1,
     8,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {6,
     8,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2,
     5,
     {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
    {6,
     7,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
};

std::vector<Digest> ReferenceLeafHashes() {
  std::vector<Digest> out;
  for (const auto& d : kLeafData) out.push_back(MerkleLeafHash(Unhex(d)));
  return out;
}

std::vector<Digest> Parse(const std::vector<std::string>& hexes) {
  std::vector<Digest> out;
  for (const auto& h : hexes) out.push_back(D(h));
  return out;
}

// The RFC's recursive definition, written as directly as possible, to cross-check the
// iterative builder on every tree shape.
Digest RecursiveMth(const std::vector<Digest>& l, size_t lo, size_t hi) {
  if (hi == lo) return MerkleEmptyRoot();
  if (hi - lo == 1) return l[lo];
  size_t k = 1;
  while (k * 2 < hi - lo) k *= 2;
  return MerkleNodeHash(RecursiveMth(l, lo, lo + k), RecursiveMth(l, lo + k, hi));
}

TEST(Merkle, PublishedRootsForSizes0To8) {
  auto leaves = ReferenceLeafHashes();
  for (size_t n = 0; n <= leaves.size(); ++n) {
    std::vector<Digest> prefix(leaves.begin(), leaves.begin() + static_cast<long>(n));
    EXPECT_EQ(ToHex(MerkleRoot(prefix)), kRoots[n]) << "size " << n;
  }
  MerkleTreeBuilder b;
  EXPECT_EQ(ToHex(b.Root()), kRoots[0]);
  for (size_t n = 0; n < leaves.size(); ++n) {
    b.AddLeaf(Unhex(kLeafData[n]));
    EXPECT_EQ(ToHex(b.Root()), kRoots[n + 1]) << "builder size " << n + 1;
  }
}

TEST(Merkle, PublishedInclusionProofs) {
  auto leaves = ReferenceLeafHashes();
  for (const auto& v : kInclusion) {
    SCOPED_TRACE("leaf " + std::to_string(v.a) + " size " + std::to_string(v.b));
    auto proof = MerkleInclusionProof(leaves, v.a, v.b);
    ASSERT_TRUE(proof.ok()) << proof.status().ToString();
    EXPECT_EQ(*proof, Parse(v.proof));
    Digest root = D(kRoots[v.b]);
    EXPECT_TRUE(MerkleVerifyInclusion(v.a, v.b, leaves[v.a], Parse(v.proof), root).ok());
  }
}

TEST(Merkle, PublishedConsistencyProofs) {
  auto leaves = ReferenceLeafHashes();
  for (const auto& v : kConsistency) {
    SCOPED_TRACE("sizes " + std::to_string(v.a) + " -> " + std::to_string(v.b));
    auto proof = MerkleConsistencyProof(leaves, v.a, v.b);
    ASSERT_TRUE(proof.ok()) << proof.status().ToString();
    EXPECT_EQ(*proof, Parse(v.proof));
    EXPECT_TRUE(
        MerkleVerifyConsistency(v.a, v.b, D(kRoots[v.a]), D(kRoots[v.b]), Parse(v.proof)).ok());
  }
}

TEST(Merkle, CorruptedInclusionProofsAreRejected) {
  auto leaves = ReferenceLeafHashes();
  Digest some = D("abacaba000000000000000000000000000000000000000000060061e00123456");
  for (const auto& v : kInclusion) {
    if (v.proof.empty()) continue;
    auto proof = Parse(v.proof);
    Digest root = D(kRoots[v.b]);
    Digest leaf = leaves[v.a];
    SCOPED_TRACE("leaf " + std::to_string(v.a) + " size " + std::to_string(v.b));
    if (v.a > 0) {
      EXPECT_FALSE(MerkleVerifyInclusion(v.a - 1, v.b, leaf, proof, root).ok());
    }
    EXPECT_FALSE(MerkleVerifyInclusion(v.a + 1, v.b, leaf, proof, root).ok());
    EXPECT_FALSE(MerkleVerifyInclusion(v.a ^ 2, v.b, leaf, proof, root).ok());
    EXPECT_FALSE(MerkleVerifyInclusion(v.a, v.b * 2, leaf, proof, root).ok());
    EXPECT_FALSE(MerkleVerifyInclusion(v.a, v.b / 2, leaf, proof, root).ok());
    EXPECT_FALSE(MerkleVerifyInclusion(v.a, v.b, some, proof, root).ok());
    EXPECT_FALSE(MerkleVerifyInclusion(v.a, v.b, leaf, proof, MerkleEmptyRoot()).ok());
    EXPECT_FALSE(MerkleVerifyInclusion(v.a, v.b, leaf, proof, some).ok());
    auto longer = proof;
    longer.push_back(root);
    EXPECT_FALSE(MerkleVerifyInclusion(v.a, v.b, leaf, longer, root).ok());
    auto prefixed = proof;
    prefixed.insert(prefixed.begin(), root);
    EXPECT_FALSE(MerkleVerifyInclusion(v.a, v.b, leaf, prefixed, root).ok());
    for (size_t i = 0; i < proof.size(); ++i) {
      auto bad = proof;
      bad[i][0] ^= 8;
      EXPECT_FALSE(MerkleVerifyInclusion(v.a, v.b, leaf, bad, root).ok()) << "bit in " << i;
    }
    auto shorter = proof;
    shorter.pop_back();
    EXPECT_FALSE(MerkleVerifyInclusion(v.a, v.b, leaf, shorter, root).ok());
  }
  // Degenerate sizes.
  EXPECT_FALSE(MerkleVerifyInclusion(0, 0, some, {}, MerkleEmptyRoot()).ok());
  EXPECT_FALSE(MerkleVerifyInclusion(1, 0, some, {}, some).ok());
  EXPECT_FALSE(MerkleVerifyInclusion(2, 1, some, {}, some).ok());
  EXPECT_TRUE(MerkleVerifyInclusion(0, 1, some, {}, some).ok());
}

TEST(Merkle, CorruptedConsistencyProofsAreRejected) {
  for (const auto& v : kConsistency) {
    if (v.proof.empty()) continue;
    auto proof = Parse(v.proof);
    Digest r1 = D(kRoots[v.a]), r2 = D(kRoots[v.b]);
    SCOPED_TRACE("sizes " + std::to_string(v.a) + " -> " + std::to_string(v.b));
    EXPECT_FALSE(MerkleVerifyConsistency(v.a - 1, v.b, r1, r2, proof).ok());
    EXPECT_FALSE(MerkleVerifyConsistency(v.a + 1, v.b, r1, r2, proof).ok());
    EXPECT_FALSE(MerkleVerifyConsistency(v.a ^ 2, v.b, r1, r2, proof).ok());
    EXPECT_FALSE(MerkleVerifyConsistency(v.a, v.b * 2, r1, r2, proof).ok());
    EXPECT_FALSE(MerkleVerifyConsistency(v.a, v.b / 2, r1, r2, proof).ok());
    EXPECT_FALSE(MerkleVerifyConsistency(v.a, v.b, r2, r1, proof).ok());
    EXPECT_FALSE(MerkleVerifyConsistency(v.a, v.b, MerkleEmptyRoot(), r2, proof).ok());
    EXPECT_FALSE(MerkleVerifyConsistency(v.a, v.b, r1, MerkleEmptyRoot(), proof).ok());
    EXPECT_FALSE(MerkleVerifyConsistency(v.a, v.b, r1, r2, {}).ok());
    for (const Digest& extra : {r1, r2, proof[0]}) {
      auto longer = proof;
      longer.push_back(extra);
      EXPECT_FALSE(MerkleVerifyConsistency(v.a, v.b, r1, r2, longer).ok());
      auto prefixed = proof;
      prefixed.insert(prefixed.begin(), extra);
      EXPECT_FALSE(MerkleVerifyConsistency(v.a, v.b, r1, r2, prefixed).ok());
    }
    auto shorter = proof;
    shorter.pop_back();
    EXPECT_FALSE(MerkleVerifyConsistency(v.a, v.b, r1, r2, shorter).ok());
    for (size_t i = 0; i < proof.size(); ++i) {
      auto bad = proof;
      bad[i][0] ^= 16;
      EXPECT_FALSE(MerkleVerifyConsistency(v.a, v.b, r1, r2, bad).ok()) << "bit in " << i;
    }
  }
  Digest a = D(kRoots[1]), b = D(kRoots[2]);
  EXPECT_TRUE(MerkleVerifyConsistency(0, 0, a, a, {}).ok());
  EXPECT_TRUE(MerkleVerifyConsistency(0, 1, a, b, {}).ok());
  EXPECT_FALSE(MerkleVerifyConsistency(1, 1, a, b, {}).ok());
  EXPECT_FALSE(MerkleVerifyConsistency(2, 1, a, b, {}).ok());
  EXPECT_FALSE(MerkleVerifyConsistency(1, 2, a, b, {}).ok());
  EXPECT_FALSE(MerkleVerifyConsistency(1, 1, a, a, {a}).ok());
}

TEST(Merkle, EveryShapeAgreesWithTheRecursiveDefinitionAndProofsRoundTrip) {
  std::vector<Digest> leaves;
  for (int i = 0; i < 70; ++i) leaves.push_back(MerkleLeafHash(std::string(1, char(i)) + "x"));
  std::vector<Digest> roots(leaves.size() + 1);
  for (size_t n = 0; n <= leaves.size(); ++n) {
    roots[n] = RecursiveMth(leaves, 0, n);
    ASSERT_EQ(MerkleRootOfRange(leaves, 0, n), roots[n]) << n;
  }
  for (uint64_t n = 1; n <= leaves.size(); ++n) {
    for (uint64_t i = 0; i < n; ++i) {
      auto p = MerkleInclusionProof(leaves, i, n);
      ASSERT_TRUE(p.ok());
      ASSERT_TRUE(MerkleVerifyInclusion(i, n, leaves[i], *p, roots[n]).ok()) << i << "/" << n;
      // The same proof must not prove another leaf.
      uint64_t j = (i + 1) % n;
      if (j != i) {
        EXPECT_FALSE(MerkleVerifyInclusion(j, n, leaves[j], *p, roots[n]).ok());
      }
    }
    for (uint64_t m = 0; m <= n; ++m) {
      auto p = MerkleConsistencyProof(leaves, m, n);
      ASSERT_TRUE(p.ok());
      ASSERT_TRUE(MerkleVerifyConsistency(m, n, roots[m], roots[n], *p).ok()) << m << "->" << n;
      if (m > 0 && m < n) {
        // A different old tree of the same size is not a prefix of this one.
        Digest wrong = roots[m];
        wrong[31] ^= 1;
        EXPECT_FALSE(MerkleVerifyConsistency(m, n, wrong, roots[n], *p).ok());
      }
    }
  }
  EXPECT_FALSE(MerkleInclusionProof(leaves, 5, 5).ok());
  EXPECT_FALSE(MerkleInclusionProof(leaves, 0, leaves.size() + 1).ok());
  EXPECT_FALSE(MerkleConsistencyProof(leaves, 6, 5).ok());
  EXPECT_FALSE(MerkleConsistencyProof(leaves, 1, leaves.size() + 1).ok());
}

TEST(Merkle, MillionLeafRootIsFast) {
  // Two million SHA-256 calls; a recursive or allocating implementation would be far slower.
  MerkleTreeBuilder b;
  Digest leaf{};
  auto t0 = std::chrono::steady_clock::now();
  for (uint32_t i = 0; i < 1000000; ++i) {
    leaf[0] = static_cast<uint8_t>(i);
    leaf[1] = static_cast<uint8_t>(i >> 8);
    leaf[2] = static_cast<uint8_t>(i >> 16);
    b.AddLeafHash(leaf);
  }
  Digest root = b.Root();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(root, MerkleEmptyRoot());
  EXPECT_LT(s, 5.0) << "1M-leaf root took " << s << " s";
  std::printf("1M-leaf Merkle root: %.3f s\n", s);
}

}  // namespace
}  // namespace keel::store
