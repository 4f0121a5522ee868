#include "broker/state_writer.h"

#include <boost/asio/post.hpp>

#include "broker/log.h"

namespace sluice::broker {

StateWriter::StateWriter(boost::asio::any_io_executor executor, storage::StateStore& store)
    : executor_(std::move(executor)), store_(store), thread_([this] { run(); }) {}

StateWriter::~StateWriter() {
  queue_.stop();
  thread_.join();
}

void StateWriter::apply(std::vector<storage::StateStore::Change> changes, std::function<void(bool)> done) {
  queue_.push({std::move(changes), std::move(done)});
}

void StateWriter::drain() { queue_.wait_idle(); }

void StateWriter::run() {
  for (;;) {
    std::vector<Request> batch = queue_.take();
    if (batch.empty()) return;  // stopped
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
    queue_.finished();
  }
}

}  // namespace sluice::broker
