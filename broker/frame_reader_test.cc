#include "broker/frame_reader.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace sluice::broker {
namespace {

std::string frame(const std::string& body) {
  const auto n = static_cast<uint32_t>(body.size());
  return std::string{static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
                     static_cast<char>(n)} +
         body;
}

// Feeds `stream` in chunks of the given sizes (cycled), as reads would
// deliver it, and returns the frames, in order, until a bad size.
std::vector<std::string> read_all(FrameReader& reader, const std::string& stream, std::vector<size_t> chunks,
                                  bool* bad_size = nullptr) {
  std::vector<std::string> frames;
  size_t at = 0, chunk = 0;
  for (;;) {
    std::span<char> f;
    auto status = reader.next(f);
    if (status == FrameReader::Status::kFrame) {
      frames.emplace_back(f.data(), f.size());
      reader.consume();
      continue;
    }
    if (status == FrameReader::Status::kBadSize) {
      if (bad_size) *bad_size = true;
      return frames;
    }
    if (at == stream.size()) return frames;
    std::span<char> room = reader.space();
    EXPECT_GE(room.size(), 1u);
    const size_t n = std::min({room.size(), stream.size() - at, chunks[chunk++ % chunks.size()]});
    std::copy_n(stream.data() + at, n, room.data());
    reader.produced(n);
    at += n;
  }
}

TEST(FrameReaderTest, SplitsFramesHoweverTheBytesArrive) {
  std::string stream;
  std::vector<std::string> want;
  for (size_t size : {0u, 1u, 5u, 100u, 20000u, 70000u, 3u}) {
    want.push_back(std::string(size, static_cast<char>('a' + size % 26)));
    stream += frame(want.back());
  }
  for (std::vector<size_t> chunks : {std::vector<size_t>{1}, {3}, {4096}, {1 << 20}, {7, 1, 13000}}) {
    FrameReader reader(1 << 20);
    EXPECT_EQ(read_all(reader, stream, chunks), want);
    EXPECT_EQ(reader.buffered(), 0u);
  }
}

TEST(FrameReaderTest, RefusesSizesOutsideTheRange) {
  for (int32_t size : {-1, INT32_MIN, 1001}) {
    FrameReader reader(1000);
    bool bad = false;
    std::string s = frame("ok") + frame("x");
    s += std::string{static_cast<char>(static_cast<uint32_t>(size) >> 24), static_cast<char>(size >> 16),
                     static_cast<char>(size >> 8), static_cast<char>(size)};
    EXPECT_EQ(read_all(reader, s, {2}, &bad), (std::vector<std::string>{"ok", "x"}));
    EXPECT_TRUE(bad);
    EXPECT_EQ(reader.claimed_size(), size);
  }
}

// A claimed size costs nothing until its bytes arrive: the buffer is at most
// twice what was read (or 16 KiB).
TEST(FrameReaderTest, GrowsAsBytesArriveNotAsClaimed) {
  FrameReader reader(100 << 20);
  std::string claim = frame(std::string(1 << 20, 'x')).substr(0, 8);  // claims 1 MiB, sends 4 bytes of it
  read_all(reader, claim, {8});
  EXPECT_LE(reader.capacity(), FrameReader::kMinBufferBytes);
  std::mt19937 random(7);
  size_t fed = claim.size();
  while (fed < 600'000) {
    std::span<char> room = reader.space();
    const size_t n = std::min<size_t>(room.size(), 1 + random() % 50'000);
    reader.produced(n);
    fed += n;
    EXPECT_LE(reader.capacity(), std::max(FrameReader::kMinBufferBytes, 2 * (fed - n)) + 1) << fed;
  }
}

TEST(FrameReaderTest, GivesBackALargeBufferOnceIdle) {
  FrameReader reader(8 << 20);
  EXPECT_EQ(read_all(reader, frame(std::string(3 << 20, 'y')), {1 << 20}).size(), 1u);
  EXPECT_EQ(reader.capacity(), 0u);
}

}  // namespace
}  // namespace sluice::broker
