// Command-line flags of the bench/ drivers, one parser for all of them. Every flag is
// declared with its default and, for a number, its range; Parse() then refuses, with a
// one-line message, the usage text and exit code 2:
//   - a flag nobody declared (a typo such as --w1-step must not run the defaults silently),
//   - a flag given without its value,
//   - a number that is not a whole number in [min, max] (atoi's silent 0 made the drivers
//     divide by zero or read past empty vectors).
// `--help` prints the usage text and exits 0.
//
// Header-only, for bench/ only. The pointers given to Int/Str/Bool must outlive Parse().
// Not thread-safe (a driver parses once, at the top of main).
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace keel::bench {

class Flags {
 public:
  // `program` names the driver in messages ("ledger bench"), `command` runs it in the
  // usage text ("scripts/bench ledger").
  Flags(std::string program, std::string command)
      : program_(std::move(program)), command_(std::move(command)) {}

  // --name N: a whole number in [min, max], stored into *v; *v holds the default.
  template <typename T>
  void Int(const std::string& name, T* v, int64_t min, int64_t max, const std::string& help) {
    Add(name, "N", help + " (default " + std::to_string(*v) + ")",
        [this, name, v, min, max](const char* text) {
          errno = 0;
          char* end = nullptr;
          long long x = std::strtoll(text, &end, 10);
          if (errno != 0 || end == text || *end != '\0' || x < min || x > max) {
            Fail(name + ": expected a whole number from " + std::to_string(min) + " to " +
                 std::to_string(max) + ", got '" + text + "'");
          }
          *v = static_cast<T>(x);
        });
  }

  // --name VALUE: any text, stored into *v; *v holds the default. `value` names it in the
  // usage text ("DIR").
  void Str(const std::string& name, std::string* v, const std::string& value,
           const std::string& help) {
    Add(name, value, help + (v->empty() ? "" : " (default " + *v + ")"),
        [=](const char* text) { *v = text; });
  }

  // --name with no value: sets *v to true.
  void Bool(const std::string& name, bool* v, const std::string& help) {
    Add(name, "", help, [=](const char*) { *v = true; });
  }

  // Parses argv[1..argc); on any error prints a message and the usage and exits 2.
  void Parse(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "--help" || a == "-h") {
        std::fputs(Usage().c_str(), stdout);
        std::exit(0);
      }
      const Flag* f = Find(a);
      if (f == nullptr) Fail("unknown option '" + a + "'");
      if (f->value.empty()) {
        f->set(nullptr);
        continue;
      }
      if (i + 1 >= argc) Fail(a + " needs a value (" + f->value + ")");
      f->set(argv[++i]);
    }
  }

  // Ends the run like a bad flag: for checks across flags (e.g. --single >= --rounds).
  [[noreturn]] void Fail(const std::string& what) const {
    std::fprintf(stderr, "%s: %s\n%s", program_.c_str(), what.c_str(), Usage().c_str());
    std::exit(2);
  }

 private:
  struct Flag {
    std::string name, value, help;
    std::function<void(const char*)> set;
  };

  void Add(const std::string& name, const std::string& value, const std::string& help,
           std::function<void(const char*)> set) {
    flags_.push_back({name, value, help, std::move(set)});
  }

  const Flag* Find(const std::string& name) const {
    for (const Flag& f : flags_) {
      if (f.name == name) return &f;
    }
    return nullptr;
  }

  std::string Usage() const {
    std::string u = "usage: " + command_ + " [flags]\n";
    for (const Flag& f : flags_) {
      std::string head = "  " + f.name + (f.value.empty() ? "" : " " + f.value);
      if (head.size() < 24) head.resize(24, ' ');
      u += head + " " + f.help + "\n";
    }
    return u;
  }

  std::string program_, command_;
  std::vector<Flag> flags_;
};

}  // namespace keel::bench
