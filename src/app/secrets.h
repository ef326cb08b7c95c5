// Application services for the secrets vault (store/vault.h, docs/vault.md): what `keel
// secret set|list|rm` do, for every face. No service returns a value: there is
// deliberately no "get" (adapters and providers open secrets in-process through the vault).
//
// The vault is the Runtime's (Runtime::vault(): keel.yaml `vault:` and the passphrase the
// face passed in RuntimeOptions).
// Thread-safety: as the Runtime. Errors: InvalidArgument (bad name, empty or oversized
// value, a bad `vault:` section), NotFound (no such secret), and the vault's errors
// (PermissionDenied, FailedPrecondition, DataLoss, Unavailable; store/vault.h).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "app/runtime.h"
#include "core/status.h"
#include "store/vault.h"

namespace keel::app {

// What a face needs to read a value without leaving copies behind.
using store::SecretValue;
using store::SecureWipe;
inline constexpr size_t kMaxSecretBytes = store::kMaxSecretBytes;

// [A-Za-z0-9_.-]{1,128}; a face checks before it asks for a value.
Status ValidateSecretName(const std::string& name);

// Sets secret `name` to the value `read_value` returns. The name and the vault's settings
// are checked first, so a face prompts for a value only when it can be stored.
Status SetSecret(Runtime& rt, const std::string& name,
                 const std::function<Result<SecretValue>()>& read_value,
                 const std::string& actor = "operator");

// Names and update times, sorted by name (never values).
Result<std::vector<store::SecretInfo>> ListSecrets(Runtime& rt);

// Removes `name` (a `secret.removed` ledger entry). NotFound if it is not set.
Status RemoveSecret(Runtime& rt, const std::string& name, const std::string& actor = "operator");

}  // namespace keel::app
