// libFuzzer target: the connection's framing, broker::FrameReader
// (broker/frame_reader.h), driven as broker/connection.cc drives it: next()
// until it needs more, then a read of some size into space(), produced(n);
// each frame is handled (written to: Produce stamps offsets in place) and
// consume()d; a bad size ends the connection.
//
// Input: one control byte, then chunks, each what one read returns.
//   control % 5      socket.request.max.bytes: 16, 1000, 70000, 3 MiB or 104857600
//   chunk            one length byte b, then:
//                      b < 0xF0   the next b+1 input bytes (fewer at the end)
//                      b >= 0xF0  (b - 0xEF) * 16 KiB copies of the next input byte
//                                 (at most 2 MiB of these per input), for large frames
// A read takes min(chunk, space().size()) bytes; the rest of the chunk is
// the next read.
//
// Checked against a model (the bytes read so far, cut into frames by the
// rule): every frame, bad size and "need more" is the model's; space() is
// never empty and the buffer grows only to max(what it had, 16 KiB, twice
// what is buffered), never to what a size only claims; a buffer grown past
// 1 MiB is given back once a consumed frame leaves nothing buffered.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "broker/frame_reader.h"

namespace {

using sluice::broker::FrameReader;

constexpr int64_t kMaxFrameBytes[] = {16, 1000, 70000, 3 << 20, 104857600};
constexpr size_t kFillerUnit = 16 << 10;
constexpr size_t kMaxFiller = 2 << 20;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "frame_reader_fuzzer: %s\n", what);
  std::abort();
}

// The bytes the peer sent, and where the model's next frame starts.
struct Model {
  std::string stream;
  size_t at = 0;

  bool has(size_t n) const { return stream.size() - at >= n; }
  int32_t size_at() const {
    const auto* p = reinterpret_cast<const uint8_t*>(stream.data() + at);
    return static_cast<int32_t>((uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3]);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int64_t max_frame = kMaxFrameBytes[data[0] % 5];
  FrameReader reader(max_frame);
  Model model;
  size_t in = 1, filler_total = 0;
  // The current chunk: bytes of the input, or `filler` copies of one byte.
  std::string_view pending;
  size_t filler = 0;
  char fill = 0;

  for (;;) {
    // Handle every frame that is complete, as the connection does.
    std::span<char> frame;
    FrameReader::Status status;
    while ((status = reader.next(frame)) == FrameReader::Status::kFrame) {
      if (!model.has(4)) fail("a frame before its size arrived");
      const int32_t n = model.size_at();
      if (n < 0 || n > max_frame || static_cast<size_t>(n) != frame.size()) fail("a frame of the wrong size");
      if (!model.has(4 + frame.size())) fail("a frame before its bytes arrived");
      if (std::memcmp(frame.data(), model.stream.data() + model.at + 4, frame.size()) != 0)
        fail("a frame with the wrong bytes");
      if (!frame.empty()) {  // the handler may write to it: its first and last bytes, at least
        frame.front() = static_cast<char>(~frame.front());
        frame.back() = static_cast<char>(~frame.back());
      }
      model.at += 4 + frame.size();
      reader.consume();
      if (reader.buffered() != model.stream.size() - model.at) fail("buffered() disagrees with the stream");
      if (reader.buffered() == 0 && reader.capacity() > FrameReader::kRetainedBufferBytes)
        fail("a buffer over 1 MiB is kept with nothing buffered");
    }
    if (status == FrameReader::Status::kBadSize) {
      if (!model.has(4)) fail("a bad size before the size arrived");
      const int32_t n = model.size_at();
      if (!(n < 0 || n > max_frame) || reader.claimed_size() != n) fail("a bad size that is not");
      return 0;  // the connection closes
    }
    // kNeedMore: the model must agree that the next frame is incomplete.
    if (model.has(4)) {
      const int32_t n = model.size_at();
      if (n < 0 || n > max_frame) fail("need more for a bad size");
      if (model.has(4 + static_cast<size_t>(n))) fail("need more with a whole frame buffered");
    }

    // One read.
    if (pending.empty() && filler == 0) {
      if (in >= size) return 0;  // the peer stops sending
      const uint8_t b = data[in++];
      if (b < 0xF0) {
        const size_t n = std::min<size_t>(b + 1, size - in);
        pending = std::string_view(reinterpret_cast<const char*>(data + in), n);
        in += n;
      } else {
        const size_t n = (b - 0xEF) * kFillerUnit;
        fill = in < size ? static_cast<char>(data[in++]) : '\0';
        if (filler_total + n > kMaxFiller) continue;  // spent: skip the chunk
        filler_total += n;
        filler = n;
      }
      if (pending.empty() && filler == 0) continue;
    }
    const size_t have = reader.buffered();
    const size_t capacity_before = reader.capacity();
    const std::span<char> room = reader.space();
    if (room.empty()) fail("space() is empty");
    const size_t limit = std::max({capacity_before, FrameReader::kMinBufferBytes, 2 * have, have + 1});
    if (reader.capacity() > limit) fail("the buffer grew past max(its size, 16 KiB, twice what is buffered)");
    size_t n;
    if (filler) {
      n = std::min(room.size(), filler);
      std::memset(room.data(), fill, n);
      model.stream.append(n, fill);
      filler -= n;
    } else {
      n = std::min(room.size(), pending.size());
      std::memcpy(room.data(), pending.data(), n);
      model.stream.append(pending.substr(0, n));
      pending.remove_prefix(n);
    }
    reader.produced(n);
    if (reader.buffered() != model.stream.size() - model.at) fail("buffered() disagrees with the stream");
  }
}
