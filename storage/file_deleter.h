// Unlinks files on a background thread. Freeing a large segment file can take
// the file system a while; retention hands the files here so that produce and
// fetch never wait for it.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

namespace sluice::storage {

class FileDeleter {
 public:
  FileDeleter();
  // Deletes what is still queued, then stops.
  ~FileDeleter();
  FileDeleter(const FileDeleter&) = delete;
  FileDeleter& operator=(const FileDeleter&) = delete;

  void remove(std::vector<std::filesystem::path> paths);
  uint64_t removed() const;

 private:
  void run();

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<std::filesystem::path> queue_;
  bool stopping_ = false;
  uint64_t removed_ = 0;
  std::thread thread_;
};

}  // namespace sluice::storage
