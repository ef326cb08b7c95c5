// Deterministic, rule-based fact extraction from raw text: the offline model provider's
// extractor and what Memory::ExtractFrom runs. A pure function: no I/O, no clock, no model;
// the same text always gives the same facts in the same order.
//
// What it finds (docs/memory.md, "Extraction"): email addresses, phone numbers (7-15 digits,
// normalised to digits with a leading '+' when given), money amounts with a currency symbol or
// code (normalised "12500.00 EUR"), dates (ISO, "March 3, 2026", "3 March 2026"; normalised
// YYYY-MM-DD), URLs (http/https/www.), companies (capitalised names ending in a legal or
// business suffix: Inc, Ltd, GmbH, LLC, Corp, SA, AG, BV, Co, Labs, ...), and people (two or
// three capitalised words after an honorific, or followed/preceded by a stated role such as
// "Jane Doe, CFO of Acme Ltd" or "CEO Jane Doe"). A person's role becomes its own fact.
//
// Each fact carries the byte span [begin, end) of the text it was read from. Input may be any
// bytes: invalid UTF-8 is treated as opaque non-letter bytes; nothing here fails.
//
// Thread-safety: pure; safe from any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace keel::memory {

struct ExtractedFact {
  std::string kind;   // person | company | role | email | phone | money | date | url
  std::string key;    // the key/value form: "email", "phone", "role", ...
  std::string value;  // the normalised value ("+15551234567", "2026-03-03", "12500.00 EUR")
  std::string text;   // a short sentence for the index ("Jane Doe is CFO at Acme Ltd")
  size_t begin = 0;   // byte span in the input
  size_t end = 0;
  double confidence = 0;  // rule confidence in [0, 1], documented per kind
};

struct ExtractOptions {
  size_t max_facts = 500;  // stop after this many (very long pages)
};

std::vector<ExtractedFact> ExtractFacts(std::string_view text, const ExtractOptions& opts = {});

}  // namespace keel::memory
