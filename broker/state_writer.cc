#include "broker/state_writer.h"

#include <boost/asio/post.hpp>

#include "broker/log.h"

namespace sluice::broker {

StateWriter::StateWriter(boost::asio::any_io_executor executor, storage::StateStore& store)
    : executor_(std::move(executor)), store_(store), thread_([this] { run(); }) {}

StateWriter::~StateWriter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void StateWriter::apply(std::vector<storage::StateStore::Change> changes, std::function<void(bool)> done) {
  {
    std::lock_guard lock(mutex_);
    pending_.push_back({std::move(changes), std::move(done)});
  }
  wake_.notify_one();
}

void StateWriter::drain() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [&] { return pending_.empty() && !busy_; });
}

void StateWriter::run() {
  for (;;) {
    std::vector<Request> batch;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
      if (pending_.empty() && stopping_) return;
      batch.swap(pending_);
      busy_ = true;
    }
    // Group commit: one transaction (one sync) for every request waiting. If it fails, each is
    // tried alone, so that one bad request does not fail the others.
    std::vector<bool> ok(batch.size(), true);
    try {
      if (batch.size() == 1) {
        store_.apply(batch[0].changes);
      } else {
        std::vector<storage::StateStore::Change> all;
        for (const auto& request : batch) all.insert(all.end(), request.changes.begin(), request.changes.end());
        store_.apply(all);
      }
    } catch (const std::exception& e) {
      if (batch.size() == 1) {
        SLUICE_LOG(kError, "state store write failed: " << e.what());
        ok[0] = false;
      } else {
        for (size_t i = 0; i < batch.size(); ++i) {
          try {
            store_.apply(batch[i].changes);
          } catch (const std::exception& alone) {
            SLUICE_LOG(kError, "state store write failed: " << alone.what());
            ok[i] = false;
          }
        }
      }
    }
    for (size_t i = 0; i < batch.size(); ++i)
      if (batch[i].done) boost::asio::post(executor_, [done = std::move(batch[i].done), result = bool(ok[i])] { done(result); });
    {
      std::lock_guard lock(mutex_);
      busy_ = false;
    }
    idle_.notify_all();
  }
}

}  // namespace sluice::broker
