// The secrets vault: credentials (SMTP passwords, API keys, webhook signing secrets) sealed
// with libsodium's XChaCha20-Poly1305 AEAD in the `secrets` table (docs/vault.md).
//
// - Each value is sealed with a fresh random 24-byte nonce and the secret's name as
//   associated data, so a ciphertext moved to another name (or another vault) fails to open.
// - The vault key is either keys/vault.key (32 random bytes, mode 0600; keel refuses a key
//   file that group or others can read) or derived from a passphrase with Argon2id
//   (crypto_pwhash; salt and limits kept in the meta table). The mode is fixed when the vault
//   is created (first SetSecret) and recorded in the meta table; keel.yaml `vault.key`
//   chooses it. A "key check" (a sealed constant in the meta table) tells a wrong key or
//   passphrase apart from a damaged ciphertext, and stops a wrong passphrase from sealing new
//   secrets under a different key.
// - A value never reaches the ledger, an artifact, a log line or an error message: the
//   ledger gets `secret.set`, `secret.removed` and `secret.used` entries that carry the name
//   only (no size, no hash of the value).
//
// Ownership: a Vault borrows its Workspace, which must outlive it. It caches the key for its
// lifetime (wiped on destruction).
// Thread-safety: all methods are safe to call from several threads.
// Errors: InvalidArgument (bad name, empty or oversized value), NotFound (no such secret),
// PermissionDenied (key file readable by group/others), FailedPrecondition (no passphrase
// given, keel.yaml names a different key mode than the vault was created with, read-only
// workspace), DataLoss (wrong key or passphrase, missing key file, tampered ciphertext; the
// message names the secret, never its value), Unavailable (Argon2id could not get memory).
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "store/workspace.h"

namespace keel::store {

// Largest value the vault accepts (a PEM private key fits; a file does not belong here).
inline constexpr size_t kMaxSecretBytes = 64 * 1024;

// A secret's value. Owns its bytes and overwrites them (sodium_memzero) when destroyed or
// moved from. Move-only, and deliberately not printable: `std::cout << value` does not
// compile. Reveal() is the one way to the bytes; keep what it returns short-lived.
class SecretValue {
 public:
  SecretValue() = default;
  explicit SecretValue(std::string_view bytes);
  ~SecretValue();
  SecretValue(SecretValue&& other) noexcept;
  SecretValue& operator=(SecretValue&& other) noexcept;
  SecretValue(const SecretValue&) = delete;
  SecretValue& operator=(const SecretValue&) = delete;

  std::string_view Reveal() const {
    return std::string_view(reinterpret_cast<const char*>(data_), size_);
  }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  friend std::ostream& operator<<(std::ostream&, const SecretValue&) = delete;

 private:
  friend class Vault;
  static SecretValue WithSize(size_t n);
  void Wipe();
  unsigned char* data_ = nullptr;
  size_t size_ = 0;
};

enum class VaultKeyMode { kFile, kPassphrase };
// Argon2id cost, used only when a passphrase vault is created; afterwards the limits stored
// in the meta table are used. moderate: 3 passes over 256 MiB (1-4 s here; libsodium's and
// OWASP's recommendation for keys); interactive: 2 passes over 64 MiB (for tests).
enum class KdfStrength { kInteractive, kModerate };

struct VaultOptions {
  VaultKeyMode key_mode = VaultKeyMode::kFile;
  KdfStrength kdf = KdfStrength::kModerate;
  // The passphrase for kPassphrase (the wiring reads $KEEL_VAULT_PASSPHRASE). The Vault
  // wipes its copy once the key is derived.
  std::string passphrase;
};

// Reads the `vault:` section of keel.yaml (`key: file|passphrase`, `kdf:
// moderate|interactive`); defaults when absent. InvalidArgument names the line.
Result<VaultOptions> ParseVaultConfig(const std::string& yaml_text, const std::string& path);

// Who uses a secret and why: recorded as a `secret.used` ledger entry.
struct SecretUse {
  std::string actor = "system";  // adapter:smtp, provider:openai, operator, ...
  std::string purpose;           // "smtp login", "sign webhook"
  std::string run_id;
  std::string step_id;
};

struct SecretInfo {
  std::string name;
  int64_t updated_us = 0;
};

// Overwrites `n` bytes at `p` in a way the compiler cannot drop (sodium_memzero), for
// buffers that held a secret value (standard input, a terminal line).
void SecureWipe(void* p, size_t n);

// [A-Za-z0-9_.-]{1,128}. InvalidArgument otherwise (the message quotes at most 64
// characters of the name, escaped).
Status ValidateSecretName(std::string_view name);

class Vault {
 public:
  Vault(Workspace* ws, VaultOptions opts);
  ~Vault();
  Vault(const Vault&) = delete;
  Vault& operator=(const Vault&) = delete;

  // Seals `value` under `name` (replacing an existing value) and appends `secret.set`
  // {name, replaced}. Creates the vault on first use (key file or salt, key check,
  // `vault.created` entry). `txn` must belong to this Vault's workspace.
  Status SetSecret(Txn& txn, const std::string& name, std::string_view value,
                   const std::string& actor = "operator");

  // Opens `name` for an upper layer (adapter, provider). Records `secret.used` {name,
  // purpose} once per distinct (name, actor, purpose, run_id) in the life of this Vault —
  // in practice once per process and run: a poller that logs in every minute does not
  // write a ledger entry per login, yet every run that used a secret says so.
  // The first form runs its own transaction for that entry (must not be called inside
  // Workspace::Write); the second writes it in `txn`.
  Result<SecretValue> GetSecret(const std::string& name, const SecretUse& use);
  Result<SecretValue> GetSecret(Txn& txn, const std::string& name, const SecretUse& use);

  // Names and update times, sorted by name. Needs no key.
  Result<std::vector<SecretInfo>> ListSecrets();

  // Deletes `name` and appends `secret.removed` {name}. NotFound if absent. Needs no key.
  Status RemoveSecret(Txn& txn, const std::string& name, const std::string& actor = "operator");

 private:
  struct Key;
  // Returns the vault key, loading (and checking) it on first use. With `txn` set and no
  // vault yet, creates one in that transaction.
  Result<std::shared_ptr<const Key>> LoadKey(Txn* txn);
  Result<std::shared_ptr<const Key>> DeriveKey(const std::string& kdf_json);
  Result<SecretValue> Open(const Key& key, const std::string& name, std::string_view nonce,
                           std::string_view ciphertext);
  Status RecordUse(Txn& txn, const std::string& name, const SecretUse& use);
  Status CheckTxn(Txn& txn);

  Workspace* ws_;
  VaultOptions opts_;
  std::mutex mu_;  // guards key_, used_ and opts_.passphrase
  std::shared_ptr<const Key> key_;
  std::set<std::string> used_;
};

}  // namespace keel::store
