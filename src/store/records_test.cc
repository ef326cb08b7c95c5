#include "store/records.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "core/testing_util.h"
#include "store/artifacts.h"

namespace keel::store {
namespace {

using keel::testing::TempDir;

struct Fixture {
  TempDir tmp;
  SimulatedClock clock;
  SeededRandom random{7};
  Env env;
  std::unique_ptr<Workspace> ws;
  Fixture() {
    env.clock = &clock;
    env.random = &random;
    EXPECT_TRUE(Workspace::Init(tmp.Sub("ws"), InitOptions{}, env).ok());
    auto r = Workspace::Open(tmp.Sub("ws"), WorkspaceOpenOptions{}, env);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    ws = std::move(r).value();
  }
  Record Add(const std::string& type, const FieldValues& v) {
    auto r = CreateRecord(*ws, type, v);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : Record();
  }
  Status AddStatus(const std::string& type, const FieldValues& v) {
    return CreateRecord(*ws, type, v).status();
  }
  int64_t LedgerSize() { return *ws->LedgerSize(); }
};

nlohmann::json Payload(const LedgerEntry& e) {
  return nlohmann::json::parse(e.payload);
}
LedgerQuery After(int64_t seq) {
  LedgerQuery q;
  q.after_seq = seq;
  return q;
}
LedgerQuery Kind(const std::string& kind) {
  LedgerQuery q;
  q.kind = kind;
  return q;
}

// Personal data is declared per field, not guessed (docs/privacy.md): a field that holds
// an email, a phone number or free text is personal whatever record it is on, and so is a
// person's name and title. A new type or field must say so to pass.
TEST(RecordTypes, PersonalFieldsAreDeclared) {
  std::set<std::string> persons;
  for (const auto& t : RecordTypes()) {
    if (t.person) persons.insert(t.type);
    for (const auto& f : t.fields) {
      const bool always =
          f.type == FieldType::kEmail || f.type == FieldType::kPhone || f.type == FieldType::kText;
      if (always || (t.person && (f.name == "name" || f.name == "title"))) {
        EXPECT_TRUE(f.personal) << t.type << "." << f.name << " must be declared personal";
      }
      if (f.type == FieldType::kRef || f.type == FieldType::kEnum || f.type == FieldType::kMoney ||
          f.type == FieldType::kDate) {
        EXPECT_FALSE(f.personal) << t.type << "." << f.name << ": a " << FieldTypeName(f.type)
                                 << " names no one";
      }
    }
  }
  // The people keel holds: whoever has an email or a phone of their own.
  EXPECT_EQ(persons, (std::set<std::string>{"lead", "contact"}));
  EXPECT_NE(FindRecordType("invoice")->retention.find("10 years"), std::string::npos);
  EXPECT_TRUE(FindRecordType("lead")->retention.empty());
}

TEST(Records, CreateNormalisesAndWritesLedgerEntry) {
  Fixture f;
  Record r = f.Add(
      "lead",
      {{"email", "  Ann.Lee@Example.COM "}, {"name", "Ann Lee"}, {"website", "Example.com/about"}});
  EXPECT_EQ(r.id.substr(0, 5), "lead_");
  EXPECT_EQ(r.id.size(), 5u + 26);
  EXPECT_EQ(r.Get("email"), "ann.lee@example.com");
  EXPECT_EQ(r.Get("website"), "https://example.com/about");
  EXPECT_EQ(r.Get("status"), "new");  // default
  EXPECT_EQ(r.version, 1);

  auto got = GetRecord(*f.ws, r.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->data_json, r.data_json);
  EXPECT_EQ(got->created_us, f.clock.NowMicros());

  LedgerQuery q;
  q.subject = r.id;
  auto entries = f.ws->QueryLedger(q);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].kind, "record.created");
  EXPECT_EQ((*entries)[0].actor, "operator");
  auto p = Payload((*entries)[0]);
  EXPECT_EQ(p["type"], "lead");
  EXPECT_EQ(p["fields"]["email"], "ann.lee@example.com");
}

