// Acknowledgment of pipelined commits, as a client of keel may count them: something
// committed with Workspace::WritePipelined (or in an engine worker round) is done only once
// the workspace's durable count has passed that commit. Each commit is noted with the time
// its work started; Observe() acknowledges, in commit order, everything durable by now and
// records start-to-acknowledgment latencies. A latency is an upper bound: it is taken when
// durability is first observed, not when the fsync returned.
//
// Header-only, for bench/ only. Does not own the workspace, which must outlive it. Not
// thread-safe: call from the thread that commits.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <vector>

#include "store/workspace.h"

namespace keel::bench {

class DurableAcks {
 public:
  using Clock = std::chrono::steady_clock;

  explicit DurableAcks(keel::store::Workspace* ws) : ws_(ws) {}

  // Work started at `start` is in the commit just made.
  void Committed(Clock::time_point start) { pending_.push_back({ws_->pipelined_commits(), start}); }

  // Acknowledges what is durable now, appending each latency in seconds to *lat_s;
  // returns how many were acknowledged.
  int Observe(std::vector<double>* lat_s) {
    uint64_t durable = ws_->durable_commits();
    auto now = Clock::now();
    int n = 0;
    while (!pending_.empty() && pending_.front().ticket <= durable) {
      lat_s->push_back(std::chrono::duration<double>(now - pending_.front().start).count());
      pending_.pop_front();
      ++n;
    }
    return n;
  }

  // True when everything committed has been acknowledged.
  bool empty() const { return pending_.empty(); }

 private:
  struct Pending {
    uint64_t ticket;  // the workspace's pipelined commit count right after the commit
    Clock::time_point start;
  };
  keel::store::Workspace* ws_;
  std::deque<Pending> pending_;
};

}  // namespace keel::bench
