#include "agents/offline.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/clock.h"
#include "core/json.h"
#include "memory/extract.h"

namespace keel::agents {
namespace {

using nlohmann::json;

std::string S(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}
double N(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_number() ? j[key].get<double>() : 0;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Clip(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  size_t cut = n;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut) + "...";
}

bool FreeMailDomain(const std::string& email) {
  static const std::set<std::string> kFree = {
      "gmail.com", "googlemail.com", "yahoo.com",      "hotmail.com", "outlook.com",
      "live.com",  "aol.com",        "icloud.com",     "gmx.de",      "gmx.net",
      "web.de",    "proton.me",      "protonmail.com", "mail.com",    "yandex.ru"};
  auto at = email.find('@');
  return at != std::string::npos && kFree.count(Lower(email.substr(at + 1))) != 0;
}

const std::vector<std::string>& DecisionRoles() {
  static const std::vector<std::string> r = {"ceo",     "founder",   "owner",   "director", "head",
                                             "vp",      "cfo",       "cto",     "coo",      "cmo",
                                             "partner", "president", "managing"};
  return r;
}

}  // namespace

const std::vector<ScoreRule>& LeadScoreRules() {
  static const std::vector<ScoreRule> r = {
      {"base", 20, "base score for a lead with a record"},
      {"business_email", 15, "a business e-mail address (not a free-mail provider)"},
      {"free_email_only", -10, "only a free-mail address"},
      {"decision_maker", 20, "a decision maker is named (CEO, founder, owner, director, ...)"},
      {"company", 10, "the company is identified"},
      {"budget", 20, "a budget or price is mentioned"},
      {"timeline", 10, "a date or deadline is mentioned"},
      {"phone", 5, "a phone number is available"},
      {"website", 5, "the company has a website"},
      {"intent", 15, "buying-intent words (looking for, need, RFP, quote, proposal, budget)"},
  };
  return r;
}

namespace {

int Points(const char* id) {
  for (const auto& r : LeadScoreRules()) {
    if (std::string(r.id) == id) return r.points;
  }
  return 0;
}
std::string Reason(const char* id, const std::string& evidence) {
  for (const auto& r : LeadScoreRules()) {
    if (std::string(r.id) == id) {
      return std::string(r.points >= 0 ? "+" : "") + std::to_string(r.points) + " " + r.reason +
             (evidence.empty() ? "" : ": " + Clip(evidence, 120));
    }
  }
  return id;
}

Result<json> Research(const json& in) {
  const json& record = in.contains("record") ? in["record"] : json::object();
  const json& pages = in.contains("pages") && in["pages"].is_array() ? in["pages"] : json::array();
  json facts = json::array();
  std::set<std::pair<std::string, std::string>> seen;
  std::map<std::string, std::vector<std::string>> by_kind;
  std::string all_text;
  for (size_t i = 0; i < pages.size(); ++i) {
    std::string text = S(pages[i], "text");
    std::string url = S(pages[i], "url");
    std::string source = url.empty() ? "pages/" + std::to_string(i) : url;
    all_text += Lower(text) + "\n";
    for (const auto& f : memory::ExtractFacts(text)) {
      if (!seen.insert({f.kind, f.value}).second) continue;
      by_kind[f.kind].push_back(f.kind == "role" ? f.text : f.value);
      facts.push_back({{"kind", f.kind},
                       {"value", Clip(f.value, 490)},
                       {"text", Clip(f.text, 990)},
                       {"source", Clip(source, 1990)},
                       {"span", {f.begin, f.end}},
                       {"confidence", std::round(f.confidence * 100) / 100}});
    }
  }
  int score = 0;
  json reasons = json::array();
  auto fire = [&](const char* id, const std::string& evidence) {
    score += Points(id);
    reasons.push_back(Reason(id, evidence));
  };
  fire("base", "");
  std::vector<std::string> emails = by_kind["email"];
  if (!S(record, "email").empty()) emails.insert(emails.begin(), S(record, "email"));
  std::string business;
  for (const auto& e : emails) {
    if (!FreeMailDomain(e)) {
      business = e;
      break;
    }
  }
  if (!business.empty()) {
    fire("business_email", business);
  } else if (!emails.empty()) {
    fire("free_email_only", emails[0]);
  }
  std::string role;
  for (const auto& r : by_kind["role"]) {
    std::string l = Lower(r);
    for (const auto& d : DecisionRoles()) {
      if (l.find(d) != std::string::npos) role = r;
    }
    if (!role.empty()) break;
  }
  if (!role.empty()) fire("decision_maker", role);
  std::string company = S(record, "company");
  if (company.empty() && !by_kind["company"].empty()) company = by_kind["company"][0];
  if (!company.empty()) fire("company", company);
  if (!by_kind["money"].empty()) fire("budget", by_kind["money"][0]);
  if (!by_kind["date"].empty()) fire("timeline", by_kind["date"][0]);
  if (!by_kind["phone"].empty() || !S(record, "phone").empty()) {
    fire("phone", !S(record, "phone").empty() ? S(record, "phone") : by_kind["phone"][0]);
  }
  if (!S(record, "website").empty() || !by_kind["url"].empty()) {
    fire("website", !S(record, "website").empty() ? S(record, "website") : by_kind["url"][0]);
  }
  for (const char* w : {"looking for", "we need", "rfp", "request for proposal", "quote",
                        "proposal", "budget", "hiring"}) {
    if (all_text.find(w) != std::string::npos) {
      fire("intent", std::string("\"") + w + "\"");
      break;
    }
  }
  score = std::clamp(score, 0, 100);

  std::string who = S(record, "name");
  if (who.empty()) who = company.empty() ? "this lead" : company;
  std::string summary = "Research on " + who;
  if (!company.empty() && company != who) summary += " (" + company + ")";
  summary += " read " + std::to_string(pages.size()) + " page(s) and found " +
             std::to_string(facts.size()) + " fact(s).";
  auto list = [&](const char* kind, const char* label) {
    const auto& v = by_kind[kind];
    if (v.empty()) return;
    summary += std::string(" ") + label + ": ";
    for (size_t i = 0; i < v.size() && i < 3; ++i) summary += (i ? ", " : "") + Clip(v[i], 80);
    summary += ".";
  };
  list("person", "People");
  list("role", "Roles");
  list("company", "Companies");
  list("money", "Amounts");
  list("date", "Dates");
  summary += " Lead score " + std::to_string(score) + "/100 from " +
             std::to_string(reasons.size()) + " rule(s).";
  return json{
      {"facts", facts}, {"summary", Clip(summary, 1400)}, {"score", score}, {"reasons", reasons}};
}

std::string FirstName(const std::string& name) {
  auto sp = name.find(' ');
  return sp == std::string::npos ? name : name.substr(0, sp);
}

Result<json> Draft(const json& in) {
  const json& record = in["record"];
  std::string name = S(record, "name");
  std::string company = S(record, "company");
  std::string kind = S(in, "kind").empty() ? "email" : S(in, "kind");
  std::string offer = S(in, "offer");
  const json& sender = in.contains("sender") ? in["sender"] : json::object();
  std::string sender_name = S(sender, "name").empty() ? "[your name]" : S(sender, "name");
  json used = json::array();
  std::vector<std::string> points;
  // The facts given in the input, else those recalled from memory (cited by their ids).
  const char* from =
      in.contains("facts") && in["facts"].is_array() && !in["facts"].empty() ? "facts" : "memory";
  if (in.contains(from) && in[from].is_array()) {
    for (const json& f : in[from]) {
      std::string t = S(f, "text").empty() ? S(f, "value") : S(f, "text");
      if (t.empty() || points.size() >= 3) continue;
      points.push_back(Clip(t, 200));
      used.push_back(S(f, "id").empty() ? Clip(t, 200) : S(f, "id"));
    }
  }
  std::string about = company.empty() ? "your work" : company;
  std::string subject, body;
  if (kind == "proposal") {
    subject = "Proposal for " + (company.empty() ? name : company);
    body = "Proposal for " + (company.empty() ? name : company) + "\n\n1. What we understood\n";
    if (!S(in, "summary").empty()) body += Clip(S(in, "summary"), 1200) + "\n";
    for (const auto& p : points) body += "- " + p + "\n";
    body += "\n2. What we propose\n" +
            (offer.empty() ? std::string("[describe the offer]") : offer) +
            "\n\n3. Next steps\nA 30-minute call to confirm scope and timeline; then a fixed "
            "quote.\n\n" +
            sender_name + "\n";
  } else {
    subject = offer.empty() ? "A question about " + about : Clip(offer, 60) + " for " + about;
    body = "Hi " + (name.empty() ? std::string("there") : FirstName(name)) + ",\n\n";
    if (!points.empty()) {
      body += "While reading about " + about + " I noted:\n";
      for (const auto& p : points) body += "- " + p + "\n";
      body += "\n";
    }
    body += offer.empty() ? "I help businesses like yours and would like to learn what you need.\n"
                          : offer + "\n";
    body += "\nWould a short call next week be useful?\n\nBest regards,\n" + sender_name + "\n";
  }
  json out = {{"subject", Clip(subject, 190)}, {"body", body}, {"facts_used", used}};
  if (!S(record, "email").empty()) out["to"] = S(record, "email");
  return out;
}

Result<json> Outreach(const json& in) {
  const json& record = in["record"];
  const json& seq = in["sequence"];
  size_t done = in.contains("touches") && in["touches"].is_array() ? in["touches"].size() : 0;
  auto stop = [](const std::string& why) {
    return json{{"decision", "stop"}, {"reason", why}, {"actions", json::array()}};
  };
  auto wait = [&](const std::string& why) {
    return json{{"decision", "wait"}, {"step", done}, {"reason", why}, {"actions", json::array()}};
  };
  if (in.value("opted_out", false)) return stop("the lead opted out");
  if (in.value("bounced", false)) return stop("an earlier message bounced");
  if (in.contains("replies") && in["replies"].is_array() && !in["replies"].empty()) {
    return stop("the lead replied: the operator takes over");
  }
  if (done >= seq.size()) return stop("the sequence is finished");
  if (in.contains("daily_cap") &&
      in.value("sent_today", int64_t{0}) >= in["daily_cap"].get<int64_t>()) {
    return wait("the daily cap of " + std::to_string(in["daily_cap"].get<int64_t>()) +
                " is reached");
  }
  const json& step = seq[done];
  int64_t wait_days = step.value("wait_days", int64_t{0});
  if (done > 0 && wait_days > 0 && !S(in, "today").empty()) {
    std::string last = S(in["touches"][done - 1], "sent_at");
    int64_t last_us = 0, today_us = 0;
    if (ParseTimeMicros(last, &last_us) && ParseTimeMicros(S(in, "today"), &today_us)) {
      int64_t days = (today_us - last_us) / (86400LL * 1000000);
      if (days < wait_days) {
        return wait("step " + std::to_string(done) + " waits " + std::to_string(wait_days) +
                    " day(s) after the last touch; " + std::to_string(days) + " passed");
      }
    }
  }
  json action = {{"type", "send_email"},
                 {"to", S(record, "email")},
                 {"subject", S(step, "subject")},
                 {"body", S(step, "body")}};
  return json{
      {"decision", "send"},
      {"step", done},
      {"reason", "step " + std::to_string(done) + " of " + std::to_string(seq.size()) + " is due"},
      {"actions", json::array({action})}};
}

Result<json> Accountant(const json& in) {
  const json empty = json::array();
  const json& deals = in.contains("deals") ? in["deals"] : empty;
  const json& invoices = in.contains("invoices") ? in["invoices"] : empty;
  const json& payments = in.contains("payments") ? in["payments"] : empty;
  json drafts = json::array(), recon = json::array(), anomalies = json::array(),
       actions = json::array();
  for (const json& d : deals) {
    if (Lower(S(d, "status")) != "won") continue;
    bool invoiced = false;
    for (const json& inv : invoices) invoiced = invoiced || S(inv, "deal_id") == S(d, "id");
    if (invoiced) continue;
    std::string currency = S(d, "currency").empty() ? "EUR" : S(d, "currency");
    drafts.push_back({{"deal_id", S(d, "id")},
                      {"customer", S(d, "customer")},
                      {"amount", d["amount"]},
                      {"currency", currency},
                      {"due_days", 30}});
    json act = {{"type", "create_invoice"},
                {"deal_id", S(d, "id")},
                {"amount", d["amount"]},
                {"currency", currency}};
    if (!S(d, "email").empty()) act["to"] = S(d, "email");
    if (!S(d, "currency").empty()) act["currency"] = S(d, "currency");
    actions.push_back(act);
  }
  std::map<std::string, double> paid;  // invoice id -> paid so far
  auto flag = [&](const std::string& kind, const json& p, const std::string& invoice,
                  const std::string& detail) {
    anomalies.push_back(
        {{"kind", kind}, {"payment_id", S(p, "id")}, {"invoice_id", invoice}, {"detail", detail}});
    json act = {
        {"type", "flag_anomaly"}, {"kind", kind}, {"payment_id", S(p, "id")}, {"detail", detail}};
    if (!invoice.empty()) act["invoice_id"] = invoice;
    actions.push_back(act);
  };
  for (const json& p : payments) {
    const json* match = nullptr;
    std::string by;
    for (const json& inv : invoices) {
      if (!S(p, "invoice_id").empty() && S(inv, "id") == S(p, "invoice_id")) {
        match = &inv;
        by = "invoice id";
      }
    }
    if (match == nullptr) {
      const json* only = nullptr;
      int count = 0;
      for (const json& inv : invoices) {
        if (Lower(S(inv, "status")) == "paid") continue;
        if (std::abs(N(inv, "amount") - N(p, "amount")) < 0.005 &&
            (S(inv, "currency").empty() || S(p, "currency").empty() ||
             S(inv, "currency") == S(p, "currency"))) {
          only = &inv;
          ++count;
        }
      }
      if (count == 1) {
        match = only;
        by = "amount and currency";
      }
    }
    if (match == nullptr) {
      recon.push_back({{"payment_id", S(p, "id")}, {"status", "unmatched"}});
      flag("unknown_payment", p, "", "no invoice matches this payment");
      continue;
    }
    std::string iid = S(*match, "id");
    double due = N(*match, "amount");
    double before = paid[iid];
    paid[iid] = before + N(p, "amount");
    std::string status = "matched";
    if (!S(p, "currency").empty() && !S(*match, "currency").empty() &&
        S(p, "currency") != S(*match, "currency")) {
      status = "currency_mismatch";
      flag("currency_mismatch", p, iid,
           "paid in " + S(p, "currency") + ", invoiced in " + S(*match, "currency"));
    } else if (before >= due - 0.005) {
      status = "duplicate";
      flag("duplicate_payment", p, iid, "the invoice was already paid in full");
    } else if (paid[iid] > due + 0.005) {
      status = "overpaid";
      flag("overpayment", p, iid, "paid more than the invoice amount");
    } else if (paid[iid] < due - 0.005) {
      status = "partial";
      flag("underpayment", p, iid, "paid less than the invoice amount so far");
    }
    recon.push_back(
        {{"payment_id", S(p, "id")}, {"invoice_id", iid}, {"matched_by", by}, {"status", status}});
  }
  return json{{"invoices", drafts},
              {"reconciliation", recon},
              {"anomalies", anomalies},
              {"actions", actions}};
}

class OfflineProvider final : public ModelProvider {
 public:
  std::string name() const override { return "offline"; }
  std::string default_model() const override { return "keel-offline-1"; }

