// Integer flags of the bench/ drivers: a value that is not a whole number in [min, max]
// ends the run with a one-line message and exit code 2, instead of atoi's silent 0 (a
// zero count made the drivers divide by zero or read past empty vectors).
// Header-only, for bench/ only.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace keel::bench {

inline int ParseIntFlag(const std::string& name, const char* text, long min, long max) {
  errno = 0;
  char* end = nullptr;
  long v = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < min || v > max) {
    std::fprintf(stderr, "%s: expected a whole number from %ld to %ld, got '%s'\n", name.c_str(),
                 min, max, text);
    std::exit(2);
  }
  return static_cast<int>(v);
}

}  // namespace keel::bench
