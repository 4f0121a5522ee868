// The queue between the network thread and a worker thread that serves
// requests in batches (the flusher's group commit, the state writer's): any
// thread pushes; the worker takes everything waiting at once.
#pragma once

#include <condition_variable>
#include <mutex>
#include <vector>

namespace sluice::broker {

template <typename Request>
class BatchQueue {
 public:
  void push(Request request) {
    {
      std::lock_guard lock(mutex_);
      pending_.push_back(std::move(request));
    }
    wake_.notify_one();
  }

  // The worker: blocks until something waits, then takes all of it. Empty once
  // stop() was called and nothing is left: the worker returns then.
  std::vector<Request> take() {
    std::unique_lock lock(mutex_);
    wake_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
    std::vector<Request> batch;
    batch.swap(pending_);
    busy_ = !batch.empty();
    return batch;
  }
  // The worker is through with what take() gave it.
  void finished() {
    {
      std::lock_guard lock(mutex_);
      busy_ = false;
    }
    idle_.notify_all();
  }

  // Blocks until everything pushed so far has been taken and finished.
  void wait_idle() {
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [&] { return pending_.empty() && !busy_; });
  }

  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::vector<Request> pending_;
  bool busy_ = false;
  bool stopping_ = false;
};

}  // namespace sluice::broker
