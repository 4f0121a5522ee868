// The value of a Kafka `records` field. A request's records are bytes in the
// request frame. A fetch response's records are usually regions of log segment
// files: the connection hands those to the kernel (sendfile) instead of reading
// them into memory and copying them into the response. Bytes in memory that
// come with an owner (the federation endpoint's view into a member's answer)
// are not copied into the response either: the connection sends them from
// where they are (writev), and the owner keeps them alive until then.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::protocol {

// `length` bytes of the open file `fd` from `offset` on. `owner` keeps the file
// open until the region has been sent, even if its segment is deleted meanwhile.
struct FileRegion {
  std::shared_ptr<const void> owner;
  int fd = -1;
  uint64_t offset = 0;
  uint32_t length = 0;

  // The same bytes of the same open file (who keeps it open does not matter).
  bool operator==(const FileRegion& o) const { return fd == o.fd && offset == o.offset && length == o.length; }
};

class Records {
 public:
  Records() = default;
  // Implicit, so that decoding (and code that has the bytes) can assign a view.
  Records(std::string_view bytes) : bytes_(bytes) {}  // NOLINT(google-explicit-constructor)
  explicit Records(std::vector<FileRegion> regions) : regions_(std::move(regions)) {
    for (const auto& r : regions_) file_bytes_ += r.length;
  }
  // Bytes in memory that `owner` keeps alive: encoded by reference (Writer's splices).
  static Records owned(std::string_view bytes, std::shared_ptr<const void> owner) {
    Records r(bytes);
    r.owner_ = std::move(owner);
    return r;
  }

  bool in_memory() const { return regions_.empty(); }
  // The bytes, for records that are in memory (always the case after decoding).
  std::string_view bytes() const { return bytes_; }
  const std::vector<FileRegion>& regions() const { return regions_; }
  // What keeps in-memory bytes alive, for records made by owned(); else null.
  const std::shared_ptr<const void>& owner() const { return owner_; }
  size_t size() const { return in_memory() ? bytes_.size() : file_bytes_; }

  // Same content for bytes in memory; same regions for bytes in files.
  bool operator==(const Records& o) const { return bytes_ == o.bytes_ && regions_ == o.regions_; }

 private:
  std::string_view bytes_;
  std::vector<FileRegion> regions_;
  size_t file_bytes_ = 0;
  std::shared_ptr<const void> owner_;
};

}  // namespace sluice::protocol
