#include "storage/file_deleter.h"

namespace sluice::storage {

FileDeleter::FileDeleter() : thread_([this] { run(); }) {}

FileDeleter::~FileDeleter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void FileDeleter::remove(std::vector<std::filesystem::path> paths) {
  if (paths.empty()) return;
  {
    std::lock_guard lock(mutex_);
    queue_.insert(queue_.end(), std::make_move_iterator(paths.begin()), std::make_move_iterator(paths.end()));
  }
  wake_.notify_one();
}

uint64_t FileDeleter::removed() const {
  std::lock_guard lock(mutex_);
  return removed_;
}

void FileDeleter::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and nothing left
    std::vector<std::filesystem::path> batch;
    batch.swap(queue_);
    lock.unlock();
    for (const auto& path : batch) {
      std::error_code ignored;  // already gone is fine; start-up sweeps *.deleted leftovers anyway
      std::filesystem::remove_all(path, ignored);  // a file, or a partition's whole directory
    }
    lock.lock();
    removed_ += batch.size();
  }
}

}  // namespace sluice::storage
