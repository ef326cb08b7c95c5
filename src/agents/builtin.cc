// The built-in agents, written as the same YAML an operator would put in agents/*.yaml, so the
// built-ins exercise the same loader and can be copied as examples.
#include "agents/agent.h"

namespace keel::agents {
namespace {

const char kResearch[] = R"yaml(
name: research
version: 1
description: Turns raw pages and a record into facts with citations, a one-paragraph summary and a lead score with reasons.
task: research
temperature: 0
untrusted: [/pages]
memory: {subjects: [record], budget_tokens: 400, remember: /facts}
input_schema:
  type: object
  required: [record]
  properties:
    record: {type: object}
    pages:
      type: array
      maxItems: 50
      items:
        type: object
        required: [text]
        properties:
          url: {type: string, maxLength: 2000}
          text: {type: string}
output_schema:
  type: object
  required: [facts, summary, score, reasons]
  properties:
    facts:
      type: array
      items:
        type: object
        required: [kind, value, source]
        properties:
          kind: {type: string, enum: [person, company, role, email, phone, money, date, url]}
          value: {type: string, maxLength: 500}
          text: {type: string, maxLength: 1000}
          source: {type: string, maxLength: 2000}
          span: {type: array, items: {type: integer, minimum: 0}}
          confidence: {type: number, minimum: 0, maximum: 1}
    summary: {type: string, maxLength: 1500}
    score: {type: integer, minimum: 0, maximum: 100}
    reasons: {type: array, items: {type: string, maxLength: 300}}
budget: {max_tokens: 30000, max_cost_usd: 0.25, max_seconds: 120, max_output_tokens: 3000}
system: |
  You are the research agent of a one-person business. From the record and the pages you are
  given, list facts about the lead (people, company, roles, emails, phones, money, dates, URLs),
  each with the URL of the page it came from as `source`; write a one-paragraph summary; and
  score the lead from 0 to 100 with one reason per point of evidence.
prompt: |
  The lead record:
  {{record}}

  Pages fetched about the lead:
  {{pages?}}

  What memory already holds about this lead:
  {{memory?}}
)yaml";

const char kDrafting[] = R"yaml(
name: drafting
version: 1
description: Turns a brief of retrieved facts into an outreach email or a proposal, stored as a versioned draft artifact.
task: draft
temperature: 0
untrusted: [/facts, /summary]
draft_field: body
memory: {subjects: [record], budget_tokens: 400, used: /facts_used}
input_schema:
  type: object
  required: [record]
  properties:
    record:
      type: object
      required: [name]
      properties:
        name: {type: string}
        email: {type: string}
        company: {type: string}
    facts: {type: array, items: {type: object}}
    summary: {type: string}
    kind: {type: string, enum: [email, proposal]}
    sender: {type: object}
    offer: {type: string, maxLength: 2000}
    parent_draft: {type: string}
output_schema:
  type: object
  required: [subject, body]
  properties:
    to: {type: string}
    subject: {type: string, maxLength: 200}
    body: {type: string, maxLength: 8000}
    facts_used: {type: array, items: {type: string}}
budget: {max_tokens: 20000, max_cost_usd: 0.10, max_seconds: 90, max_output_tokens: 2000}
system: |
  You are the drafting agent of a one-person business. Write a short, specific, honest
  email or proposal to the lead using only the facts given. Do not invent facts, links or prices.
  Return the subject, the body, and `facts_used`: the facts you relied on (the id of each fact
  taken from memory).
prompt: |
  Recipient: {{record.name}} <{{record.email?}}> at {{record.company?}}
  Sender: {{sender?}}
  What we offer: {{offer?}}
  Kind of draft: {{kind?}}

  Summary of the lead:
  {{summary?}}

  Facts:
  {{facts?}}

  What memory holds about the lead (cite a fact by its id in facts_used):
  {{memory?}}
)yaml";

