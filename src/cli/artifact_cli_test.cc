// The artifact commands, run as the real binary: the output shapes other tools rely on
// (`put` prints the 64-hex address, `get` writes the bytes unchanged), lineage, and the exit
// code and message of every bad input.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/testing_cli_workspace.h"
#include "core/hash.h"
#include "core/testing_util.h"
#include "store/artifacts.h"

namespace keel {
namespace {

using keel::testing::CliWorkspace;
using keel::testing::WriteFile;

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(ArtifactCli, PutPrintsTheAddressAndGetReturnsTheBytes) {
  CliWorkspace w;
  std::string bytes("line one\n\0binary\xff\n", 18);
  std::string file = w.tmp.Sub("note.bin");
  WriteFile(file, bytes);
  std::string hash = w.Line({"artifact", "put", file});
  ASSERT_EQ(hash.size(), 64u);
  EXPECT_EQ(hash.find_first_not_of("0123456789abcdef"), std::string::npos);
  auto got = w.Run({"artifact", "get", hash});
  EXPECT_EQ(got.exit_code, 0) << got.err;
  EXPECT_EQ(got.out, bytes);
  // The same content again, from a file or from standard input: the same address, and
  // nothing more on the ledger.
  size_t entries = w.Json({"ledger", "--json"}).size();
  auto again = w.Run({"artifact", "put", file});
  EXPECT_EQ(again.out, hash + "\n");
  auto piped = w.Run({"artifact", "put", "-"}, bytes);
  EXPECT_EQ(piped.out, hash + "\n") << piped.err;
  EXPECT_EQ(w.Json({"ledger", "--json"}).size(), entries);
}

TEST(ArtifactCli, ParentMakesLineage) {
  CliWorkspace w;
  WriteFile(w.tmp.Sub("v1.txt"), "draft one\n");
  WriteFile(w.tmp.Sub("v2.txt"), "draft two\n");
  std::string v1 = w.Line({"artifact", "put", w.tmp.Sub("v1.txt")});
  std::string v2 = w.Line({"artifact", "put", w.tmp.Sub("v2.txt"), "--parent", v1});
  auto lineage = w.Json({"artifact", "lineage", v2, "--json"});
  ASSERT_EQ(lineage.size(), 2u) << lineage.dump();
  EXPECT_EQ(lineage[0]["hash"], v2);
  EXPECT_EQ(lineage[1]["hash"], v1);
  auto show = w.Json({"artifact", "show", v2, "--json"});
  EXPECT_EQ(show["parent"], v1);
  EXPECT_EQ(show["media_type"], "text/plain");
}

TEST(ArtifactCli, AlreadyStoredContentKeepsItsParentAndSaysSo) {
  CliWorkspace w;
  WriteFile(w.tmp.Sub("a.txt"), "first\n");
  WriteFile(w.tmp.Sub("b.txt"), "second\n");
  std::string a = w.Line({"artifact", "put", w.tmp.Sub("a.txt")});
  std::string b = w.Line({"artifact", "put", w.tmp.Sub("b.txt")});
  auto r = w.Run({"artifact", "put", w.tmp.Sub("a.txt"), "--parent", b});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, a + "\n");
  EXPECT_TRUE(Has(r.err, "with parent none")) << r.err;
  EXPECT_TRUE(Has(r.err, "was not recorded")) << r.err;
  EXPECT_TRUE(w.Json({"artifact", "show", a, "--json"})["parent"].is_null());
}

TEST(ArtifactCli, BadInputExitCodes) {
  CliWorkspace w;
  WriteFile(w.tmp.Sub("f.txt"), "content\n");
  std::string stored = w.Line({"artifact", "put", w.tmp.Sub("f.txt")});
  std::string absent(64, 'a');
  size_t entries = w.Json({"ledger", "--json"}).size();

  struct Case {
    std::vector<std::string> args;
    int code;
    std::string message;
  };
  std::vector<Case> cases = {
      {{"artifact", "get", "zz"}, 65, "is not an artifact address"},
      // An address is read in either case (what an operator copies), so this one is looked up.
      {{"artifact", "get", std::string(64, 'A')}, 66, "is not stored"},
      {{"artifact", "get", "../../keel.db"}, 65, "is not an artifact address"},
      {{"artifact", "get", absent}, 66, "is not stored"},
      {{"artifact", "show", absent}, 66, "is not stored"},
      {{"artifact", "lineage", "zz"}, 65, "is not an artifact address"},
      {{"artifact", "put", w.tmp.Sub("missing.txt")}, 66, "No such file"},
      {{"artifact", "put", w.tmp.path()}, 65, "Is a directory"},
      // A bad parent is refused even for content that is already stored.
      {{"artifact", "put", w.tmp.Sub("f.txt"), "--parent", "zz"}, 65, "is not an artifact address"},
      {{"artifact", "put", w.tmp.Sub("f.txt"), "--parent", absent}, 65, "does not exist"},
      {{"artifact", "put", w.tmp.Sub("f.txt"), "--type", "text"}, 65, "type/subtype"},
      {{"artifact", "put"}, 64, "FILE is required"},
  };
  for (const Case& c : cases) {
    auto r = w.Run(c.args);
    std::string cmd;
    for (const auto& a : c.args) cmd += a + " ";
    EXPECT_EQ(r.exit_code, c.code) << cmd << "\n" << r.err;
    EXPECT_TRUE(Has(r.err, c.message)) << cmd << "\n" << r.err;
    EXPECT_EQ(r.out, "") << cmd;
  }
  // Over the size limit: refused before anything is written (a sparse file, no real bytes).
  std::string big = w.tmp.Sub("big.bin");
  WriteFile(big, "");
  ASSERT_EQ(::truncate(big.c_str(), static_cast<off_t>(store::kMaxArtifactBytes + 1)), 0);
  auto r = w.Run({"artifact", "put", big});
  EXPECT_EQ(r.exit_code, 65);
  EXPECT_TRUE(Has(r.err, "more than the limit")) << r.err;
  // None of it reached the ledger; the stored artifact is still intact.
  EXPECT_EQ(w.Json({"ledger", "--json"}).size(), entries);
  EXPECT_EQ(w.Run({"artifact", "get", stored}).out, "content\n");
  EXPECT_EQ(w.Run({"verify"}).exit_code, 0);
}

// Commands that read an artifact take a unique prefix of its address (e.g. the 12
// characters `keel facts` prints), and refuse an ambiguous or too short one.
TEST(ArtifactCli, UniquePrefixIsAcceptedAmbiguousIsRefused) {
  // Two contents whose addresses share their first 6 hex digits (the shortest prefix
  // accepted): a birthday search over small texts takes a few thousand hashes.
  std::map<std::string, std::string> by_prefix;
  std::string text_a, text_b;
  for (int i = 0; text_a.empty() && i < 1000000; ++i) {
    std::string t = "content " + std::to_string(i) + "\n";
    auto [it, fresh] = by_prefix.emplace(Sha256Hex(t).substr(0, 6), t);
    if (!fresh) text_a = it->second, text_b = t;
  }
  ASSERT_FALSE(text_a.empty());
  CliWorkspace w;
  WriteFile(w.tmp.Sub("a.txt"), text_a);
  WriteFile(w.tmp.Sub("b.txt"), text_b);
  const std::string a = w.Line({"artifact", "put", w.tmp.Sub("a.txt")});
  const std::string b = w.Line({"artifact", "put", w.tmp.Sub("b.txt")});
  ASSERT_EQ(a.size(), 64u);
  size_t common = 0;
  while (a[common] == b[common]) ++common;
  ASSERT_GE(common, 6u);
  const std::string unique = a.substr(0, std::max<size_t>(common + 1, 12));

  // A unique prefix works for show, get and lineage, in either case.
  EXPECT_EQ(w.Json({"artifact", "show", unique, "--json"})["hash"], a);
  std::string upper = unique;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(w.Json({"artifact", "show", upper, "--json"})["hash"], a);
  auto got = w.Run({"artifact", "get", unique});
  EXPECT_EQ(got.exit_code, 0) << got.err;
  EXPECT_EQ(got.out, text_a);
  auto lineage = w.Json({"artifact", "lineage", unique, "--json"});
  ASSERT_EQ(lineage.size(), 1u);
  EXPECT_EQ(lineage[0]["hash"], a);
  auto text = w.Run({"artifact", "show", unique});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_EQ(text.out.substr(0, 65), a + "\n");

  // The shared prefix: refused as ambiguous (exit 65), naming both, for every command.
  for (const char* cmd : {"show", "get", "lineage"}) {
    auto r = w.Run({"artifact", cmd, a.substr(0, common)});
    EXPECT_EQ(r.exit_code, 65) << cmd;
    EXPECT_TRUE(Has(r.err, "ambiguous")) << r.err;
    EXPECT_TRUE(Has(r.err, a.substr(0, common + 1))) << r.err;
    EXPECT_TRUE(Has(r.err, b.substr(0, common + 1))) << r.err;
    EXPECT_EQ(r.out, "") << cmd;
  }
  // Too short (exit 65), and a prefix no address starts with (exit 66).
  auto too_short = w.Run({"artifact", "show", a.substr(0, 5)});
  EXPECT_EQ(too_short.exit_code, 65);
  EXPECT_TRUE(Has(too_short.err, "too short")) << too_short.err;
  std::string none = unique.substr(0, unique.size() - 1) + (unique.back() == '0' ? '1' : '0');
  if (none.substr(0, common + 1) != b.substr(0, common + 1)) {
    EXPECT_EQ(w.Run({"artifact", "show", none}).exit_code, 66);
  }
}

}  // namespace
}  // namespace keel
