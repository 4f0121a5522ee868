#include "broker/flusher.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <chrono>
#include <set>

namespace sluice::broker {

Flusher::Flusher(boost::asio::any_io_executor executor, FlushObserver observer)
    : executor_(std::move(executor)), observer_(std::move(observer)), thread_([this] { run(); }) {}

Flusher::~Flusher() {
  queue_.stop();
  thread_.join();
}

void Flusher::flush(const storage::SyncList& sync, std::function<void(bool)> done) {
  Request request;
  request.dirs = sync.dirs;
  request.errors = sync.errors;
  for (int fd : sync.fds) {
    int copy = ::dup(fd);
    if (copy >= 0)
      request.fds.push_back(copy);
    else
      request.failed = true;  // out of descriptors: the file cannot be synced, so neither can the request
  }
  request.done = std::move(done);
  queue_.push(std::move(request));
}

void Flusher::run(std::function<bool()> job, std::function<void(bool)> done) {
  Request request;
  request.job = std::move(job);
  request.done = std::move(done);
  queue_.push(std::move(request));
}

void Flusher::run_after_syncs(std::function<bool()> job, std::function<void(bool)> done) {
  Request request;
  request.job = std::move(job);
  request.done = std::move(done);
  request.after_syncs = true;
  queue_.push(std::move(request));
}

uint64_t Flusher::syncs() const {
  std::lock_guard lock(mutex_);
  return syncs_;
}

void Flusher::run() {
  const auto observe = [this](std::chrono::steady_clock::time_point started) {
    if (observer_.synced)
      observer_.synced(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  };
  // How much a file just synced grew since its previous sync. Files deleted
  // since are forgotten when seen; the map stays bounded whatever happens.
  constexpr size_t kMaxTrackedFiles = 1 << 16;
  const auto note_flushed = [this](const struct stat& st) {
    if (!observer_.flushed) return;
    if (synced_sizes_.size() >= kMaxTrackedFiles) synced_sizes_.clear();
    const auto key = std::make_pair(st.st_dev, st.st_ino);
    auto [it, fresh] = synced_sizes_.try_emplace(key, 0);
    if (st.st_size > it->second) observer_.flushed(static_cast<uint64_t>(st.st_size - it->second));
    it->second = st.st_size;
    if (st.st_nlink == 0) synced_sizes_.erase(it);
  };
  for (;;) {
    std::vector<Request> batch = queue_.take();
    if (batch.empty()) return;  // stopped
    // Jobs first, in order: what they write must be durable before the syncs below complete.
    const auto run_job = [](Request& request) {
      try {
        request.failed = !request.job();
      } catch (const std::exception&) {
        request.failed = true;
      }
      request.job = nullptr;  // what it captured goes now, on this thread
      request.only_job = request.fds.empty() && request.dirs.empty();
    };
    for (auto& request : batch)
      if (request.job && !request.after_syncs) run_job(request);
    // One fdatasync per distinct file, however many requests wait on it.
    std::set<std::pair<dev_t, ino_t>> synced;
    std::set<std::string> synced_dirs;
    bool ok = true;
    uint64_t syncs = 0;
    for (auto& request : batch) {
      for (int fd : request.fds) {
        struct stat st {};
        if (::fstat(fd, &st) != 0) {
          ok = false;  // not synced: whoever waits on it must not be told it was
        } else if (synced.insert({st.st_dev, st.st_ino}).second) {
          const auto started = std::chrono::steady_clock::now();
          if (::fdatasync(fd) != 0) {
            ok = false;
          } else {
            note_flushed(st);
          }
          observe(started);
          ++syncs;
        }
        ::close(fd);
      }
      // A directory where a segment file was created or removed: fsync, its entries are what matter.
      for (const auto& dir : request.dirs) {
        if (!synced_dirs.insert(dir.native()).second) continue;
        const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        const auto started = std::chrono::steady_clock::now();
        if (fd < 0 || ::fsync(fd) != 0) ok = false;
        if (fd >= 0) observe(started);
        if (fd >= 0) ::close(fd);
        ++syncs;
      }
    }
    {
      std::lock_guard lock(mutex_);
      syncs_ += syncs;
    }
    const auto answer = [this, ok](Request& request) {
      // A file whose naming failed (its data would not be found by the next start) fails its flush.
      for (const auto& error : request.errors) request.failed = request.failed || error->load() != 0;
      request.errors.clear();
      boost::asio::post(executor_, [done = std::move(request.done), ok = (ok || request.only_job) && !request.failed] {
        if (done) done(ok);
      });
    };
    for (auto& request : batch)
      if (!request.after_syncs) answer(request);
    // Then the work nothing waits for, in order.
    for (auto& request : batch)
      if (request.after_syncs) {
        run_job(request);
        answer(request);
      }
    queue_.finished();
  }
}

}  // namespace sluice::broker
