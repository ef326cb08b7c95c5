#include "memory/extract.h"

#include <gtest/gtest.h>

#include <map>

namespace keel::memory {
namespace {

// kind -> values found, for compact assertions.
std::multimap<std::string, std::string> Kinds(const std::vector<ExtractedFact>& facts) {
  std::multimap<std::string, std::string> out;
  for (const auto& f : facts) out.emplace(f.kind, f.kind == "role" ? f.text : f.value);
  return out;
}

bool Has(const std::vector<ExtractedFact>& facts, const std::string& kind,
         const std::string& value) {
  for (const auto& f : facts) {
    if (f.kind == kind && (f.value == value || (kind == "role" && f.text == value))) return true;
  }
  return false;
}

std::string Dump(const std::vector<ExtractedFact>& facts) {
  std::string s;
  for (const auto& f : facts) s += f.kind + "=" + f.value + " | " + f.text + "\n";
  return s;
}

TEST(Extract, SpansPointAtTheSource) {
  std::string text =
      "Hello from Northwind Traders Ltd! Write to sales@northwind.example or call "
      "+44 20 7946 0958. Visit https://northwind.example/about.";
  auto facts = ExtractFacts(text);
  ASSERT_FALSE(facts.empty()) << Dump(facts);
  for (const auto& f : facts) {
    ASSERT_LE(f.end, text.size());
    ASSERT_LT(f.begin, f.end);
    EXPECT_GT(f.confidence, 0);
    EXPECT_LE(f.confidence, 1);
  }
  EXPECT_TRUE(Has(facts, "email", "sales@northwind.example")) << Dump(facts);
  EXPECT_TRUE(Has(facts, "phone", "+442079460958")) << Dump(facts);
  EXPECT_TRUE(Has(facts, "url", "https://northwind.example/about")) << Dump(facts);
  EXPECT_TRUE(Has(facts, "company", "Northwind Traders Ltd")) << Dump(facts);
  for (const auto& f : facts) {
    if (f.kind == "email") {
      EXPECT_EQ(text.substr(f.begin, f.end - f.begin), "sales@northwind.example");
    }
    if (f.kind == "url") {
      EXPECT_EQ(text.substr(f.begin, f.end - f.begin), "https://northwind.example/about");
    }
  }
}

TEST(Extract, PeopleWithRoles) {
  auto a = ExtractFacts("Our team: Jane Doe, CFO of Acme Ltd, signed the order.");
  EXPECT_TRUE(Has(a, "person", "Jane Doe")) << Dump(a);
  EXPECT_TRUE(Has(a, "role", "Jane Doe is CFO at Acme Ltd")) << Dump(a);
  EXPECT_TRUE(Has(a, "company", "Acme Ltd")) << Dump(a);

  auto b = ExtractFacts("We spoke with CEO Marta Silva about the launch.");
  EXPECT_TRUE(Has(b, "role", "Marta Silva is CEO")) << Dump(b);

  auto c = ExtractFacts("Tom Becker is the Head of Sales at Brightline GmbH.");
  EXPECT_TRUE(Has(c, "role", "Tom Becker is Head of Sales at Brightline GmbH")) << Dump(c);

  auto d = ExtractFacts("Best regards,\nLena Fischer\nMarketing Manager\nOakleaf Studio");
  EXPECT_TRUE(Has(d, "person", "Lena Fischer")) << Dump(d);
  EXPECT_TRUE(Has(d, "role", "Lena Fischer is Marketing Manager")) << Dump(d);

  auto e = ExtractFacts("From: Priya Nair <priya@kestrel.example>\nSubject: quote");
  EXPECT_TRUE(Has(e, "person", "Priya Nair")) << Dump(e);
  EXPECT_TRUE(Has(e, "email", "priya@kestrel.example")) << Dump(e);

  auto f = ExtractFacts("Dr. Alan Grant will join the call.");
  EXPECT_TRUE(Has(f, "person", "Alan Grant")) << Dump(f);
}

TEST(Extract, MoneyAmountsWithCurrency) {
  auto m = ExtractFacts(
      "Budget: €12.500,50 for design, $3,200 for hosting, 450 EUR per month, GBP 99 setup, "
      "and a 5k USD bonus. Revenue grew to 2 million dollars.");
  EXPECT_TRUE(Has(m, "money", "12500.50 EUR")) << Dump(m);
  EXPECT_TRUE(Has(m, "money", "3200.00 USD")) << Dump(m);
  EXPECT_TRUE(Has(m, "money", "450.00 EUR")) << Dump(m);
  EXPECT_TRUE(Has(m, "money", "99.00 GBP")) << Dump(m);
  EXPECT_TRUE(Has(m, "money", "5000.00 USD")) << Dump(m);
  EXPECT_TRUE(Has(m, "money", "2000000.00 USD")) << Dump(m);
  // Plain numbers are not money.
  auto n = ExtractFacts("We have 12 employees and 3 offices.");
  EXPECT_EQ(Kinds(n).count("money"), 0u) << Dump(n);
}

TEST(Extract, Dates) {
  auto d = ExtractFacts(
      "Kick-off on 2026-03-14, review March 20, 2026, launch 1st April 2026, invoice due "
      "Sept. 3 2026.");
  EXPECT_TRUE(Has(d, "date", "2026-03-14")) << Dump(d);
  EXPECT_TRUE(Has(d, "date", "2026-03-20")) << Dump(d);
  EXPECT_TRUE(Has(d, "date", "2026-04-01")) << Dump(d);
  EXPECT_TRUE(Has(d, "date", "2026-09-03")) << Dump(d);
  // Impossible dates and ISO dates are not phone numbers either.
  auto bad = ExtractFacts("Version 2026-13-45 and February 30, 2026.");
  EXPECT_EQ(Kinds(bad).count("date"), 0u) << Dump(bad);
  EXPECT_EQ(Kinds(bad).count("phone"), 0u) << Dump(bad);
}

TEST(Extract, PhonesNeedEvidence) {
  auto p = ExtractFacts("Phone: 555 0100 222. Order #12345678 shipped. Tel (030) 1234-5678.");
  EXPECT_TRUE(Has(p, "phone", "5550100222")) << Dump(p);
  EXPECT_TRUE(Has(p, "phone", "03012345678")) << Dump(p);
  EXPECT_FALSE(Has(p, "phone", "12345678")) << Dump(p);
}

TEST(Extract, NoiseGivesNothingAndNeverCrashes) {
  EXPECT_TRUE(ExtractFacts("").empty());
  EXPECT_TRUE(ExtractFacts("the quick brown fox jumps over the lazy dog").empty());
  std::string junk;
  for (int i = 0; i < 5000; ++i) junk += static_cast<char>((i * 7919) % 256);
  (void)ExtractFacts(junk);
  (void)ExtractFacts("@@@ a@b @.com x@y. http:// www. $ € 12, ,3 +");
  std::string many;
  for (int i = 0; i < 2000; ++i) many += "user" + std::to_string(i) + "@example.com ";
  EXPECT_EQ(ExtractFacts(many).size(), 500u);  // max_facts
}

TEST(Extract, DeterministicAndDeduplicated) {
  std::string t = "Email jane@acme.example. Again: jane@acme.example. Jane Doe, CEO of Acme Inc.";
  auto a = ExtractFacts(t);
  auto b = ExtractFacts(t);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].text, b[i].text);
    EXPECT_EQ(a[i].begin, b[i].begin);
  }
  EXPECT_EQ(Kinds(a).count("email"), 1u) << Dump(a);
}

}  // namespace
}  // namespace keel::memory
