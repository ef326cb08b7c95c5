#include "store/vault.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "core/testing_util.h"
#include "store/sqlite/sql.h"

namespace keel::store {
namespace {

using keel::testing::TempDir;

struct VaultFixture {
  TempDir tmp;
  SimulatedClock clock;
  SeededRandom random{7};
  Env env;
  std::unique_ptr<Workspace> ws;
  VaultFixture() {
    env.clock = &clock;
    env.random = &random;
    EXPECT_TRUE(Workspace::Init(tmp.Sub("ws"), InitOptions{}, env).ok());
    ws = std::move(Workspace::Open(tmp.Sub("ws"), {}, env)).value();
  }
  std::string key_path() const { return tmp.Sub("ws/keys/vault.key"); }
  Status Set(Vault& v, const std::string& name, std::string_view value) {
    return ws->Write([&](Txn& t) { return v.SetSecret(t, name, value); });
  }
  // Runs raw SQL against the workspace (tampering).
  void Sql(const std::string& q) {
    std::lock_guard<std::recursive_mutex> l(ws->mu());
    ASSERT_TRUE(ws->db()->Exec(q).ok()) << q;
  }
  std::vector<LedgerEntry> Entries(const std::string& kind) {
    LedgerQuery q;
    q.kind = kind;
    return *ws->QueryLedger(q);
  }
};

VaultOptions Passphrase(const std::string& p) {
  VaultOptions o;
  o.key_mode = VaultKeyMode::kPassphrase;
  o.kdf = KdfStrength::kInteractive;
  o.passphrase = p;
  return o;
}

TEST(Vault, SetGetListRemoveAndLedgerCarriesNoValue) {
  VaultFixture f;
  Vault v(f.ws.get(), {});
  const std::string value = "s3cret-value-\x01\xff-end";
  ASSERT_TRUE(f.Set(v, "smtp.password", value).ok());
  ASSERT_TRUE(f.Set(v, "stripe_key", "sk_test_1").ok());
  ASSERT_TRUE(f.Set(v, "smtp.password", value + "2").ok());  // replace

  auto got = v.GetSecret("smtp.password", {"adapter:smtp", "login", "run_1", "step_a"});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->Reveal(), value + "2");
  // Used twice more by the same actor/purpose/run: recorded once. A new run: recorded again.
  ASSERT_TRUE(v.GetSecret("smtp.password", {"adapter:smtp", "login", "run_1", "step_b"}).ok());
  ASSERT_TRUE(v.GetSecret("smtp.password", {"adapter:smtp", "login", "run_1", ""}).ok());
  ASSERT_TRUE(v.GetSecret("smtp.password", {"adapter:smtp", "login", "run_2", ""}).ok());
  auto used = f.Entries("secret.used");
  ASSERT_EQ(used.size(), 2u);
  EXPECT_EQ(used[0].actor, "adapter:smtp");
  EXPECT_EQ(used[0].run_id, "run_1");
  EXPECT_EQ(used[0].step_id, "step_a");
  EXPECT_EQ(used[0].payload, R"({"name":"smtp.password","purpose":"login"})");

  auto list = *v.ListSecrets();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].name, "smtp.password");
  EXPECT_EQ(list[1].name, "stripe_key");

  ASSERT_TRUE(f.ws->Write([&](Txn& t) { return v.RemoveSecret(t, "stripe_key"); }).ok());
  EXPECT_EQ(f.ws->Write([&](Txn& t) { return v.RemoveSecret(t, "stripe_key"); }).code(),
            StatusCode::kNotFound);
  EXPECT_EQ(v.GetSecret("stripe_key", {}).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(v.ListSecrets()->size(), 1u);

  auto sets = f.Entries("secret.set");
  ASSERT_EQ(sets.size(), 3u);
  EXPECT_EQ(sets[0].payload, R"({"name":"smtp.password","replaced":false})");
  EXPECT_EQ(sets[2].payload, R"({"name":"smtp.password","replaced":true})");
  EXPECT_EQ(sets[0].subject, "secret:smtp.password");
  EXPECT_EQ(f.Entries("secret.removed").size(), 1u);
  EXPECT_EQ(f.Entries("vault.created").size(), 1u);
  for (const auto& e : f.Entries("")) {
    EXPECT_EQ(e.payload.find("s3cret"), std::string::npos) << e.kind;
  }
  // The key file: 32 bytes, owner-only.
  EXPECT_EQ(*f.env.fs->Mode(f.key_path()), 0600);
  EXPECT_EQ(*f.env.fs->FileSize(f.key_path()), 32u);
}