TEST(Records, UnknownTypeAndFieldNameTheAllowedOnes) {
  Fixture f;
  Status s = f.AddStatus("customer", {{"name", "x"}});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("types: lead, contact, company"), std::string::npos);
  s = f.AddStatus("lead", {{"email", "a@example.com"}, {"nmae", "typo"}});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("unknown field 'nmae' for lead (fields: email, name"),
            std::string::npos);
  EXPECT_EQ(f.LedgerSize(), 1);  // only workspace.created
}

TEST(Records, RequiredAndOneOf) {
  Fixture f;
  EXPECT_NE(f.AddStatus("lead", {{"company", "Acme"}}).message().find("needs email or name"),
            std::string::npos);
  f.Add("lead", {{"name", "Only a name"}});
  EXPECT_NE(f.AddStatus("company", {{"website", "acme.example.com"}})
                .message()
                .find("missing required field name"),
            std::string::npos);
  // An empty value counts as not given.
  EXPECT_FALSE(f.AddStatus("company", {{"name", "   "}}).ok());
}

TEST(Records, EmailValidation) {
  for (const char* bad : {"plain", "a@b", "a@@example.com", "a b@example.com", ".a@example.com",
                          "a..b@example.com", "a@-x.example.com", "a@example.c0m", "a@example..com",
                          "\xC3\xA9@example.com", "a@exa_mple.com"}) {
    EXPECT_FALSE(NormalizeEmail(bad).ok()) << bad;
  }
  EXPECT_EQ(*NormalizeEmail("Ann Lee <Ann@Example.org>"), "ann@example.org");
  EXPECT_EQ(*NormalizeEmail("o'brien+tag@mail.example.co.uk"), "o'brien+tag@mail.example.co.uk");
  EXPECT_FALSE(NormalizeEmail(std::string(65, 'a') + "@example.com").ok());
}

TEST(Records, FieldTypes) {
  const RecordTypeSpec* deal = FindRecordType("deal");
  ASSERT_NE(deal, nullptr);
  auto norm = [&](const char* field, const char* v) {
    return NormalizeFieldValue(*deal->Field(field), v);
  };
  EXPECT_EQ(*norm("value", "1200"), "1200");
  EXPECT_EQ(*norm("value", "1200.50"), "1200.5");
  EXPECT_EQ(*norm("value", "99.00"), "99");
  for (const char* bad : {"-5", "1,200", "12.345", "1e5", "$100", "nan", "inf", "", "1."}) {
    EXPECT_FALSE(norm("value", bad).ok()) << bad;
  }
  EXPECT_EQ(*norm("currency", "eur"), "\"EUR\"");
  EXPECT_FALSE(norm("currency", "EURO").ok());
  EXPECT_FALSE(norm("currency", "E1R").ok());
  EXPECT_EQ(*norm("probability", "40%"), "40");
  EXPECT_FALSE(norm("probability", "101").ok());
  EXPECT_FALSE(norm("probability", "4.5").ok());
  EXPECT_EQ(*norm("expected_close", "2024-02-29"), "\"2024-02-29\"");
  for (const char* bad : {"2023-02-29", "2026-13-01", "2026-1-5", "05/01/2026", "2026-04-31"}) {
    EXPECT_FALSE(norm("expected_close", bad).ok()) << bad;
  }
  EXPECT_EQ(*norm("status", "WON"), "\"won\"");
  auto s = norm("status", "maybe");
  EXPECT_NE(s.status().message().find("is not one of: open, won, lost"), std::string::npos);
  EXPECT_FALSE(norm("lead_id", "deal_01m87vh7dpa1zpr11a9g3s1xkk").ok());
  EXPECT_FALSE(norm("lead_id", "lead_x").ok());
  EXPECT_FALSE(norm("title", "two\nlines").ok());
  EXPECT_TRUE(norm("notes", "two\nlines").ok());
  EXPECT_FALSE(norm("title", std::string(501, 'x').c_str()).ok());
  EXPECT_FALSE(norm("title", "bad \xFF utf8").ok());

  const RecordTypeSpec* lead = FindRecordType("lead");
  EXPECT_FALSE(NormalizeFieldValue(*lead->Field("website"), "ftp://example.com").ok());
  EXPECT_FALSE(NormalizeFieldValue(*lead->Field("website"), "not a url").ok());
  EXPECT_FALSE(NormalizeFieldValue(*lead->Field("website"), "localhost").ok());
  EXPECT_EQ(*NormalizeFieldValue(*lead->Field("website"), "HTTP://Example.COM/Path"),
            "\"http://example.com/Path\"");
  EXPECT_FALSE(NormalizeFieldValue(*lead->Field("phone"), "call me").ok());
  EXPECT_TRUE(NormalizeFieldValue(*lead->Field("phone"), "+49 (30) 123-4567").ok());
}

