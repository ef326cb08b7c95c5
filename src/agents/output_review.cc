// AgentRun::ReviewOutput and AgentRun::Record: the proposed actions against the contract and
// the taint rules (docs/agents.md, "Taint"), and the `agent.run` entry with what the output
// writes to memory; see agent_run.h.
#include <algorithm>
#include <map>
#include <set>

#include "agents/agent_run.h"
#include "core/hash.h"
#include "memory/memory.h"
#include "store/artifacts.h"
#include "store/workspace.h"

namespace keel::agents {
namespace {

using nlohmann::json;

const std::set<std::string>& RecipientKeys() {
  static const std::set<std::string> k = {"to",      "recipient", "recipients", "email",
                                          "cc",      "bcc",       "reply_to",   "phone",
                                          "account", "iban",      "payee"};
  return k;
}
const std::set<std::string>& AmountKeys() {
  static const std::set<std::string> k = {"amount",     "total",    "price",    "amount_cents",
                                          "unit_price", "subtotal", "discount", "currency"};
  return k;
}
const std::set<std::string>& LinkKeys() {
  static const std::set<std::string> k = {"url", "link", "links", "href", "payment_link"};
  return k;
}
const std::set<std::string>& ApprovalKeys() {
  static const std::set<std::string> k = {"requires_approval", "approved",          "approval",
                                          "skip_approval",     "approval_required", "auto_approve"};
  return k;
}

// Walks the leaves of an action's params with the nearest object key above each leaf.
template <typename Fn>
void WalkParams(const json& v, const std::string& path, const std::string& key, const Fn& fn) {
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it)
      WalkParams(it.value(), path + "/" + it.key(), it.key(), fn);
  } else if (v.is_array()) {
    for (size_t i = 0; i < v.size(); ++i) WalkParams(v[i], path + "/" + std::to_string(i), key, fn);
  } else {
    fn(path, key, v);
  }
}

void ReviewAction(const AgentContract& c, const TrustedValues& trusted, bool saw_tainted,
                  const json& params, const std::string& base, ProposedAction* a) {
  const std::string origin = saw_tainted
                                 ? "comes from untrusted text or is not in the trusted input"
                                 : "is not in the trusted input";
  if (std::find(c.always_approve.begin(), c.always_approve.end(), a->type) !=
      c.always_approve.end()) {
    a->approval_reasons.push_back("'" + a->type + "' always needs an approval (contract)");
  }
  WalkParams(params, base, "", [&](const std::string& path, const std::string& key, const json& v) {
    if (RecipientKeys().count(key) != 0 && !trusted.Contains(v)) {
      a->approval_reasons.push_back("recipient " + path + " " + origin);
    } else if (AmountKeys().count(key) != 0 && !trusted.Contains(v)) {
      a->approval_reasons.push_back("amount " + path + " " + origin);
    } else if (LinkKeys().count(key) != 0 && v.is_string() && !trusted.Contains(v) &&
               !trusted.ContainsText(v.get<std::string>())) {
      a->approval_reasons.push_back("link " + path + " " + origin);
    }
    if (v.is_string()) {
      for (const auto& link : FindLinks(v.get<std::string>())) {
        if (!trusted.ContainsText(link)) {
          a->approval_reasons.push_back("link " + link.substr(0, 100) + " in " + path + " " +
                                        origin);
        }
      }
    }
  });
  a->requires_approval = !a->approval_reasons.empty();
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "none" : out;
}

// The value at a JSON pointer, or null when the pointer is malformed or points nowhere.
const json* AtPointer(const json& doc, const std::string& pointer) {
  try {
    json::json_pointer ptr(pointer);
    return doc.contains(ptr) ? &doc.at(ptr) : nullptr;
  } catch (const std::exception&) {
    return nullptr;
  }
}

