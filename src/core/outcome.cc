#include "core/outcome.h"

namespace keel {

std::string_view ErrorClassName(ErrorClass c) {
  switch (c) {
    case ErrorClass::kTransient:
      return "transient";
    case ErrorClass::kRateLimited:
      return "rate_limited";
    case ErrorClass::kPermanent:
      return "permanent";
    case ErrorClass::kInDoubt:
      return "in_doubt";
    case ErrorClass::kNeedsHuman:
      return "needs_human";
  }
  return "transient";
}

bool ParseErrorClass(std::string_view name, ErrorClass* out) {
  for (ErrorClass c : {ErrorClass::kTransient, ErrorClass::kRateLimited, ErrorClass::kPermanent,
                       ErrorClass::kInDoubt, ErrorClass::kNeedsHuman}) {
    if (ErrorClassName(c) == name) {
      *out = c;
      return true;
    }
  }
  return false;
}

}  // namespace keel
