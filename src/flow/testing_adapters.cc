#include "flow/testing_adapters.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace keel::flow {

CountingAdapter::CountingAdapter(std::string name, bool honours_key, std::string effects_file)
    : name_(std::move(name)), honours_key_(honours_key), file_(std::move(effects_file)) {}

void CountingAdapter::LoadFile() {
  if (loaded_ || file_.empty()) return;
  loaded_ = true;
  std::ifstream in(file_);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string adapter, token;
    ls >> adapter >> token;
    if (adapter == name_) {
      ++per_token_[token];
      ++effects_;
    }
  }
}

Outcome CountingAdapter::Perform(const std::string& token, const std::string& action,
                                 const nlohmann::json& params, const CallContext& ctx,
                                 nlohmann::json* result) {
  if (delay_clock_ != nullptr && delay_us_ > 0) delay_clock_->SleepMicros(delay_us_);
  std::lock_guard<std::mutex> l(mu_);
  LoadFile();
  ++calls_;
  if (params.is_object() && params.contains("_fail")) {
    int times = params.value("_fail_times", 1 << 30);
    ErrorClass c = ErrorClass::kTransient;
    ParseErrorClass(params.value("_fail", "transient"), &c);
    if (ctx.attempt <= times) {
      return Outcome::Failure(c,
                              name_ + "." + action + ": injected " + std::string(ErrorClassName(c)),
                              c == ErrorClass::kRateLimited ? 60000000 : 0);
    }
  }
  bool dup = honours_key_ && per_token_.count(token) > 0;
  if (!dup) {
    ++per_token_[token];
    ++effects_;
    if (!file_.empty()) {
      std::string line = name_ + " " + token + " " + action + "\n";
      int fd = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd >= 0) {
        ssize_t n = ::write(fd, line.data(), line.size());
        (void)n;
        ::fsync(fd);
        ::close(fd);
      }
    }
  }
  *result = {{"adapter", name_}, {"action", action}, {"token", token}, {"deduplicated", dup}};
  if (params.is_object() && params.value("_in_doubt_after_send", false) && ctx.attempt == 1) {
    Outcome o = Outcome::Failure(ErrorClass::kInDoubt, "connection dropped after sending");
    o.evidence = "sent " + action + " with token " + token + "; no reply";
    return o;
  }
  return Outcome::Success();
}

int CountingAdapter::effects() const {
  std::lock_guard<std::mutex> l(mu_);
  return effects_;
}

int CountingAdapter::effects_for(const std::string& token) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = per_token_.find(token);
  return it == per_token_.end() ? 0 : it->second;
}

int CountingAdapter::calls() const {
  std::lock_guard<std::mutex> l(mu_);
  return calls_;
}

}  // namespace keel::flow
