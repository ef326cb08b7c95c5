// The one error taxonomy shared by every agent and adapter (and the flow engine that
// decides what to do with their failures). Lives in core so that agents and adapters, which
// sit below flow, can classify their errors without depending on flow.
//
//   transient     retry with exponential backoff (network blip, 5xx, busy)
//   rate_limited  retry, but not before `retry_after_us` (the time the peer gave)
//   permanent     never retry: the step fails and the run compensates
//   in_doubt      the outcome is unknown (sent, then the connection dropped): never retried
//                 blindly; on a channel that cannot dedupe it goes to the operator
//   needs_human   a person must look (bad credentials, a policy refusal, ambiguous input)
//
// Thread-safety: values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace keel {

enum class ErrorClass : int { kTransient, kRateLimited, kPermanent, kInDoubt, kNeedsHuman };

// "transient", "rate_limited", "permanent", "in_doubt", "needs_human".
std::string_view ErrorClassName(ErrorClass c);
// Parses one of the names above; false otherwise.
bool ParseErrorClass(std::string_view name, ErrorClass* out);

// The result of one attempt of an agent call or an adapter action.
struct Outcome {
  bool ok = true;
  ErrorClass error_class = ErrorClass::kTransient;
  std::string message;
  int64_t retry_after_us = 0;  // for kRateLimited: the peer's requested delay
  std::string evidence;        // what the operator needs to judge an in_doubt outcome

  static Outcome Success() { return Outcome(); }
  static Outcome Failure(ErrorClass c, std::string msg, int64_t retry_after_us = 0) {
    Outcome o;
    o.ok = false;
    o.error_class = c;
    o.message = std::move(msg);
    o.retry_after_us = retry_after_us;
    return o;
  }
};

}  // namespace keel
