#include "broker/cpu_worker.h"

#include <boost/asio/post.hpp>

#include "broker/async_event.h"

namespace sluice::broker {

CpuWorker::CpuWorker(boost::asio::any_io_executor executor)
    : executor_(std::move(executor)), thread_([this] { loop(); }) {}

CpuWorker::~CpuWorker() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void CpuWorker::submit(std::function<void()> job, std::function<void()> done) {
  {
    std::lock_guard lock(mutex_);
    pending_.push_back(Job{std::move(job), std::move(done)});
  }
  wake_.notify_one();
}

boost::asio::awaitable<void> CpuWorker::run(std::function<void()> job) {
  AsyncEvent finished(executor_);
  submit(std::move(job), [&finished] { finished.set(); });
  while (!finished.is_set()) co_await finished.wait_until(boost::asio::steady_timer::time_point::max());
}

void CpuWorker::loop() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
      if (stopping_) return;  // completions would have no executor left to run on
      job = std::move(pending_.front());
      pending_.pop_front();
    }
    job.work();
    boost::asio::post(executor_, std::move(job.done));
  }
}

}  // namespace sluice::broker