TEST(Records, DuplicateEmailNamesTheExistingId) {
  Fixture f;
  Record a = f.Add("lead", {{"email", "ann@example.com"}});
  int64_t size = f.LedgerSize();
  Status s = f.AddStatus("lead", {{"email", "ANN@example.com"}, {"name", "Ann again"}});
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
  EXPECT_NE(s.message().find(a.id), std::string::npos);
  EXPECT_EQ(f.LedgerSize(), size);
  // Unique per type: a contact may share the lead's email.
  f.Add("contact", {{"email", "ann@example.com"}});
}

TEST(Records, ReferencesMustExist) {
  Fixture f;
  Record lead = f.Add("lead", {{"email", "ann@example.com"}});
  Status s = f.AddStatus("deal", {{"title", "Website"},
                                  {"next_action_at", "2026-02-01"},
                                  {"lead_id", "lead_01m87vh7dpa1zpr11a9g3s1xkk"}});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("does not exist"), std::string::npos);
  Record deal = f.Add("deal", {{"title", "Website"},
                               {"value", "4800"},
                               {"currency", "eur"},
                               {"next_action_at", "2026-02-01"},
                               {"lead_id", lead.id}});
  EXPECT_EQ(deal.Get("lead_id"), lead.id);
  EXPECT_EQ(deal.Get("status"), "open");
  // A contact id in a lead field is refused by shape.
  Record contact = f.Add("contact", {{"name", "Bo"}});
  EXPECT_FALSE(
      f.AddStatus("deal",
                  {{"title", "x"}, {"next_action_at", "2026-02-01"}, {"lead_id", contact.id}})
          .ok());
  // Documents reference stored artifacts only.
  EXPECT_FALSE(
      f.AddStatus("document", {{"title", "Proposal"}, {"artifact", std::string(64, 'a')}}).ok());
  std::string hash;
  ASSERT_TRUE(f.ws->Write([&](Txn& txn) -> Status {
                    KEEL_ASSIGN_OR_RETURN(auto info, PutArtifact(txn, "proposal text", {}));
                    hash = info.hash;
                    return OkStatus();
                  })
                  .ok());
  f.Add("document", {{"title", "Proposal"}, {"artifact", hash}, {"deal_id", deal.id}});
}

TEST(Records, DealRules) {
  Fixture f;
  EXPECT_NE(f.AddStatus("deal", {{"title", "x"}}).message().find("next_action_at"),
            std::string::npos);
  EXPECT_NE(f.AddStatus("deal", {{"title", "x"}, {"next_action_at", "2026-02-01"}, {"value", "10"}})
                .message()
                .find("needs a currency"),
            std::string::npos);
  EXPECT_NE(f.AddStatus("deal", {{"title", "x"}, {"status", "lost"}}).message().find("lost_reason"),
            std::string::npos);
  f.Add("deal", {{"title", "x"}, {"status", "lost"}, {"lost_reason", "budget"}});
  EXPECT_FALSE(
      f.AddStatus("project",
                  {{"name", "p"}, {"start_date", "2026-03-01"}, {"due_date", "2026-02-01"}})
          .ok());
}

