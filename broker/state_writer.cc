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

void StateWriter::apply(std::vector<storage::StateStore::Change> changes, std::function<void(bool)> done,
                        std::shared_ptr<Chain> chain) {
  queue_.push({std::move(changes), std::move(done), std::move(chain)});
}

void StateWriter::drain() { queue_.wait_idle(); }

void StateWriter::run() {
  for (;;) {
    std::vector<Request> batch = queue_.take();
    if (batch.empty()) return;  // stopped
    // Group commit: one transaction (one sync) for every request waiting. If it fails, each is
    // tried alone, in order, so that one bad request does not fail the others (but does fail
    // the rest of its chain).
    std::vector<bool> ok(batch.size(), true);
    auto chain_failed = [&](size_t i) { return batch[i].chain && batch[i].chain->failed; };
    std::vector<size_t> todo;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (chain_failed(i)) ok[i] = false;
      else todo.push_back(i);
    }
    auto apply_alone = [&](size_t i) {
      if (chain_failed(i)) {
        ok[i] = false;
        return;
      }
      try {
        store_.apply(batch[i].changes);
      } catch (const std::exception& e) {
        SLUICE_LOG(kError, "state store write failed: " << e.what());
        ok[i] = false;
        if (batch[i].chain) batch[i].chain->failed = true;
      }
    };
    if (todo.size() == 1) {
      apply_alone(todo[0]);
    } else if (!todo.empty()) {
      try {
        std::vector<storage::StateStore::Change> all;
        for (size_t i : todo) all.insert(all.end(), batch[i].changes.begin(), batch[i].changes.end());
        store_.apply(all);
      } catch (const std::exception&) {
        for (size_t i : todo) apply_alone(i);
      }
    }
    for (size_t i = 0; i < batch.size(); ++i)
      if (batch[i].done) boost::asio::post(executor_, [done = std::move(batch[i].done), result = bool(ok[i])] { done(result); });
    queue_.finished();
  }
}

}  // namespace sluice::broker
