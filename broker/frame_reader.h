// The request frames in a connection's byte stream: a four-byte big-endian
// size, then that many bytes. Holds what has been read and not yet handled,
// growing as bytes arrive (to twice what is buffered, at least 16 KiB) and
// never to a size the peer has only claimed: a thousand connections that each
// announce a 1 MiB request and send four bytes of it cost 16 KiB each. No
// sockets: the connection reads into space() and says how much it read, and
// the frame reader's fuzz target (fuzz/) drives it the same way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace sluice::broker {

class FrameReader {
 public:
  // Frames larger than `max_frame_bytes` (socket.request.max.bytes) are refused.
  explicit FrameReader(int64_t max_frame_bytes) : max_frame_bytes_(max_frame_bytes) {}

  enum class Status {
    kFrame,     // `frame` holds a complete request (writable: Produce stamps offsets in place)
    kNeedMore,  // read more into space()
    kBadSize,   // the size is negative or over the maximum: Kafka closes the connection
  };
  Status next(std::span<char>& frame);
  // The size a kBadSize frame claimed.
  int32_t claimed_size() const { return claimed_size_; }

  // Where the next read goes (at least one byte), and how much it read.
  std::span<char> space();
  void produced(size_t n) { end_ += n; }

  // The frame next() gave is handled: its bytes are dropped, and a buffer
  // grown past 1 MiB for it is given back once nothing else is buffered.
  void consume();

  size_t buffered() const { return end_ - begin_; }
  size_t capacity() const { return data_.size(); }

  static constexpr size_t kMinBufferBytes = 16 << 10;
  static constexpr size_t kRetainedBufferBytes = 1 << 20;

 private:
  const int64_t max_frame_bytes_;
  std::string data_;
  size_t begin_ = 0;           // the first byte not yet consumed
  size_t end_ = 0;             // the end of what has been read
  size_t needed_ = 4;          // bytes next() wants buffered from begin_
  size_t frame_bytes_ = 0;     // the size and body of the frame next() gave
  int32_t claimed_size_ = 0;
};

}  // namespace sluice::broker
