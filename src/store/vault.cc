#include "store/vault.h"

#include <sodium.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/json.h"
#include "store/sqlite/sql.h"

namespace keel::store {
namespace {

constexpr char kKeyFile[] = "vault.key";
constexpr char kMetaMode[] = "vault.key_mode";
constexpr char kMetaKdf[] = "vault.kdf";
constexpr char kMetaCheck[] = "vault.key_check";
constexpr char kCheckPlain[] = "keel vault key check v1";
constexpr char kCheckAd[] = "keel.vault.v1/key_check";
constexpr char kSecretAdPrefix[] = "keel.vault.v1/secret/";
constexpr size_t kKeyBytes = crypto_aead_xchacha20poly1305_ietf_KEYBYTES;
constexpr size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr size_t kTagBytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;
// Upper bound accepted from stored Argon2id limits, so a damaged meta row cannot make keel
// try to allocate many gigabytes.
constexpr uint64_t kMaxMemlimit = 1ull << 30;

static_assert(kKeyBytes == 32);

Status SodiumInit() {
  static const int rc = sodium_init();
  if (rc < 0) return Internal("libsodium failed to initialise");
  return OkStatus();
}

const char* ModeName(VaultKeyMode m) {
  return m == VaultKeyMode::kFile ? "file" : "passphrase";
}

std::string Hex(std::string_view bin) {
  std::string out(bin.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bin.data()),
                 bin.size());
  out.pop_back();
  return out;
}

std::optional<std::string> Unhex(std::string_view hex) {
  std::string out(hex.size() / 2, '\0');
  size_t len = 0;
  if (hex.size() % 2 != 0 ||
      sodium_hex2bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), hex.data(),
                     hex.size(), nullptr, &len, nullptr) != 0 ||
      len != out.size()) {
    return std::nullopt;
  }
  return out;
}

Result<std::optional<std::string>> ReadMeta(sql::Db* db, const char* key) {
  KEEL_ASSIGN_OR_RETURN(auto* st, db->Cached("SELECT value FROM meta WHERE key = ?"));
  st->Bind(1, std::string_view(key));
  KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
  std::optional<std::string> out;
  if (row) out = st->Text(0);
  st->Reset();
  return out;
}

Status WriteMeta(sql::Db* db, const char* key, const std::string& value) {
  KEEL_ASSIGN_OR_RETURN(auto* st, db->Cached("INSERT INTO meta(key, value) VALUES (?, ?) "
                                             "ON CONFLICT(key) DO UPDATE SET value = "
                                             "excluded.value"));
  st->Bind(1, std::string_view(key)).Bind(2, value);
  Status s = st->Run();
  st->Reset();
  return s;
}

std::string SecretAd(const std::string& name) {
  return kSecretAdPrefix + name;
}

std::string Seal(const unsigned char* key, std::string_view plain, std::string_view ad,
                 std::string* nonce_out) {
  std::string nonce(kNonceBytes, '\0');
  randombytes_buf(nonce.data(), nonce.size());
  std::string ct(plain.size() + kTagBytes, '\0');
  unsigned long long ct_len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      reinterpret_cast<unsigned char*>(ct.data()), &ct_len,
      reinterpret_cast<const unsigned char*>(plain.data()), plain.size(),
      reinterpret_cast<const unsigned char*>(ad.data()), ad.size(), nullptr,
      reinterpret_cast<const unsigned char*>(nonce.data()), key);
  ct.resize(static_cast<size_t>(ct_len));
  *nonce_out = std::move(nonce);
  return ct;
}

bool CheckKey(const unsigned char* key, const std::string& check_hex) {
  auto bin = Unhex(check_hex);
  if (!bin || bin->size() != kNonceBytes + sizeof(kCheckPlain) - 1 + kTagBytes) return false;
  std::string plain(bin->size() - kNonceBytes - kTagBytes, '\0');
  unsigned long long len = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(bin->data());
  int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(
      reinterpret_cast<unsigned char*>(plain.data()), &len, nullptr, p + kNonceBytes,
      bin->size() - kNonceBytes, reinterpret_cast<const unsigned char*>(kCheckAd),
      sizeof(kCheckAd) - 1, p, key);
  return rc == 0 && plain == kCheckPlain;
}

}  // namespace