// Writes the output facts named by `memory.remember` into memory, each citing the raw input
// page it was read from (stored as a raw-text artifact) with its span (docs/agents.md,
// "Memory"). A fact whose source is not one of the input pages, whose page is text keel
// generated, or that cannot be located in its page is dropped: memory learns only from outside
// text, never from the model's own words or from recalled facts.
Status RememberOutputFacts(store::Txn& txn, memory::Memory* mem, const AgentContract& c,
                           const AgentContext& ctx, const std::string& actor, const json& input,
                           const json& output, AgentOutcome* out) {
  const json* facts = AtPointer(output, c.memory.remember);
  if (facts == nullptr || !facts->is_array() || facts->empty()) return OkStatus();
  const json* pages = AtPointer(input, c.memory.sources);
  std::map<std::string, size_t> page_of;  // url or "pages/N" -> index
  if (pages != nullptr && pages->is_array()) {
    for (size_t i = 0; i < pages->size(); ++i) {
      if (!(*pages)[i].is_object()) continue;
      page_of["pages/" + std::to_string(i)] = i;
      std::string url = JsonStr((*pages)[i], "url");
      if (!url.empty()) page_of.emplace(url, i);
    }
  }
  std::map<size_t, std::string> artifact_of;  // page index -> raw-text artifact ("" = refused)
  for (const json& f : *facts) {
    if (!f.is_object()) {
      ++out->facts_dropped;
      continue;
    }
    auto it = page_of.find(JsonStr(f, "source"));
    std::string page = it == page_of.end() ? "" : JsonStr((*pages)[it->second], "text");
    std::string kind = JsonStr(f, "kind");
    std::string value = JsonStr(f, "value");
    std::string text = JsonStr(f, "text");
    if (text.empty() && !value.empty()) text = (kind.empty() ? "fact" : kind) + ": " + value;
    if (page.empty() || text.empty()) {
      ++out->facts_dropped;
      continue;
    }
    // The span must lie within the page; without one, the value must occur in it.
    int64_t b = -1, e = -1;
    const json& span = f.contains("span") ? f["span"] : json();
    if (span.is_array() && span.size() == 2 && span[0].is_number_integer() &&
        span[1].is_number_integer()) {
      b = span[0].get<int64_t>();
      e = span[1].get<int64_t>();
    }
    if (b < 0 || e <= b || static_cast<uint64_t>(e) > page.size()) {
      size_t at = value.empty() ? std::string::npos : page.find(value);
      if (at == std::string::npos) {
        ++out->facts_dropped;
        continue;
      }
      b = static_cast<int64_t>(at);
      e = static_cast<int64_t>(at + value.size());
    }
    auto art = artifact_of.find(it->second);
    if (art == artifact_of.end()) {
      store::PutArtifactOptions po;
      po.media_type = "text/plain; charset=utf-8";
      po.name = "page " + JsonStr((*pages)[it->second], "url").substr(0, 200);
      po.actor = actor;
      po.run_id = ctx.run_id;
      po.step_id = ctx.step_id;
      KEEL_ASSIGN_OR_RETURN(auto info, store::PutArtifact(txn, page, po));
      // Identical bytes may already be stored as text keel generated: never learn from it.
      KEEL_ASSIGN_OR_RETURN(auto origin, mem->ArtifactOrigin(info.hash));
      art = artifact_of.emplace(it->second, origin ? "" : info.hash).first;
    }
    if (art->second.empty()) {
      ++out->facts_dropped;
      continue;
    }
    memory::NewFact nf;
    nf.subject = ctx.record_id;
    nf.text = text.substr(0, memory::kMaxFactTextBytes);
    nf.key = kind;
    nf.value = value;
    nf.confidence = f.contains("confidence") && f["confidence"].is_number()
                        ? std::clamp(f["confidence"].get<double>(), 0.0, 1.0)
                        : 0.5;
    nf.source_artifact = art->second;
    nf.span_begin = b;
    nf.span_end = e;
    nf.by = {c.name, ctx.run_id, ctx.step_id};
    // The run's subject is usually a record, but a workflow may work for something that is
    // none (an event key, a topic): what the agent read is remembered either way.
    nf.free_subject = true;
    auto r = mem->Remember(txn, nf);
    if (!r.ok()) {
      if (r.status().code() != StatusCode::kInvalidArgument) return r.status();
      ++out->facts_dropped;
      continue;
    }
    out->remembered_facts.push_back(r->fact_id);
  }
  return OkStatus();
}

// The recalled facts an output names in `memory.used` (by id, or by text: a model may quote
// the fact rather than its id; a text cut short by the model matches as a prefix).
std::vector<std::string> UsedFacts(
    const json& output, const std::string& pointer,
    const std::vector<std::pair<std::string, std::string>>& recalled) {
  std::vector<std::string> ids;
  const json* used = AtPointer(output, pointer);
  if (used == nullptr || !used->is_array()) return ids;
  for (const json& u : *used) {
    if (!u.is_string()) continue;
    std::string s = u.get<std::string>();
    if (s.empty()) continue;
    for (const auto& [id, text] : recalled) {
      if (s == id || text.compare(0, s.size(), s) == 0) {
        if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
        break;
      }
    }
  }
  return ids;
}

}  // namespace

void AgentRun::ReviewOutput(json* output_p) {
  const AgentContract& c = c_;
  // Proposed actions: the contract's whitelist, then taint review.
  json& output = *output_p;
  json actions = output.contains("actions") ? output["actions"] : json::array();
  output.erase("actions");
  if (!actions.is_array()) actions = json::array({actions});
  for (size_t i = 0; i < actions.size(); ++i) {
    const json& a = actions[i];
    std::string type = a.is_object() ? JsonStr(a, "type") : "";
    if (type.empty()) {
      out_.rejected.push_back(
          {"", "actions/" + std::to_string(i) + " is not an object with a type"});
      continue;
    }
    if (std::find(c.actions.begin(), c.actions.end(), type) == c.actions.end()) {
      out_.rejected.push_back({type, "agent " + c.name + " may not propose '" + type +
                                         "' (allowed: " + Join(c.actions) + ")"});
      continue;
    }
    json params = a;
    params.erase("type");
    for (const auto& k : ApprovalKeys()) params.erase(k);  // the model cannot waive approval
    ProposedAction pa;
    pa.type = type;
    pa.params_json = CanonicalJson(params);
    ReviewAction(c, *trusted_, saw_tainted_, params, "/actions/" + std::to_string(i), &pa);
    out_.actions.push_back(std::move(pa));
  }
  out_.tainted_fields = TaintedOutputPaths(output, *trusted_, saw_tainted_);
  out_.output_json = CanonicalJson(output);
}

