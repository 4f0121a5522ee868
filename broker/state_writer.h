// LMDB commits off the network thread. A commit of the state store syncs the
// database file, so it is a disk wait; the broker's frequent writes (log
// checkpoints, committed offsets on a single node, DeleteRecords' log start)
// run here, one thread, in the order submitted, and report back on the
// executor. Readers on the network thread see a change once its done(true)
// has run (LMDB readers never wait for the writer).
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "broker/batch_queue.h"
#include "storage/state_store.h"

namespace sluice::broker {

class StateWriter {
 public:
  StateWriter(boost::asio::any_io_executor executor, storage::StateStore& store);
  ~StateWriter();  // commits what was submitted first
  StateWriter(const StateWriter&) = delete;
  StateWriter& operator=(const StateWriter&) = delete;

  // Writes that must land in order or not at all (a log kept in the store:
  // the metadata log): once one fails, the later ones of the chain fail
  // without being written, so that the store never holds a hole.
  struct Chain {
    bool failed = false;  // touched by the writer thread only
  };

  // Commits `changes` as one transaction after everything submitted before,
  // then calls done(ok) on the executor (ok false: nothing of it was written).
  void apply(std::vector<storage::StateStore::Change> changes, std::function<void(bool ok)> done = {},
             std::shared_ptr<Chain> chain = nullptr);

  // Blocks until everything submitted so far is committed (shutdown, after
  // the executor stopped: the done callbacks of those commits do not run).
  void drain();

  const boost::asio::any_io_executor& executor() const { return executor_; }

 private:
  struct Request {
    std::vector<storage::StateStore::Change> changes;
    std::function<void(bool)> done;
    std::shared_ptr<Chain> chain;
  };
  void run();

  boost::asio::any_io_executor executor_;
  storage::StateStore& store_;
  BatchQueue<Request> queue_;
  std::thread thread_;
};

}  // namespace sluice::broker
