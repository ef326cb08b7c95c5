// Test helper for CLI tests: a fresh workspace made by the real `keel init`, and shorthands
// to run `keel --workspace DIR ...` in it. Header-only; included by src/cli/*_test.cc.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/testing_util.h"

namespace keel::testing {

struct CliWorkspace {
  TempDir tmp;
  std::string dir = tmp.Sub("ws");
  CliWorkspace() {
    auto r = RunKeel({"init", dir});
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  ProcessResult Run(std::vector<std::string> args, const std::string& in = "") {
    args.insert(args.begin(), {"--workspace", dir});
    return RunKeel(args, in);
  }
  // Runs a command that must succeed and parses its standard output as JSON.
  nlohmann::json Json(std::vector<std::string> args) {
    auto r = Run(std::move(args));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(r.out, nullptr, false);
  }
  // Runs a command that must succeed and returns the first line of its output.
  std::string Line(std::vector<std::string> args) {
    auto r = Run(std::move(args));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out.substr(0, r.out.find('\n'));
  }
};

}  // namespace keel::testing