// ---- SecretValue ----

SecretValue::SecretValue(std::string_view bytes) {
  if (bytes.empty()) return;
  data_ = new unsigned char[bytes.size()];
  size_ = bytes.size();
  std::memcpy(data_, bytes.data(), size_);
}

SecretValue SecretValue::WithSize(size_t n) {
  SecretValue v;
  if (n == 0) return v;
  v.data_ = new unsigned char[n];
  v.size_ = n;
  return v;
}

void SecretValue::Wipe() {
  if (data_ != nullptr) {
    sodium_memzero(data_, size_);
    delete[] data_;
  }
  data_ = nullptr;
  size_ = 0;
}

SecretValue::~SecretValue() {
  Wipe();
}

SecretValue::SecretValue(SecretValue&& o) noexcept : data_(o.data_), size_(o.size_) {
  o.data_ = nullptr;
  o.size_ = 0;
}

SecretValue& SecretValue::operator=(SecretValue&& o) noexcept {
  if (this != &o) {
    Wipe();
    data_ = o.data_;
    size_ = o.size_;
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

// ---- configuration and names ----

Result<VaultOptions> ParseVaultConfig(const std::string& yaml_text, const std::string& path) {
  VaultOptions o;
  try {
    YAML::Node root = YAML::Load(yaml_text);
    if (!root.IsMap()) return o;
    YAML::Node v = root["vault"];
    if (!v) return o;
    auto line = [](const YAML::Node& n) { return std::to_string(n.Mark().line + 1); };
    if (!v.IsMap()) return InvalidArgument(path + " line " + line(v) + ": vault must be a mapping");
    if (YAML::Node k = v["key"]) {
      std::string s = k.as<std::string>();
      if (s == "file") {
        o.key_mode = VaultKeyMode::kFile;
      } else if (s == "passphrase") {
        o.key_mode = VaultKeyMode::kPassphrase;
      } else {
        return InvalidArgument(path + " line " + line(k) +
                               ": vault.key must be file or passphrase, not '" + s + "'");
      }
    }
    if (YAML::Node k = v["kdf"]) {
      std::string s = k.as<std::string>();
      if (s == "moderate") {
        o.kdf = KdfStrength::kModerate;
      } else if (s == "interactive") {
        o.kdf = KdfStrength::kInteractive;
      } else {
        return InvalidArgument(path + " line " + line(k) +
                               ": vault.kdf must be moderate or interactive, not '" + s + "'");
      }
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgument(path + " line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  return o;
}

void SecureWipe(void* p, size_t n) {
  if (p != nullptr && n != 0) sodium_memzero(p, n);
}

Status ValidateSecretName(std::string_view name) {
  // The name is not echoed: a value typed where the name belongs must not end up in a log.
  if (name.empty() || name.size() > 128) {
    return InvalidArgument("a secret name must be 1 to 128 characters long (got " +
                           std::to_string(name.size()) + ")");
  }
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) {
      return InvalidArgument("a secret name may contain only A-Z a-z 0-9 _ . - (character " +
                             std::to_string(i + 1) + " is not allowed)");
    }
  }
  return OkStatus();
}

// ---- Vault ----

struct Vault::Key {
  unsigned char bytes[kKeyBytes];
  Key() { sodium_memzero(bytes, sizeof bytes); }
  ~Key() { sodium_memzero(bytes, sizeof bytes); }
};

Vault::Vault(Workspace* ws, VaultOptions opts) : ws_(ws), opts_(std::move(opts)) {}

Vault::~Vault() {
  if (!opts_.passphrase.empty()) sodium_memzero(opts_.passphrase.data(), opts_.passphrase.size());
}

Status Vault::CheckTxn(Txn& txn) {
  if (&txn.workspace() != ws_) return Internal("vault used with another workspace's transaction");
  return SodiumInit();
}

Result<std::shared_ptr<const Vault::Key>> Vault::DeriveKey(const std::string& kdf_json) {
  auto damaged = [] {
    return DataLoss("the vault's key-derivation settings (meta vault.kdf) are damaged");
  };
  nlohmann::json j = nlohmann::json::parse(kdf_json, nullptr, false);
  if (!j.is_object() || j.value("alg", "") != "argon2id13" || !j["salt"].is_string() ||
      !j["opslimit"].is_number_unsigned() || !j["memlimit"].is_number_unsigned()) {
    return damaged();
  }
  auto salt = Unhex(j["salt"].get<std::string>());
  uint64_t ops = j["opslimit"].get<uint64_t>();
  uint64_t mem = j["memlimit"].get<uint64_t>();
  if (!salt || salt->size() != crypto_pwhash_SALTBYTES || ops < crypto_pwhash_OPSLIMIT_MIN ||
      ops > 20 || mem < crypto_pwhash_MEMLIMIT_MIN || mem > kMaxMemlimit) {
    return damaged();
  }
  if (opts_.passphrase.empty()) {
    return FailedPrecondition(
        "the vault is sealed with a passphrase (keel.yaml vault.key: "
        "passphrase): set KEEL_VAULT_PASSPHRASE");
  }
  auto key = std::make_shared<Key>();
  int rc =
      crypto_pwhash(key->bytes, sizeof key->bytes, opts_.passphrase.data(), opts_.passphrase.size(),
                    reinterpret_cast<const unsigned char*>(salt->data()), ops,
                    static_cast<size_t>(mem), crypto_pwhash_ALG_ARGON2ID13);
  if (rc != 0) {
    return Unavailable("Argon2id could not derive the vault key (not enough memory for " +
                       std::to_string(mem >> 20) + " MiB?)");
  }
  return std::shared_ptr<const Key>(std::move(key));
}

Result<std::shared_ptr<const Vault::Key>> Vault::LoadKey(Txn* txn) {
  KEEL_RETURN_IF_ERROR(SodiumInit());
  std::lock_guard<std::recursive_mutex> ws_lock(ws_->mu());
  std::lock_guard<std::mutex> lock(mu_);
  if (key_) return key_;
  sql::Db* db = ws_->db();
  FileSystem* fs = ws_->env().fs;
  std::string key_path = JoinPath(ws_->keys_dir(), kKeyFile);
  KEEL_ASSIGN_OR_RETURN(auto check, ReadMeta(db, kMetaCheck));
  KEEL_ASSIGN_OR_RETURN(auto stored_mode, ReadMeta(db, kMetaMode));
  const std::string want_mode = ModeName(opts_.key_mode);

  auto read_key_file = [&]() -> Result<std::shared_ptr<const Key>> {
    KEEL_ASSIGN_OR_RETURN(int mode, fs->Mode(key_path));
    if ((mode & 077) != 0) {
      char octal[8];
      std::snprintf(octal, sizeof octal, "%04o", mode);
      return PermissionDenied("the vault key " + key_path + " has mode " + octal +
                              ": group or others can read it, so keel will not use it; run "
                              "`chmod 600 " +
                              key_path + "` (and consider the key exposed)");
    }
    KEEL_ASSIGN_OR_RETURN(std::string bytes, fs->ReadFile(key_path, 1024));
    if (bytes.size() != kKeyBytes) {
      size_t n = bytes.size();
      sodium_memzero(bytes.data(), bytes.size());
      return DataLoss("the vault key " + key_path + " is " + std::to_string(n) +
                      " bytes, not 32: it is damaged or not a keel vault key");
    }
    auto key = std::make_shared<Key>();
    std::memcpy(key->bytes, bytes.data(), kKeyBytes);
    sodium_memzero(bytes.data(), bytes.size());
    return std::shared_ptr<const Key>(std::move(key));
  };

  if (check) {
    // An existing vault: use the mode it was created with; a differing keel.yaml is an error
    // rather than a silent switch (the other mode's key would not open the secrets).
    std::string mode = stored_mode.value_or("file");
    if (mode != want_mode) {
      return FailedPrecondition("this vault was created with vault.key: " + mode +
                                " but keel.yaml says vault.key: " + want_mode +
                                "; set it back (changing the key mode needs the secrets set "
                                "again)");
    }
    std::shared_ptr<const Key> key;
    if (opts_.key_mode == VaultKeyMode::kFile) {
      if (!fs->Exists(key_path)) {
        return DataLoss("the vault key " + key_path +
                        " is missing, so the vault's secrets cannot be opened; restore keys/ "
                        "from a snapshot (`keel restore`)");
      }
      KEEL_ASSIGN_OR_RETURN(key, read_key_file());
    } else {
      KEEL_ASSIGN_OR_RETURN(auto kdf, ReadMeta(db, kMetaKdf));
      if (!kdf) return DataLoss("the vault's key-derivation settings (meta vault.kdf) are missing");
      KEEL_ASSIGN_OR_RETURN(key, DeriveKey(*kdf));
    }
    if (!CheckKey(key->bytes, *check)) {
      if (opts_.key_mode == VaultKeyMode::kFile) {
        return DataLoss("the vault key " + key_path +
                        " does not open this vault (the key file was replaced or damaged); "
                        "restore keys/vault.key from a snapshot");
      }
      return DataLoss(
          "the passphrase in KEEL_VAULT_PASSPHRASE does not open this vault (wrong "
          "passphrase, or damaged vault metadata)");
    }
    key_ = key;
    // The derived key is cached; the passphrase is no longer needed in memory.
    sodium_memzero(opts_.passphrase.data(), opts_.passphrase.size());
    opts_.passphrase.clear();
    return key_;
  }

  if (txn == nullptr) return NotFound("the vault is empty");

  // First use: create the vault in this transaction.
  std::shared_ptr<const Key> key;
  nlohmann::json created = {{"key_mode", want_mode}};
  if (opts_.key_mode == VaultKeyMode::kFile) {
    if (fs->Exists(key_path)) {
      // Left by an earlier attempt that rolled back, or put there by the operator.
      KEEL_ASSIGN_OR_RETURN(key, read_key_file());
    } else {
      if (!fs->Exists(ws_->keys_dir())) KEEL_RETURN_IF_ERROR(fs->CreateDirs(ws_->keys_dir(), 0700));
      auto fresh = std::make_shared<Key>();
      randombytes_buf(fresh->bytes, sizeof fresh->bytes);
      // The file is durable before the key check that depends on it commits.
      KEEL_RETURN_IF_ERROR(WriteFileAtomic(
          fs, key_path,
          std::string_view(reinterpret_cast<const char*>(fresh->bytes), sizeof fresh->bytes),
          0600));
      key = std::move(fresh);
    }
    created["key_file"] = "keys/vault.key";
  } else {
    bool moderate = opts_.kdf == KdfStrength::kModerate;
    unsigned char salt[crypto_pwhash_SALTBYTES];
    randombytes_buf(salt, sizeof salt);
    nlohmann::json kdf = {
        {"alg", "argon2id13"},
        {"salt", Hex(std::string_view(reinterpret_cast<const char*>(salt), sizeof salt))},
        {"opslimit", static_cast<uint64_t>(moderate ? crypto_pwhash_OPSLIMIT_MODERATE
                                                    : crypto_pwhash_OPSLIMIT_INTERACTIVE)},
        {"memlimit", static_cast<uint64_t>(moderate ? crypto_pwhash_MEMLIMIT_MODERATE
                                                    : crypto_pwhash_MEMLIMIT_INTERACTIVE)}};
    std::string kdf_text = CanonicalJson(kdf);
    KEEL_ASSIGN_OR_RETURN(key, DeriveKey(kdf_text));
    KEEL_RETURN_IF_ERROR(WriteMeta(db, kMetaKdf, kdf_text));
    created["kdf"] = {
        {"alg", "argon2id13"}, {"opslimit", kdf["opslimit"]}, {"memlimit", kdf["memlimit"]}};
  }
  std::string nonce;
  std::string ct = Seal(key->bytes, kCheckPlain, kCheckAd, &nonce);
  KEEL_RETURN_IF_ERROR(WriteMeta(db, kMetaMode, want_mode));
  KEEL_RETURN_IF_ERROR(WriteMeta(db, kMetaCheck, Hex(nonce + ct)));
  KEEL_RETURN_IF_ERROR(
      txn->Append({"operator", "vault.created", "vault", "", "", CanonicalJson(created), {}})
          .status());
  // Cache the key only once the key check is committed: after a rollback a passphrase
  // vault's salt is gone and the key with it.
  txn->OnCommit([this, key] {
    std::lock_guard<std::mutex> l(mu_);
    if (!key_) key_ = key;
    if (opts_.key_mode == VaultKeyMode::kPassphrase) {
      sodium_memzero(opts_.passphrase.data(), opts_.passphrase.size());
      opts_.passphrase.clear();
    }
  });
  return key;
}

Status Vault::SetSecret(Txn& txn, const std::string& name, std::string_view value,
                        const std::string& actor) {
  KEEL_RETURN_IF_ERROR(CheckTxn(txn));
  KEEL_RETURN_IF_ERROR(ValidateSecretName(name));
  if (value.empty()) return InvalidArgument("the value of secret '" + name + "' is empty");
  if (value.size() > kMaxSecretBytes) {
    return InvalidArgument("the value of secret '" + name + "' is larger than " +
                           std::to_string(kMaxSecretBytes) + " bytes");
  }
  auto key = LoadKey(&txn);
  if (!key.ok()) return key.status().WithContext("setting secret '" + name + "'; nothing changed");
  std::string nonce;
  std::string ct = Seal((*key)->bytes, value, SecretAd(name), &nonce);
  sql::Db* db = txn.db();
  KEEL_ASSIGN_OR_RETURN(auto* find, db->Cached("SELECT 1 FROM secrets WHERE name = ?"));
  find->Bind(1, name);
  KEEL_ASSIGN_OR_RETURN(bool replaced, find->Step());
  find->Reset();
  KEEL_ASSIGN_OR_RETURN(
      auto* up, db->Cached("INSERT INTO secrets(name, nonce, ciphertext, updated_us) VALUES "
                           "(?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET nonce = excluded.nonce, "
                           "ciphertext = excluded.ciphertext, updated_us = excluded.updated_us"));
  up->Bind(1, name).BindBlob(2, nonce).BindBlob(3, ct).Bind(4, txn.now_us());
  Status s = up->Run();
  up->Reset();
  KEEL_RETURN_IF_ERROR(s);
  nlohmann::json payload = {{"name", name}, {"replaced", replaced}};
  return txn.Append({actor, "secret.set", "secret:" + name, "", "", CanonicalJson(payload), {}})
      .status();
}

Result<SecretValue> Vault::Open(const Key& key, const std::string& name, std::string_view nonce,
                                std::string_view ct) {
  if (nonce.size() != kNonceBytes || ct.size() < kTagBytes) {
    return DataLoss("secret '" + name +
                    "' cannot be opened: its stored nonce or ciphertext is "
                    "truncated (tampered or damaged); set it again with `keel secret set " +
                    name + "`");
  }
  SecretValue v = SecretValue::WithSize(ct.size() - kTagBytes);
  unsigned char empty = 0;
  unsigned long long len = 0;
  std::string ad = SecretAd(name);
  int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(
      v.data_ != nullptr ? v.data_ : &empty, &len, nullptr,
      reinterpret_cast<const unsigned char*>(ct.data()), ct.size(),
      reinterpret_cast<const unsigned char*>(ad.data()), ad.size(),
      reinterpret_cast<const unsigned char*>(nonce.data()), key.bytes);
  if (rc != 0) {
    return DataLoss("secret '" + name +
                    "' cannot be opened: its ciphertext fails "
                    "authentication (tampered, damaged, or copied from another name); set it "
                    "again with `keel secret set " +
                    name + "` or restore a snapshot");
  }
  return v;
}

Status Vault::RecordUse(Txn& txn, const std::string& name, const SecretUse& use) {
  std::string dedupe = name + '\0' + use.actor + '\0' + use.purpose + '\0' + use.run_id;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (used_.count(dedupe) != 0) return OkStatus();
  }
  nlohmann::json payload = {{"name", name}};
  if (!use.purpose.empty()) payload["purpose"] = use.purpose;
  KEEL_RETURN_IF_ERROR(txn.Append({use.actor.empty() ? "system" : use.actor,
                                   "secret.used",
                                   "secret:" + name,
                                   use.run_id,
                                   use.step_id,
                                   CanonicalJson(payload),
                                   {}})
                           .status());
  txn.OnCommit([this, dedupe] {
    std::lock_guard<std::mutex> l(mu_);
    used_.insert(dedupe);
  });
  return OkStatus();
}

Result<SecretValue> Vault::GetSecret(Txn& txn, const std::string& name, const SecretUse& use) {
  KEEL_RETURN_IF_ERROR(CheckTxn(txn));
  KEEL_RETURN_IF_ERROR(ValidateSecretName(name));
  sql::Db* db = txn.db();
  KEEL_ASSIGN_OR_RETURN(auto* st,
                        db->Cached("SELECT nonce, ciphertext FROM secrets WHERE name = ?"));
  st->Bind(1, name);
  KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
  if (!row) {
    st->Reset();
    return NotFound("secret '" + name + "' is not set; set it with `keel secret set " + name + "`");
  }
  std::string nonce(st->BlobView(0)), ct(st->BlobView(1));
  st->Reset();
  auto key = LoadKey(nullptr);
  if (!key.ok()) return key.status().WithContext("opening secret '" + name + "'");
  KEEL_ASSIGN_OR_RETURN(SecretValue v, Open(**key, name, nonce, ct));
  KEEL_RETURN_IF_ERROR(RecordUse(txn, name, use));
  return v;
}

Result<SecretValue> Vault::GetSecret(const std::string& name, const SecretUse& use) {
  KEEL_RETURN_IF_ERROR(SodiumInit());
  KEEL_RETURN_IF_ERROR(ValidateSecretName(name));
  std::string nonce, ct;
  {
    std::lock_guard<std::recursive_mutex> l(ws_->mu());
    KEEL_ASSIGN_OR_RETURN(
        auto st, ws_->db()->Prepare("SELECT nonce, ciphertext FROM secrets WHERE name = ?"));
    st->Bind(1, name);
    KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) {
      return NotFound("secret '" + name + "' is not set; set it with `keel secret set " + name +
                      "`");
    }
    nonce = std::string(st->BlobView(0));
    ct = std::string(st->BlobView(1));
  }
  auto key = LoadKey(nullptr);
  if (!key.ok()) return key.status().WithContext("opening secret '" + name + "'");
  KEEL_ASSIGN_OR_RETURN(SecretValue v, Open(**key, name, nonce, ct));
  if (ws_->read_only()) {
    return FailedPrecondition("secret '" + name +
                              "' can be used only from a workspace open for "
                              "writing (each use is recorded in the ledger)");
  }
  Status s = ws_->Write([&](Txn& txn) { return RecordUse(txn, name, use); });
  if (!s.ok()) return s.WithContext("recording the use of secret '" + name + "'");
  return v;
}

Result<std::vector<SecretInfo>> Vault::ListSecrets() {
  std::lock_guard<std::recursive_mutex> l(ws_->mu());
  KEEL_ASSIGN_OR_RETURN(auto st,
                        ws_->db()->Prepare("SELECT name, updated_us FROM secrets ORDER BY name"));
  std::vector<SecretInfo> out;
  for (;;) {
    KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    out.push_back({st->Text(0), st->Int(1)});
  }
  return out;
}

Status Vault::RemoveSecret(Txn& txn, const std::string& name, const std::string& actor) {
  KEEL_RETURN_IF_ERROR(CheckTxn(txn));
  KEEL_RETURN_IF_ERROR(ValidateSecretName(name));
  KEEL_ASSIGN_OR_RETURN(auto* st, txn.db()->Cached("DELETE FROM secrets WHERE name = ? "
                                                   "RETURNING name"));
  st->Bind(1, name);
  KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
  if (row) {
    KEEL_ASSIGN_OR_RETURN(bool more, st->Step());
    (void)more;
  }
  st->Reset();
  if (!row) return NotFound("secret '" + name + "' is not set");
  nlohmann::json payload = {{"name", name}};
  return txn.Append({actor, "secret.removed", "secret:" + name, "", "", CanonicalJson(payload), {}})
      .status();
}

}  // namespace keel::store
