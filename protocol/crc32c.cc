#include "protocol/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace sluice::protocol {
namespace {

constexpr uint32_t kPolynomial = 0x82F63B78;  // reflected Castagnoli polynomial

constexpr std::array<uint32_t, 256> make_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPolynomial : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr auto kTable = make_table();

uint32_t extend_portable(uint32_t crc, const uint8_t* p, size_t n) {
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = kTable[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

#if defined(__x86_64__)
// SSE4.2 has a CRC-32C instruction: about 20x faster than the table, and produce
// validation runs it over every byte a client sends. One instruction depends on
// the previous one's result (3 cycles), so long inputs run three independent
// lanes side by side and join them: the CRC register is linear, and moving a
// lane's register past the next lane's bytes is a fixed 32x32 bit matrix
// (kLaneShift), the register that n zero bytes would turn it into.
constexpr size_t kLaneBytes = 4096;

__attribute__((target("sse4.2"))) uint64_t run_sse42(uint64_t c, const uint8_t* p, size_t n) {
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    c = _mm_crc32_u64(c, word);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n--) c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}

struct LaneShift {
  uint32_t table[4][256];
  uint32_t operator()(uint32_t c) const {
    return table[0][c & 0xFF] ^ table[1][(c >> 8) & 0xFF] ^ table[2][(c >> 16) & 0xFF] ^ table[3][c >> 24];
  }
};

LaneShift make_lane_shift() {
  static const uint8_t zeros[kLaneBytes] = {};
  uint32_t basis[32];
  for (int bit = 0; bit < 32; ++bit) basis[bit] = static_cast<uint32_t>(run_sse42(uint32_t{1} << bit, zeros, kLaneBytes));
  LaneShift shift{};
  for (int byte = 0; byte < 4; ++byte)
    for (uint32_t v = 0; v < 256; ++v)
      for (int bit = 0; bit < 8; ++bit)
        if (v & (1u << bit)) shift.table[byte][v] ^= basis[8 * byte + bit];
  return shift;
}

__attribute__((target("sse4.2"))) uint32_t extend_sse42(uint32_t crc, const uint8_t* p, size_t n) {
  static const LaneShift kLaneShift = make_lane_shift();
  uint64_t c = ~crc;
  while (n >= 3 * kLaneBytes) {
    uint64_t a = c, b = 0, d = 0;
    for (size_t i = 0; i < kLaneBytes; i += 8) {
      uint64_t wa, wb, wd;
      std::memcpy(&wa, p + i, 8);
      std::memcpy(&wb, p + kLaneBytes + i, 8);
      std::memcpy(&wd, p + 2 * kLaneBytes + i, 8);
      a = _mm_crc32_u64(a, wa);
      b = _mm_crc32_u64(b, wb);
      d = _mm_crc32_u64(d, wd);
    }
    c = kLaneShift(kLaneShift(static_cast<uint32_t>(a)) ^ static_cast<uint32_t>(b)) ^ static_cast<uint32_t>(d);
    p += 3 * kLaneBytes;
    n -= 3 * kLaneBytes;
  }
  return ~static_cast<uint32_t>(run_sse42(c, p, n));
}
#endif

using ExtendFn = uint32_t (*)(uint32_t, const uint8_t*, size_t);

ExtendFn pick_implementation() {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("sse4.2")) return extend_sse42;
#endif
  return extend_portable;
}

const ExtendFn kExtend = pick_implementation();

}  // namespace

uint32_t crc32c_extend(uint32_t crc, std::string_view data) {
  return kExtend(crc, reinterpret_cast<const uint8_t*>(data.data()), data.size());
}

}  // namespace sluice::protocol
