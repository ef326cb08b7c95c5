// The artifact commands, run as the real binary: the output shapes other tools rely on
// (`put` prints the 64-hex address, `get` writes the bytes unchanged), lineage, and the exit
// code and message of every bad input.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>

#include "cli/testing_cli_workspace.h"
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
      {{"artifact", "get", std::string(64, 'A')}, 65, "is not an artifact address"},
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
      {{"artifact", "put"}, 64, "file is required"},
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

}  // namespace
}  // namespace keel
