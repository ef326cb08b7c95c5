#include "app/secrets.h"

#include "store/workspace.h"

namespace keel::app {

Status ValidateSecretName(const std::string& name) {
  return store::ValidateSecretName(name);
}

Status SetSecret(Runtime& rt, const std::string& name,
                 const std::function<Result<SecretValue>()>& read_value, const std::string& actor) {
  KEEL_RETURN_IF_ERROR(store::ValidateSecretName(name));
  KEEL_ASSIGN_OR_RETURN(store::Vault * vault, rt.vault());
  KEEL_ASSIGN_OR_RETURN(SecretValue value, read_value());
  return rt.ws().Write(
      [&](store::Txn& txn) { return vault->SetSecret(txn, name, value.Reveal(), actor); });
}

Result<std::vector<store::SecretInfo>> ListSecrets(Runtime& rt) {
  KEEL_ASSIGN_OR_RETURN(store::Vault * vault, rt.vault());
  return vault->ListSecrets();
}

Status RemoveSecret(Runtime& rt, const std::string& name, const std::string& actor) {
  KEEL_RETURN_IF_ERROR(store::ValidateSecretName(name));
  KEEL_ASSIGN_OR_RETURN(store::Vault * vault, rt.vault());
  return rt.ws().Write([&](store::Txn& txn) { return vault->RemoveSecret(txn, name, actor); });
}

}  // namespace keel::app
