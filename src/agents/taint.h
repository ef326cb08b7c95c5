// Taint: which values came from outside (web pages, emails, form fields) and so may carry
// instructions meant for a model. The rules (docs/agents.md, "Taint"):
//
//  1. An agent's input is tainted at the JSON pointers its contract lists as untrusted plus
//     those the caller adds (AgentContext::untrusted). "*" matches any one key or index, and
//     a tainted value taints everything below it.
//  2. Tainted values reach a model only inside fenced data blocks (RenderTemplate), whose
//     fence carries a digest of the content, so the content cannot close its own fence.
//  3. If a model saw any tainted value, each leaf of its output is tainted unless it equals a
//     value found at an untainted input path: provenance by value, not by trust in the model.
//  4. A proposed action whose recipient, amount or link is tainted requires approval. Only the
//     contract decides which action types may be proposed; input cannot add to that list.
//
// Thread-safety: values; pure functions.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "core/json.h"

namespace keel::agents {

class TaintSet {
 public:
  TaintSet() = default;
  explicit TaintSet(std::vector<std::string> patterns) : patterns_(std::move(patterns)) {}
  void Add(const std::string& pattern) { patterns_.push_back(pattern); }
  // True if `pointer` ("/pages/0/text") lies at or below a tainted pattern.
  bool IsTainted(const std::string& pointer) const;
  // True if `pointer` or anything below it is tainted (a parent holding tainted children).
  bool Touches(const std::string& pointer) const;
  const std::vector<std::string>& patterns() const { return patterns_; }

 private:
  std::vector<std::string> patterns_;
};

// The scalar values found at untainted paths of an input: what output values may be traced to.
class TrustedValues {
 public:
  TrustedValues(const Json& input, const TaintSet& taint);
  // Exact match of a string (case-insensitive for e-mail addresses) or number.
  bool Contains(const Json& scalar) const;
  // True if `url` appears inside some trusted string.
  bool ContainsText(const std::string& url) const;
  bool any_tainted() const { return any_tainted_; }

 private:
  std::set<std::string> strings_;
  std::set<double> numbers_;
  std::vector<std::string> texts_;
  bool any_tainted_ = false;
};

// JSON pointers of `output`'s leaves that cannot be traced to trusted input (rule 3).
// Empty when `saw_tainted` is false.
std::vector<std::string> TaintedOutputPaths(const Json& output, const TrustedValues& trusted,
                                            bool saw_tainted);

// The http(s) and www. links in `text`, in order.
std::vector<std::string> FindLinks(const std::string& text);

}  // namespace keel::agents
