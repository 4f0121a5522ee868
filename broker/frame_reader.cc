#include "broker/frame_reader.h"

#include <algorithm>
#include <cstring>

namespace sluice::broker {

FrameReader::Status FrameReader::next(std::span<char>& frame) {
  const size_t have = end_ - begin_;
  if (have < 4) {
    needed_ = 4;
    return Status::kNeedMore;
  }
  const auto* p = reinterpret_cast<const uint8_t*>(data_.data() + begin_);
  claimed_size_ = static_cast<int32_t>((uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3]);
  if (claimed_size_ < 0 || claimed_size_ > max_frame_bytes_) return Status::kBadSize;
  const size_t total = 4 + static_cast<size_t>(claimed_size_);
  if (have < total) {
    needed_ = total;
    return Status::kNeedMore;
  }
  frame_bytes_ = total;
  frame = std::span<char>(data_.data() + begin_ + 4, static_cast<size_t>(claimed_size_));
  return Status::kFrame;
}

std::span<char> FrameReader::space() {
  const size_t have = end_ - begin_;
  // Room for what next() wants, but never more than twice what has arrived.
  const size_t want = std::max(have + 1, std::min(needed_, std::max(kMinBufferBytes, 2 * have)));
  if (data_.size() - begin_ < want) {
    if (begin_ > 0) {  // make room at the front
      std::memmove(data_.data(), data_.data() + begin_, have);
      end_ = have;
      begin_ = 0;
    }
    if (data_.size() < want) data_.resize(want);
  }
  return std::span<char>(data_.data() + end_, data_.size() - end_);
}

void FrameReader::consume() {
  begin_ += frame_bytes_;
  frame_bytes_ = 0;
  needed_ = 4;
  if (begin_ == end_) {
    begin_ = end_ = 0;
    // Give back what one large request needed, so idle connections stay small.
    if (data_.size() > kRetainedBufferBytes) data_ = std::string();
  }
}

}  // namespace sluice::broker