  Result<ModelResponse> Complete(const ModelRequest& req) override {
    KEEL_ASSIGN_OR_RETURN(json in, ParseJsonObject(req.input_json.empty() ? "{}" : req.input_json,
                                                   "the offline provider's input"));
    Result<json> out = FailedPrecondition("");
    if (req.task == "research") {
      out = Research(in);
    } else if (req.task == "draft") {
      out = Draft(in);
    } else if (req.task == "outreach") {
      out = Outreach(in);
    } else if (req.task == "accountant") {
      out = Accountant(in);
    } else {
      return FailedPrecondition("the offline provider has no rules for task '" + req.task +
                                "'; configure a model provider for this agent (models.providers "
                                "in keel.yaml)");
    }
    if (!out.ok()) return out.status();
    ModelResponse r;
    r.provider = "offline";
    r.model = req.model.empty() ? default_model() : req.model;
    r.text = CanonicalJson(*out);
    r.json = r.text;
    r.finish_reason = "stop";
    int64_t in_bytes = 0;  // what a model would read: the messages
    for (const auto& m : req.messages) in_bytes += static_cast<int64_t>(m.content.size());
    r.input_tokens = (in_bytes + 3) / 4;
    r.output_tokens = static_cast<int64_t>((r.text.size() + 3) / 4);
    r.raw_body = r.text;
    return r;
  }
};

}  // namespace

std::unique_ptr<ModelProvider> NewOfflineProvider() {
  return std::make_unique<OfflineProvider>();
}

}  // namespace keel::agents
