#include "flow/executor.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace keel::flow {

int EffectLimits::LaneLimit(const std::string& lane) const {
  auto it = lanes.find(lane);
  return std::max(1, it != lanes.end() ? it->second : per_lane);
}

namespace {

class ThreadPoolExecutor final : public EffectExecutor {
 public:
  explicit ThreadPoolExecutor(EffectLimits limits) : limits_(std::move(limits)) {
    limits_.global = std::max(1, limits_.global);
  }

  ~ThreadPoolExecutor() override {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
      queue_.clear();  // never started: their outbox rows stay as they are (flow/engine.h)
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  void Submit(const std::string& lane, std::function<void()> fn) override {
    std::lock_guard<std::mutex> l(mu_);
    queue_.push_back({lane, std::move(fn)});
    // A thread per function in flight, up to the global limit; idle ones are reused.
    if (idle_ == 0 && static_cast<int>(threads_.size()) < limits_.global) {
      threads_.emplace_back([this] { Loop(); });
    } else {
      cv_.notify_one();
    }
  }

 private:
  struct Task {
    std::string lane;
    std::function<void()> fn;
  };

  // The first queued task whose lane has room, or queue_.end(). Caller holds mu_.
  std::deque<Task>::iterator Runnable() {
    return std::find_if(queue_.begin(), queue_.end(), [&](const Task& t) {
      return running_[t.lane] < limits_.LaneLimit(t.lane);
    });
  }

  void Loop() {
    std::unique_lock<std::mutex> l(mu_);
    for (;;) {
      auto it = Runnable();
      if (it == queue_.end()) {
        if (stop_) return;
        ++idle_;
        cv_.wait(l);
        --idle_;
        continue;
      }
      Task t = std::move(*it);
      queue_.erase(it);
      ++running_[t.lane];
      l.unlock();
      t.fn();
      t.fn = nullptr;  // what it captured is released outside the lock
      l.lock();
      --running_[t.lane];
      // A lane that was full may have room now: another thread may take its next task.
      cv_.notify_all();
    }
  }

  EffectLimits limits_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> queue_;
  std::map<std::string, int> running_;
  std::vector<std::thread> threads_;
  int idle_ = 0;
  bool stop_ = false;
};

}  // namespace

std::unique_ptr<EffectExecutor> NewThreadPoolExecutor(EffectLimits limits) {
  return std::make_unique<ThreadPoolExecutor>(std::move(limits));
}

}  // namespace keel::flow