Status AgentRun::Record(const json& output) {
  const AgentContract& c = c_;
  // The agent.run entry, with the output (and a draft) as artifacts.
  KEEL_RETURN_IF_ERROR(ws_->Write([&](store::Txn& txn) -> Status {
    store::PutArtifactOptions po;
    po.media_type = "application/json; keel-origin=agent";
    po.name = "agent/" + c.name + "/output";
    po.actor = actor_;
    po.run_id = ctx_.run_id;
    po.step_id = ctx_.step_id;
    json doc = output;
    json acts = json::array();
    for (const auto& a : out_.actions) {
      acts.push_back({{"type", a.type},
                      {"params", json::parse(a.params_json)},
                      {"requires_approval", a.requires_approval},
                      {"approval_reasons", a.approval_reasons}});
    }
    doc["actions"] = acts;
    KEEL_ASSIGN_OR_RETURN(auto oinfo, store::PutArtifact(txn, doc.dump(2) + "\n", po));
    out_.output_artifact = oinfo.hash;
    std::vector<std::string> arts = {out_.template_artifact, out_.prompt_artifact,
                                     out_.response_artifact, oinfo.hash};
    if (!c.draft_field.empty() && output.contains(c.draft_field) &&
        output[c.draft_field].is_string()) {
      std::string parent = input_.contains("parent_draft") && input_["parent_draft"].is_string()
                               ? input_["parent_draft"].get<std::string>()
                               : "";
      if (!parent.empty() && !IsDigestHex(parent)) {
        return InvalidArgument("parent_draft '" + parent.substr(0, 80) +
                               "' is not an artifact address");
      }
      po.media_type = "text/plain; keel-origin=agent";
      po.name = "agent/" + c.name + "/draft";
      po.parent = parent;
      KEEL_ASSIGN_OR_RETURN(auto dinfo,
                            store::PutArtifact(txn, output[c.draft_field].get<std::string>(), po));
      out_.draft_artifact = dinfo.hash;
      arts.push_back(dinfo.hash);
    }
    json summary = json::array();
    for (const auto& a : out_.actions) {
      summary.push_back({{"type", a.type},
                         {"requires_approval", a.requires_approval},
                         {"reasons", a.approval_reasons.size()}});
    }
    json rejected = json::array();
    for (const auto& r : out_.rejected)
      rejected.push_back({{"type", r.type}, {"reason", r.reason}});
    json tainted = json::array();
    for (size_t i = 0; i < out_.tainted_fields.size() && i < 50; ++i)
      tainted.push_back(out_.tainted_fields[i]);
    json payload = {{"agent", c.name},
                    {"version", c.version},
                    {"requested_by", ctx_.actor},
                    {"gen_ai.provider.name", out_.provider},
                    {"gen_ai.request.model", model_},
                    {"model_calls", out_.model_calls},
                    {"cached", out_.cached},
                    {"gen_ai.usage.input_tokens", out_.input_tokens},
                    {"gen_ai.usage.output_tokens", out_.output_tokens},
                    {"keel.cost_nanousd", out_.cost_nanousd},
                    {"actions", summary},
                    {"rejected_actions", rejected},
                    {"tainted_fields", tainted}};
    if (opts_.memory != nullptr && !ctx_.record_id.empty() && !c.memory.remember.empty()) {
      KEEL_RETURN_IF_ERROR(
          RememberOutputFacts(txn, opts_.memory, c, ctx_, actor_, input_, output, &out_));
      payload["facts_remembered"] = out_.remembered_facts;
      payload["facts_dropped"] = out_.facts_dropped;
    }
    if (!out_.retrieval_id.empty()) {
      payload["retrieval_id"] = out_.retrieval_id;
      if (!c.memory.used.empty()) {
        out_.used_facts = UsedFacts(output, c.memory.used, recalled_);
        KEEL_RETURN_IF_ERROR(opts_.memory->MarkUsed(txn, out_.retrieval_id, out_.used_facts));
        payload["facts_used"] = out_.used_facts;
      }
    }
    KEEL_ASSIGN_OR_RETURN(auto e, txn.Append({actor_, "agent.run", ctx_.record_id, ctx_.run_id,
                                              ctx_.step_id, CanonicalJson(payload), arts}));
    out_.ledger_seq = e.seq;
    return OkStatus();
  }));
  return OkStatus();
}

}  // namespace keel::agents
