// Group commit: fdatasync runs on a background thread, never on the network
// thread, and every flush requested while one sync is running shares the next
// one. Produce with acks=all is answered only after its data is on disk.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "broker/batch_queue.h"
#include "storage/partition_log.h"

namespace sluice::broker {

// What the flusher tells the metrics, on its own thread.
struct FlushObserver {
  std::function<void(double seconds)> synced = nullptr;  // each fdatasync/fsync's time
  // Bytes made durable: how much each synced file grew since its previous sync.
  std::function<void(uint64_t bytes)> flushed = nullptr;
};

class Flusher {
 public:
  explicit Flusher(boost::asio::any_io_executor executor, FlushObserver observer = FlushObserver());
  ~Flusher();
  Flusher(const Flusher&) = delete;
  Flusher& operator=(const Flusher&) = delete;

  // Syncs everything written so far to the files behind `sync.fds` and the
  // directories `sync.dirs` (opened on the flusher's thread), then calls
  // done(ok) on the executor. The fds are duplicated here, so the caller may
  // close or roll its files meanwhile.
  void flush(const storage::SyncList& sync, std::function<void(bool ok)> done);
  void flush(const std::vector<int>& fds, std::function<void(bool ok)> done) {
    storage::SyncList sync;
    sync.fds = fds;
    flush(sync, std::move(done));
  }

  // Runs `job` on the flusher's thread, before the syncs of every flush
  // requested after it (and of those taken in the same round), then calls
  // done(what it returned) on the executor; a job that throws returned false.
  // What must be on disk before a later flush completes goes here (the
  // leader-epoch checkpoint before the batches it describes are flushed).
  void run(std::function<bool()> job, std::function<void(bool ok)> done);
  // Runs `job` on the flusher's thread after the syncs of the flushes taken
  // with it (whose waiters are told first), for work nothing waits on: it
  // never delays a flush (a segment's block reserve). In order with the other
  // such jobs; done(what it returned) on the executor, if given.
  void run_after_syncs(std::function<bool()> job, std::function<void(bool ok)> done = nullptr);

  // Blocks until everything requested so far is done (shutdown's last flush).
  void wait_idle() { queue_.wait_idle(); }

  // Counters for tests and metrics.
  uint64_t syncs() const;

 private:
  struct Request {
    std::vector<int> fds;  // duplicates owned by the request
    std::vector<std::filesystem::path> dirs;
    std::vector<std::shared_ptr<const std::atomic<int>>> errors;  // SyncList::errors
    std::function<bool()> job;  // run() only
    bool only_job = false;      // its answer is the job's, whatever the syncs beside it did
    bool after_syncs = false;   // run_after_syncs()
    std::function<void(bool)> done;
    bool failed = false;   // a file could not be duplicated (no descriptors left), or the job failed
  };
  void run();

  boost::asio::any_io_executor executor_;
  FlushObserver observer_;
  // Each file's size at its last sync (flusher thread only), for `flushed`.
  std::map<std::pair<dev_t, ino_t>, off_t> synced_sizes_;
  BatchQueue<Request> queue_;
  mutable std::mutex mutex_;  // guards syncs_
  uint64_t syncs_ = 0;
  std::thread thread_;
};

}  // namespace sluice::broker