TEST(Vault, GetInsideATransactionRecordsUseInIt) {
  VaultFixture f;
  Vault v(f.ws.get(), {});
  ASSERT_TRUE(f.Set(v, "api", "k1").ok());
  // Rolled back: the use is not recorded, and not remembered as recorded.
  Status s = f.ws->Write([&](Txn& t) -> Status {
    KEEL_ASSIGN_OR_RETURN(SecretValue val, v.GetSecret(t, "api", {"provider:x", "call", "", ""}));
    EXPECT_EQ(val.Reveal(), "k1");
    return Cancelled("step failed");
  });
  EXPECT_EQ(s.code(), StatusCode::kCancelled);
  EXPECT_TRUE(f.Entries("secret.used").empty());
  ASSERT_TRUE(f.ws->Write([&](Txn& t) {
                    return v.GetSecret(t, "api", {"provider:x", "call", "", ""}).status();
                  })
                  .ok());
  EXPECT_EQ(f.Entries("secret.used").size(), 1u);
}

TEST(Vault, BadNamesAndValuesAreRefusedWithoutEchoingThem) {
  VaultFixture f;
  Vault v(f.ws.get(), {});
  for (const std::string& bad :
       {std::string(), std::string(129, 'a'), std::string("a b"), std::string("a/b"),
        std::string("../x"), std::string("na\0me", 5), std::string("é"), std::string("hunter2!")}) {
    Status s = f.Set(v, bad, "value");
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    if (bad.size() > 3) {
      EXPECT_EQ(s.message().find(bad), std::string::npos) << s.message();
    }
    EXPECT_EQ(v.GetSecret(bad, {}).status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(f.Set(v, std::string(128, 'a'), "v").ok());
  EXPECT_TRUE(f.Set(v, "A-z_0.9", "v").ok());
  EXPECT_EQ(f.Set(v, "empty", "").code(), StatusCode::kInvalidArgument);
  std::string big(kMaxSecretBytes + 1, 'q');
  Status s = f.Set(v, "big", big);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message().find("qqqq"), std::string::npos);
  EXPECT_TRUE(f.Set(v, "max", std::string(kMaxSecretBytes, 'q')).ok());
}

TEST(Vault, KeyFileReadableByOthersIsRefused) {
  VaultFixture f;
  {
    Vault v(f.ws.get(), {});
    ASSERT_TRUE(f.Set(v, "a", "value-a").ok());
  }
  ASSERT_EQ(::chmod(f.key_path().c_str(), 0644), 0);
  Vault v(f.ws.get(), {});
  auto r = v.GetSecret("a", {});
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(r.status().message().find("0644"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("chmod 600"), std::string::npos);
  EXPECT_EQ(f.Set(v, "b", "value-b").code(), StatusCode::kPermissionDenied);
  ASSERT_EQ(::chmod(f.key_path().c_str(), 0640), 0);
  EXPECT_EQ(v.GetSecret("a", {}).status().code(), StatusCode::kPermissionDenied);
  ASSERT_EQ(::chmod(f.key_path().c_str(), 0600), 0);
  EXPECT_EQ(v.GetSecret("a", {})->Reveal(), "value-a");
}

TEST(Vault, WrongOrMissingKeyFileIsDataLossNamingTheSecret) {
  VaultFixture f;
  {
    Vault v(f.ws.get(), {});
    ASSERT_TRUE(f.Set(v, "smtp.password", "the-real-value").ok());
  }
  std::string good = keel::testing::ReadFileOrDie(f.key_path());
  // Another 32-byte key, with the right rights.
  ASSERT_TRUE(WriteFileAtomic(f.env.fs, f.key_path(), std::string(32, 'k'), 0600).ok());
  {
    Vault v(f.ws.get(), {});
    auto r = v.GetSecret("smtp.password", {});
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(r.status().message().find("smtp.password"), std::string::npos);
    EXPECT_EQ(r.status().message().find("the-real-value"), std::string::npos);
    // A wrong key must not seal new secrets under itself.
    EXPECT_EQ(f.Set(v, "other", "x").code(), StatusCode::kDataLoss);
    EXPECT_EQ(v.ListSecrets()->size(), 1u);
  }
  ASSERT_TRUE(WriteFileAtomic(f.env.fs, f.key_path(), std::string(31, 'k'), 0600).ok());
  EXPECT_EQ(Vault(f.ws.get(), {}).GetSecret("smtp.password", {}).status().code(),
            StatusCode::kDataLoss);
  ASSERT_TRUE(f.env.fs->RemoveFile(f.key_path()).ok());
  {
    Vault v(f.ws.get(), {});
    auto r = v.GetSecret("smtp.password", {});
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(r.status().message().find("missing"), std::string::npos);
    // A missing key is never silently replaced by a new one.
    EXPECT_EQ(f.Set(v, "other", "x").code(), StatusCode::kDataLoss);
    EXPECT_FALSE(f.env.fs->Exists(f.key_path()));
  }
  ASSERT_TRUE(WriteFileAtomic(f.env.fs, f.key_path(), good, 0600).ok());
  EXPECT_EQ(Vault(f.ws.get(), {}).GetSecret("smtp.password", {})->Reveal(), "the-real-value");
}

TEST(Vault, TamperedOrSwappedCiphertextIsDataLoss) {
  VaultFixture f;
  Vault v(f.ws.get(), {});
  ASSERT_TRUE(f.Set(v, "a", "value-of-a").ok());
  ASSERT_TRUE(f.Set(v, "b", "value-of-b").ok());
  // Every single-bit flip of the ciphertext (value + tag) is caught.
  std::string ct;
  {
    std::lock_guard<std::recursive_mutex> l(f.ws->mu());
    auto st =
        std::move(f.ws->db()->Prepare("SELECT ciphertext FROM secrets WHERE name = 'a'")).value();
    ASSERT_TRUE(*st->Step());
    ct = std::string(st->BlobView(0));
  }
  for (size_t bit = 0; bit < ct.size() * 8; bit += 7) {
    std::string bad = ct;
    bad[bit / 8] = static_cast<char>(bad[bit / 8] ^ (1 << (bit % 8)));
    {
      std::lock_guard<std::recursive_mutex> l(f.ws->mu());
      auto st = std::move(f.ws->db()->Prepare("UPDATE secrets SET ciphertext = ? WHERE name = 'a'"))
                    .value();
      st->BindBlob(1, bad);
      ASSERT_TRUE(st->Run().ok());
    }
    auto r = v.GetSecret("a", {});
    ASSERT_EQ(r.status().code(), StatusCode::kDataLoss) << bit;
    EXPECT_NE(r.status().message().find("secret 'a'"), std::string::npos);
  }
  // Truncated.
  f.Sql("UPDATE secrets SET ciphertext = x'0102' WHERE name = 'a'");
  EXPECT_EQ(v.GetSecret("a", {}).status().code(), StatusCode::kDataLoss);
  // b's nonce and ciphertext moved under the name a: the name is associated data.
  f.Sql(
      "UPDATE secrets SET nonce = (SELECT nonce FROM secrets WHERE name = 'b'), ciphertext = "
      "(SELECT ciphertext FROM secrets WHERE name = 'b') WHERE name = 'a'");
  auto r = v.GetSecret("a", {});
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(r.status().message().find("value-of-b"), std::string::npos);
  EXPECT_EQ(v.GetSecret("b", {})->Reveal(), "value-of-b");
  // A damaged key check is reported as a key problem, not decrypted around.
  f.Sql("UPDATE meta SET value = '00' WHERE key = 'vault.key_check'");
  EXPECT_EQ(Vault(f.ws.get(), {}).GetSecret("b", {}).status().code(), StatusCode::kDataLoss);
}

TEST(Vault, PassphraseMode) {
  VaultFixture f;
  {
    Vault v(f.ws.get(), Passphrase("correct horse"));
    ASSERT_TRUE(f.Set(v, "a", "value-a").ok());
    ASSERT_TRUE(f.Set(v, "b", "value-b").ok());  // key cached: no second derivation
  }
  EXPECT_FALSE(f.env.fs->Exists(f.key_path()));
  {
    Vault v(f.ws.get(), Passphrase("correct horse"));
    EXPECT_EQ(v.GetSecret("b", {})->Reveal(), "value-b");
  }
  {
    Vault v(f.ws.get(), Passphrase("wrong horse"));
    auto r = v.GetSecret("a", {});
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(r.status().message().find("secret 'a'"), std::string::npos);
    EXPECT_NE(r.status().message().find("passphrase"), std::string::npos);
    EXPECT_EQ(f.Set(v, "c", "value-c").code(), StatusCode::kDataLoss);
  }
  EXPECT_EQ(Vault(f.ws.get(), Passphrase("")).GetSecret("a", {}).status().code(),
            StatusCode::kFailedPrecondition);
  // keel.yaml switched to the key file: refused, not silently re-keyed.
  Vault file_mode(f.ws.get(), {});
  auto r = file_mode.GetSecret("a", {});
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("vault.key: passphrase"), std::string::npos);
  EXPECT_EQ(f.Set(file_mode, "c", "v").code(), StatusCode::kFailedPrecondition);
  // Damaged KDF settings never reach Argon2id with absurd limits.
  f.Sql(
      "UPDATE meta SET value = '{\"alg\":\"argon2id13\",\"memlimit\":99999999999,"
      "\"opslimit\":3,\"salt\":\"00\"}' WHERE key = 'vault.kdf'");
  EXPECT_EQ(Vault(f.ws.get(), Passphrase("correct horse")).GetSecret("a", {}).status().code(),
            StatusCode::kDataLoss);
}

TEST(Vault, PassphraseVaultCreationRolledBackLeavesNoHalfVault) {
  VaultFixture f;
  Vault v(f.ws.get(), Passphrase("pw1"));
  Status s = f.ws->Write([&](Txn& t) -> Status {
    KEEL_RETURN_IF_ERROR(v.SetSecret(t, "a", "value"));
    return Cancelled("abort");
  });
  ASSERT_EQ(s.code(), StatusCode::kCancelled);
  EXPECT_TRUE(f.Entries("vault.created").empty());
  // The key of the rolled-back salt was not cached: a fresh vault is created and works.
  ASSERT_TRUE(f.Set(v, "a", "value").ok());
  EXPECT_EQ(Vault(f.ws.get(), Passphrase("pw1")).GetSecret("a", {})->Reveal(), "value");
}

TEST(Vault, ParseConfig) {
  auto d = ParseVaultConfig("workspace:\n  id: ws_1\n", "keel.yaml");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->key_mode, VaultKeyMode::kFile);
  EXPECT_EQ(d->kdf, KdfStrength::kModerate);
  auto p = ParseVaultConfig("vault:\n  key: passphrase\n  kdf: interactive\n", "keel.yaml");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->key_mode, VaultKeyMode::kPassphrase);
  EXPECT_EQ(p->kdf, KdfStrength::kInteractive);
  auto bad = ParseVaultConfig("a: 1\nvault:\n  key: keyring\n", "keel.yaml");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("line 3"), std::string::npos) << bad.status().message();
  EXPECT_EQ(ParseVaultConfig("vault: [1\n", "k").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseVaultConfig("vault:\n  kdf: fast\n", "k").status().code(),
            StatusCode::kInvalidArgument);
}

TEST(SecretValue, WipesAndMoves) {
  SecretValue a("abc");
  SecretValue b = std::move(a);
  EXPECT_TRUE(a.empty());  // NOLINT: moved-from is defined as empty
  EXPECT_EQ(b.Reveal(), "abc");
  SecretValue c;
  c = std::move(b);
  EXPECT_EQ(c.Reveal(), "abc");
  EXPECT_EQ(b.size(), 0u);  // NOLINT
}

}  // namespace
}  // namespace keel::store
