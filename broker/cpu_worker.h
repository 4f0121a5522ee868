// A thread for request work that costs CPU time in proportion to what a
// client sends, so that the network thread never spends it: today, opening
// the compressed batches of a Produce to check their records. Jobs run one at
// a time in the order given; each one's completion runs on the executor.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace sluice::broker {

class CpuWorker {
 public:
  explicit CpuWorker(boost::asio::any_io_executor executor);
  ~CpuWorker();
  CpuWorker(const CpuWorker&) = delete;
  CpuWorker& operator=(const CpuWorker&) = delete;

  // Runs `job` on the worker thread, then `done` on the executor.
  void submit(std::function<void()> job, std::function<void()> done);

  // Runs `job` on the worker thread and returns (on the executor) once it has
  // run. What `job` captures by reference must outlive the wait.
  boost::asio::awaitable<void> run(std::function<void()> job);

 private:
  struct Job {
    std::function<void()> work;
    std::function<void()> done;
  };
  void loop();

  boost::asio::any_io_executor executor_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> pending_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace sluice::broker