const char kOutreach[] = R"yaml(
name: outreach
version: 1
description: Chooses the next touch of a sequence, checking opt-outs, bounces and the daily cap given as input.
task: outreach
temperature: 0
untrusted: [/replies]
actions: [send_email]
input_schema:
  type: object
  required: [record, sequence]
  properties:
    record:
      type: object
      required: [email]
      properties:
        email: {type: string}
        name: {type: string}
    sequence:
      type: array
      items:
        type: object
        required: [subject, body]
        properties:
          subject: {type: string}
          body: {type: string}
          wait_days: {type: integer, minimum: 0}
    touches: {type: array, items: {type: object}}
    replies: {type: array}
    opted_out: {type: boolean}
    bounced: {type: boolean}
    sent_today: {type: integer, minimum: 0}
    daily_cap: {type: integer, minimum: 0}
    today: {type: string}
output_schema:
  type: object
  required: [decision, reason]
  properties:
    decision: {type: string, enum: [send, wait, stop]}
    step: {type: integer, minimum: 0}
    reason: {type: string, maxLength: 500}
    actions: {type: array, maxItems: 1, items: {type: object}}
budget: {max_tokens: 12000, max_cost_usd: 0.05, max_seconds: 60, max_output_tokens: 1500}
system: |
  You are the outreach agent. Decide the next touch of the sequence for this lead: send the
  next step, wait, or stop. Never send to a lead who opted out, bounced or replied; never exceed
  the daily cap. To send, propose one send_email action with to, subject and body.
prompt: |
  Lead: {{record}}
  Sequence: {{sequence}}
  Touches so far: {{touches?}}
  Opted out: {{opted_out?}}  Bounced: {{bounced?}}
  Sent today: {{sent_today?}} of a daily cap of {{daily_cap?}}. Today: {{today?}}
  Replies received:
  {{replies?}}
)yaml";

const char kAccountant[] = R"yaml(
name: accountant
version: 1
description: Drafts invoices from won deals, reconciles payments against invoices and flags anomalies.
task: accountant
temperature: 0
untrusted: [/payments/*/reference, /payments/*/memo, /payments/*/payer]
actions: [create_invoice, flag_anomaly]
input_schema:
  type: object
  properties:
    deals:
      type: array
      items:
        type: object
        required: [id, amount]
        properties:
          id: {type: string}
          amount: {type: number, minimum: 0}
          currency: {type: string}
          status: {type: string}
          customer: {type: string}
          email: {type: string}
    invoices:
      type: array
      items:
        type: object
        required: [id, amount]
        properties:
          id: {type: string}
          deal_id: {type: string}
          amount: {type: number}
          currency: {type: string}
          status: {type: string}
    payments:
      type: array
      items:
        type: object
        required: [id, amount]
        properties:
          id: {type: string}
          amount: {type: number}
          currency: {type: string}
          invoice_id: {type: string}
          reference: {type: string}
    today: {type: string}
output_schema:
  type: object
  required: [invoices, reconciliation, anomalies]
  properties:
    invoices: {type: array, items: {type: object}}
    reconciliation: {type: array, items: {type: object}}
    anomalies: {type: array, items: {type: object}}
    actions: {type: array, items: {type: object}}
budget: {max_tokens: 30000, max_cost_usd: 0.20, max_seconds: 120, max_output_tokens: 3000}
system: |
  You are the accountant agent. Draft one invoice per won deal that has none; match each
  payment to an invoice by id, then by amount and currency; flag anomalies (over- and
  under-payments, duplicates, unknown payments, currency mismatches). Propose create_invoice
  actions for the drafts and flag_anomaly actions for the anomalies.
prompt: |
  Deals: {{deals?}}
  Invoices: {{invoices?}}
  Payments received: {{payments?}}
  Today: {{today?}}
)yaml";

}  // namespace

std::vector<AgentContract> BuiltinAgents() {
  std::vector<AgentContract> out;
  for (const char* y : {kResearch, kDrafting, kOutreach, kAccountant}) {
    auto c = ParseAgentYaml(y, "builtin");
    // A broken built-in is a bug caught by the unit tests; skip it rather than abort.
    if (c.ok()) out.push_back(std::move(c).value());
  }
  return out;
}

}  // namespace keel::agents