TEST(Records, InvoiceNumberUnique) {
  Fixture f;
  f.Add("invoice", {{"number", "2026-001"}, {"amount", "1500"}, {"currency", "EUR"}});
  Status s =
      f.AddStatus("invoice", {{"number", "2026-001"}, {"amount", "10"}, {"currency", "EUR"}});
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
  EXPECT_FALSE(f.AddStatus("invoice", {{"number", "2026-002"}, {"amount", "10"}}).ok());
}

TEST(Records, UpdateRecordsDiffAndVersion) {
  Fixture f;
  Record r = f.Add("lead", {{"email", "ann@example.com"}, {"name", "Ann"}, {"title", "CEO"}});
  f.clock.Advance(1000000);
  RecordUpdate u;
  u.set = {{"status", "contacted"}, {"name", "Ann Lee"}};
  u.unset = {"title"};
  auto res = UpdateRecord(*f.ws, r.id, u);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_TRUE(res->changed);
  EXPECT_EQ(res->record.version, 2);
  EXPECT_EQ(res->record.Get("title"), "");
  EXPECT_EQ(res->changes.at("status"),
            std::make_pair(std::string("new"), std::string("contacted")));
  auto got = *GetRecord(*f.ws, r.id);
  EXPECT_EQ(got.Get("name"), "Ann Lee");
  EXPECT_EQ(got.updated_us, f.clock.NowMicros());
  EXPECT_LT(got.created_us, got.updated_us);

  LedgerQuery q;
  q.subject = r.id;
  q.kind = "record.changed";
  auto entries = *f.ws->QueryLedger(q);
  ASSERT_EQ(entries.size(), 1u);
  auto p = Payload(entries[0]);
  EXPECT_EQ(p["version"], 2);
  EXPECT_EQ(p["changes"]["title"], nlohmann::json::array({"CEO", nullptr}));
  EXPECT_EQ(p["changes"]["status"], nlohmann::json::array({"new", "contacted"}));
  EXPECT_FALSE(p["changes"].contains("email"));

  // Same values again: no change, no entry.
  int64_t size = f.LedgerSize();
  RecordUpdate same;
  same.set = {{"status", "CONTACTED"}};
  auto res2 = UpdateRecord(*f.ws, r.id, same);
  ASSERT_TRUE(res2.ok());
  EXPECT_FALSE(res2->changed);
  EXPECT_EQ(f.LedgerSize(), size);
}

TEST(Records, UpdateRefusals) {
  Fixture f;
  Record a = f.Add("lead", {{"email", "a@example.com"}});
  Record b = f.Add("lead", {{"email", "b@example.com"}});
  int64_t size = f.LedgerSize();
  RecordUpdate u;
  u.set = {{"email", "A@example.com"}};
  EXPECT_EQ(UpdateRecord(*f.ws, b.id, u).status().code(), StatusCode::kAlreadyExists);
  RecordUpdate stale;
  stale.set = {{"name", "x"}};
  stale.expected_version = 5;
  EXPECT_EQ(UpdateRecord(*f.ws, a.id, stale).status().code(), StatusCode::kFailedPrecondition);
  RecordUpdate unset_all;
  unset_all.unset = {"email"};
  EXPECT_NE(UpdateRecord(*f.ws, a.id, unset_all).status().message().find("needs email or name"),
            std::string::npos);
  RecordUpdate both;
  both.set = {{"name", "x"}};
  both.unset = {"name"};
  EXPECT_FALSE(UpdateRecord(*f.ws, a.id, both).ok());
  RecordUpdate unknown;
  unknown.unset = {"nope"};
  EXPECT_FALSE(UpdateRecord(*f.ws, a.id, unknown).ok());
  EXPECT_EQ(UpdateRecord(*f.ws, "lead_01m87vh7dpa1zpr11a9g3s1xkk", stale).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(f.LedgerSize(), size);
  // Changing to one's own email (case only) is fine and is no change.
  RecordUpdate self;
  self.set = {{"email", "A@Example.com"}};
  auto r = UpdateRecord(*f.ws, a.id, self);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->changed);
}

