// The append path's JSON object check must agree with nlohmann-json (which every reader of
// payloads uses) on valid and invalid input alike.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/random.h"
#include "store/ledger.h"

namespace keel::store {
namespace {

bool Reference(const std::string& s) {
  auto j = nlohmann::json::parse(s, nullptr, false);
  return !j.is_discarded() && j.is_object();
}

TEST(LedgerJson, AgreesWithNlohmannOnHandPickedCases) {
  for (std::string s : {
           "{}",
           " {} ",
           "{\"a\":1}",
           "{\"a\":[1,2,{\"b\":null}],\"c\":true,\"d\":-0.5e+3}",
           "{\"\\u00e9\\ud83d\\ude00\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}",
           "{\"é\":\"日本\"}",
           "{\"a\":1,}",
           "{\"a\"}",
           "{a:1}",
           "{\"a\":01}",
           "{\"a\":1.}",
           "{\"a\":.5}",
           "{\"a\":-}",
           "{\"a\":1e}",
           "{\"a\":tru}",
           "{\"a\":\"\\x\"}",
           "{\"a\":\"\\ud800\"}",
           "{\"a\":\"\\udc00\"}",
           "{\"a\":\"\t\"}",
           "{} {}",
           "[]",
           "{\"a\":1",
           "{\"a\":\"\xff\"}",
           "{\"a\":\"\xc0\xaf\"}",
           "{\"a\":\"\xed\xa0\x80\"}",
           "{\"a\":\"\xf4\x90\x80\x80\"}",
           "{\"a\":[1,]}",
           "{\"a\":[,1]}",
           "{\"a\"::1}",
           "{\"a\":1}x",
           "{\"a\":\"\\u12\"}",
       }) {
    EXPECT_EQ(IsJsonObjectText(s), Reference(s)) << s;
  }
  EXPECT_FALSE(IsJsonObjectText(std::string(10000, '[')));
  EXPECT_FALSE(IsJsonObjectText("{\"a\":" + std::string(100000, '[')));
}

TEST(LedgerJson, AgreesWithNlohmannOnRandomMutations) {
  SeededRandom rnd(5);
  const std::string base =
      "{\"a\":[1,2.5e-3,{\"b\":null,\"c\":\"x\\u0041\\n\"}],\"d\":true,\"e\":\"\xc3\xa9\"}";
  const std::string alphabet = "{}[]\":,.-+eE0123456789tfnulrsx\\ \xc3\xa9\xff";
  int disagreements = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s = base;
    int edits = 1 + static_cast<int>(rnd.Uniform(3));
    for (int k = 0; k < edits; ++k) {
      size_t pos = rnd.Uniform(s.size());
      switch (rnd.Uniform(3)) {
        case 0:
          s[pos] = alphabet[rnd.Uniform(alphabet.size())];
          break;
        case 1:
          s.erase(pos, 1);
          break;
        default:
          s.insert(pos, 1, alphabet[rnd.Uniform(alphabet.size())]);
      }
    }
    if (IsJsonObjectText(s) != Reference(s)) {
      if (++disagreements < 10) ADD_FAILURE() << "disagree on: " << s;
    }
  }
  EXPECT_EQ(disagreements, 0);
}

}  // namespace
}  // namespace keel::store
