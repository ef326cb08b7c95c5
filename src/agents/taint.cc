#include "agents/taint.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

namespace keel::agents {
namespace {

std::vector<std::string> Split(const std::string& pointer) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < pointer.size()) {
    if (pointer[i] != '/') return parts;
    size_t j = pointer.find('/', i + 1);
    parts.push_back(pointer.substr(i + 1, j == std::string::npos ? std::string::npos : j - i - 1));
    if (j == std::string::npos) break;
    i = j;
  }
  return parts;
}

// Does `pattern` match a prefix of `path` (so `path` is at or below the pattern)?
bool PrefixMatch(const std::vector<std::string>& pattern, const std::vector<std::string>& path) {
  if (pattern.size() > path.size()) return false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != "*" && pattern[i] != path[i]) return false;
  }
  return true;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Escape(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

template <typename Fn>
void Walk(const Json& v, const std::string& path, const Fn& fn) {
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it)
      Walk(it.value(), path + "/" + Escape(it.key()), fn);
  } else if (v.is_array()) {
    for (size_t i = 0; i < v.size(); ++i) Walk(v[i], path + "/" + std::to_string(i), fn);
  } else {
    fn(path, v);
  }
}

}  // namespace

bool TaintSet::IsTainted(const std::string& pointer) const {
  auto path = Split(pointer);
  for (const auto& p : patterns_) {
    if (PrefixMatch(Split(p), path)) return true;
  }
  return false;
}

bool TaintSet::Touches(const std::string& pointer) const {
  auto path = Split(pointer);
  for (const auto& p : patterns_) {
    auto pat = Split(p);
    // Either the pattern covers the path, or the path is a prefix of the pattern.
    if (PrefixMatch(pat, path)) return true;
    if (path.size() < pat.size()) {
      bool prefix = true;
      for (size_t i = 0; i < path.size(); ++i)
        prefix = prefix && (pat[i] == "*" || pat[i] == path[i]);
      if (prefix) return true;
    }
  }
  return false;
}

TrustedValues::TrustedValues(const Json& input, const TaintSet& taint) {
  Walk(input, "", [&](const std::string& path, const Json& v) {
    if (taint.IsTainted(path)) {
      any_tainted_ = true;
      return;
    }
    if (v.is_string()) {
      const std::string& s = v.get_ref<const std::string&>();
      strings_.insert(s);
      strings_.insert(Lower(s));
      texts_.push_back(s);
    } else if (v.is_number()) {
      numbers_.insert(v.get<double>());
    }
  });
}

bool TrustedValues::Contains(const Json& v) const {
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (strings_.count(s) != 0) return true;
    // E-mail addresses compare case-insensitively; other text must match exactly.
    return s.find('@') != std::string::npos && strings_.count(Lower(s)) != 0;
  }
  if (v.is_number()) return numbers_.count(v.get<double>()) != 0;
  if (v.is_boolean() || v.is_null()) return true;  // carry no payload
  return false;
}

bool TrustedValues::ContainsText(const std::string& url) const {
  for (const auto& t : texts_) {
    if (t.find(url) != std::string::npos) return true;
  }
  return false;
}

std::vector<std::string> TaintedOutputPaths(const Json& output, const TrustedValues& trusted,
                                            bool saw_tainted) {
  std::vector<std::string> out;
  if (!saw_tainted) return out;
  Walk(output, "", [&](const std::string& path, const Json& v) {
    if (!trusted.Contains(v)) out.push_back(path);
  });
  return out;
}

std::vector<std::string> FindLinks(const std::string& text) {
  std::vector<std::string> out;
  size_t i = 0;
  auto is_end = [](char c) {
    return std::isspace(static_cast<unsigned char>(c)) || c == '"' || c == '<' || c == '>' ||
           c == '\'' || c == ')' || c == ']' || c == '`';
  };
  const std::string lower = Lower(text);
  while (i < text.size()) {
    size_t a = std::string::npos;
    for (const char* p : {"http://", "https://", "www."}) {
      size_t f = lower.find(p, i);
      if (f != std::string::npos) a = std::min(a, f);
    }
    if (a == std::string::npos) break;
    size_t b = a;
    while (b < text.size() && !is_end(text[b])) ++b;
    std::string link = text.substr(a, b - a);
    while (!link.empty() && (link.back() == '.' || link.back() == ',' || link.back() == ';')) {
      link.pop_back();
    }
    if (link.size() > 7) out.push_back(link);
    i = b;
  }
  return out;
}

}  // namespace keel::agents