TEST(Records, DryRunWritesNothing) {
  Fixture f;
  int64_t size = f.LedgerSize();
  auto r = CreateRecord(*f.ws, "lead", {{"email", "ann@example.com"}}, {}, true);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(f.LedgerSize(), size);
  EXPECT_EQ(GetRecord(*f.ws, r->id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(CreateRecord(*f.ws, "lead", {{"email", "bad"}}, {}, true).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(Records, ListFiltersAndFindByEmail) {
  Fixture f;
  Record a = f.Add("lead", {{"email", "a@example.com"}, {"source", "referral"}});
  f.clock.Advance(1);
  f.Add("lead", {{"email", "b@example.com"}, {"source", "ads"}});
  f.clock.Advance(1);
  Record c = f.Add("lead", {{"email", "c@example.com"}, {"source", "referral"}});
  f.Add("company", {{"name", "Acme"}});
  auto all = *ListRecords(*f.ws, {});
  EXPECT_EQ(all.size(), 4u);
  auto leads = *ListRecords(*f.ws, {"lead", {}, 0});
  ASSERT_EQ(leads.size(), 3u);
  EXPECT_EQ(leads[0].id, a.id);  // oldest first
  auto ref = *ListRecords(*f.ws, {"lead", {{"source", "referral"}}, 0});
  ASSERT_EQ(ref.size(), 2u);
  EXPECT_EQ(ref[1].id, c.id);
  EXPECT_EQ(ListRecords(*f.ws, {"lead", {{"source", "referral"}}, 1})->size(), 1u);
  EXPECT_EQ(ListRecords(*f.ws, {"lead", {{"email", "C@Example.com"}}, 0})->size(), 1u);
  EXPECT_EQ(ListRecords(*f.ws, {"lead", {{"name", ""}}, 0})->size(), 3u);  // unset
  EXPECT_FALSE(ListRecords(*f.ws, {"lead", {{"colour", "red"}}, 0}).ok());
  EXPECT_FALSE(ListRecords(*f.ws, {"", {{"source", "ads"}}, 0}).ok());
  EXPECT_FALSE(ListRecords(*f.ws, {"widget", {}, 0}).ok());

  auto found = FindByEmail(*f.ws, "lead", " B@EXAMPLE.COM ");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->Get("source"), "ads");
  EXPECT_FALSE(FindByEmail(*f.ws, "lead", "z@example.com")->has_value());
  EXPECT_FALSE(FindByEmail(*f.ws, "company", "z@example.com").ok());
}

TEST(Records, IdsAreStableAndTyped) {
  for (const auto& t : RecordTypes()) {
    EXPECT_EQ(FindRecordType(t.type), &t);
    EXPECT_EQ(RecordTypeOfId(t.prefix + "_01m87vh7dpa1zpr11a9g3s1xkk"), &t);
  }
  EXPECT_EQ(RecordTypeOfId("leads_x"), nullptr);
  EXPECT_EQ(RecordTypeOfId("lead"), nullptr);
}

// ----- import -----

const char kGood[] =
    "Email,Name,Company\n"
    "ann@example.com,Ann Lee,Example Co\n"
    "\n"
    "bob@example.org,\"Stone, Bob\",\"Stone \"\"&\"\" Sons\"\n";

TEST(Import, AllRowsInOneTransactionWithProvenance) {
  Fixture f;
  int64_t before = f.LedgerSize();
  ImportOptions o;
  o.file_name = "leads.csv";
  auto r = ImportLeads(*f.ws, kGood, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->problems.empty());
  EXPECT_TRUE(r->written);
  EXPECT_EQ(r->rows, 2);
  EXPECT_EQ(r->imported, 2);
  ASSERT_EQ(r->ids.size(), 2u);
  // artifact.put + 2 record.created + import.completed, all in one transaction (one time).
  auto entries = *f.ws->QueryLedger(After(before));
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0].kind, "artifact.put");
  EXPECT_EQ(entries[3].kind, "import.completed");
  EXPECT_EQ(entries[3].seq, r->ledger_seq);
  for (const auto& e : entries) EXPECT_EQ(e.time_us, entries[0].time_us);
  auto p1 = Payload(entries[1]);
  EXPECT_EQ(p1["source"]["line"], 2);
  EXPECT_EQ(p1["source"]["artifact"], r->file_hash);
  EXPECT_EQ(ToHex(entries[1].artifacts.at(0)), r->file_hash);
  EXPECT_EQ(Payload(entries[2])["source"]["line"], 4);
  auto done = Payload(entries[3]);
  EXPECT_EQ(done["rows"], 2);
  EXPECT_EQ(done["imported"], 2);
  EXPECT_EQ(done["file"], "leads.csv");
  EXPECT_EQ(*GetArtifact(*f.ws, r->file_hash), kGood);
  auto bob = *GetRecord(*f.ws, r->ids[1]);
  EXPECT_EQ(bob.Get("name"), "Stone, Bob");
  EXPECT_EQ(bob.Get("company"), "Stone \"&\" Sons");
  // Listing keeps file order.
  auto leads = *ListRecords(*f.ws, {"lead", {}, 0});
  EXPECT_EQ(leads[0].id, r->ids[0]);
  EXPECT_EQ(leads[1].id, r->ids[1]);
}

const char kBad[] =
    "email,name,website\n"
    "ann@example.com,Ann,example.com\n"         // 2 ok
    ",No Email,\n"                              // 3 missing email
    "nope,Bad,\n"                               // 4 invalid email
    "Ann@Example.com,Dup,\n"                    // 5 duplicate of 2
    "old@example.com,Existing,\n"               // 6 duplicate of an existing lead
    "x@example.com,Short\n"                     // 7 too few
    "y@example.com,Long,a.example.com,extra\n"  // 8 too many
    "z@example.com,Zed,not a url\n"             // 9 bad website
    "w@example.com,\"Wanda\nMaximoff\",\n"      // 10-11 a newline in a one-line field
    "ok@example.com,Fine,fine.example.com\n";   // 12 ok

TEST(Import, BadFileImportsNothingAndNamesEveryLine) {
  Fixture f;
  Record old = f.Add("lead", {{"email", "old@example.com"}});
  int64_t before = f.LedgerSize();
  auto r = ImportLeads(*f.ws, kBad, {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->written);
  EXPECT_EQ(r->imported, 0);
  EXPECT_EQ(r->rows, 10);
  std::vector<int64_t> lines;
  for (const auto& p : r->problems) lines.push_back(p.line);
  EXPECT_EQ(lines, (std::vector<int64_t>{3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(r->problems[0].reason, "missing required field email");
  EXPECT_NE(r->problems[1].reason.find("has no @"), std::string::npos);
  EXPECT_EQ(r->problems[2].reason, "duplicate email ann@example.com (first on line 2)");
  EXPECT_NE(r->problems[3].reason.find(old.id), std::string::npos);
  EXPECT_EQ(r->problems[4].reason, "too few fields: 2 where the header has 3");
  EXPECT_EQ(r->problems[5].reason, "too many fields: 4 where the header has 3");
  EXPECT_NE(r->problems[6].reason.find("website"), std::string::npos);
  EXPECT_NE(r->problems[7].reason.find("line break"), std::string::npos);
  EXPECT_EQ(f.LedgerSize(), before);
  EXPECT_EQ(ListRecords(*f.ws, {"lead", {}, 0})->size(), 1u);
  EXPECT_FALSE(GetArtifactInfo(*f.ws, r->file_hash).ok());  // not even the file
}

TEST(Import, SkipBadImportsTheGoodRows) {
  Fixture f;
  f.Add("lead", {{"email", "old@example.com"}});
  ImportOptions o;
  o.skip_bad = true;
  auto r = ImportLeads(*f.ws, kBad, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->written);
  EXPECT_EQ(r->imported, 2);
  EXPECT_EQ(r->skipped, 8);
  EXPECT_EQ(ListRecords(*f.ws, {"lead", {}, 0})->size(), 3u);
  auto done = *f.ws->QueryLedger(Kind("import.completed"));
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(Payload(done[0])["skipped_lines"], nlohmann::json::array({3, 4, 5, 6, 7, 8, 9, 10}));
  // Importing the same file again: every row is now a duplicate or bad.
  auto again = ImportLeads(*f.ws, kBad, o);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->imported, 0);
  EXPECT_FALSE(again->written);
}

TEST(Import, DryRunValidatesWithoutWriting) {
  Fixture f;
  int64_t before = f.LedgerSize();
  ImportOptions o;
  o.dry_run = true;
  auto r = ImportLeads(*f.ws, kGood, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->imported, 2);
  EXPECT_FALSE(r->written);
  EXPECT_EQ(f.LedgerSize(), before);
  auto bad = ImportLeads(*f.ws, kBad, o);
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->problems.size(), 7u);  // no existing "old@" lead here
  EXPECT_EQ(bad->imported, 0);
}

TEST(Import, HeaderProblemsAreNeverSkipped) {
  Fixture f;
  ImportOptions o;
  o.skip_bad = true;
  auto r = ImportLeads(*f.ws, "email,nmae\na@example.com,x\n", o);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->problems.size(), 1u);
  EXPECT_EQ(r->problems[0].line, 1);
  EXPECT_NE(r->problems[0].reason.find("unknown column 'nmae' (allowed: email, name"),
            std::string::npos);
  EXPECT_FALSE(r->written);
  r = ImportLeads(*f.ws, "name,company\nAnn,Acme\n", o);
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->problems.at(0).reason.find("no email column"), std::string::npos);
  r = ImportLeads(*f.ws, "email,Email\na@example.com,b@example.com\n", o);
  EXPECT_NE(r->problems.at(0).reason.find("appears twice"), std::string::npos);
  EXPECT_FALSE(r->written);
}

TEST(Import, MalformedFilesAreErrors) {
  Fixture f;
  EXPECT_EQ(ImportLeads(*f.ws, "", {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(ImportLeads(*f.ws, "email\n", {}).status().message().find("no rows"),
            std::string::npos);
  EXPECT_NE(ImportLeads(*f.ws, "email\n\"a@example.com\n", {}).status().message().find("line 2"),
            std::string::npos);
  EXPECT_NE(
      ImportLeads(*f.ws, "email\nx\xE9@example.com\n", {}).status().message().find("not UTF-8"),
      std::string::npos);
  EXPECT_EQ(f.LedgerSize(), 1);
}

TEST(Import, ManyRowsStayAllOrNothing) {
  Fixture f;
  std::string csv = "email,name\n";
  for (int i = 0; i < 2000; ++i) {
    csv += "user" + std::to_string(i) + "@example.com,User " + std::to_string(i) + "\n";
  }
  std::string bad = csv + "user7@example.com,Again\n";
  auto r = ImportLeads(*f.ws, bad, {});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->problems.size(), 1u);
  EXPECT_EQ(r->problems[0].line, 2002);
  EXPECT_EQ(ListRecords(*f.ws, {"lead", {}, 0})->size(), 0u);
  r = ImportLeads(*f.ws, csv, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->imported, 2000);
  EXPECT_EQ(ListRecords(*f.ws, {"lead", {}, 0})->size(), 2000u);
}

}  // namespace
}  // namespace keel::store
