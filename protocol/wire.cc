#include "protocol/wire.h"

#include <cstring>
#include <limits>

namespace sluice::protocol {

bool Uuid::is_zero() const {
  for (uint8_t b : bytes)
    if (b != 0) return false;
  return true;
}

// ---------------------------------------------------------------- UTF-8

namespace {

bool is_continuation(uint8_t b) { return (b & 0xC0) == 0x80; }

// How many bytes of a malformed three- or four-byte sequence starting at `p`
// the JDK's decoder replaces with one U+FFFD (its malformed3 / malformed4).
size_t java_malformed3_length(const uint8_t* p) {
  return ((p[0] == 0xE0 && (p[1] & 0xE0) == 0x80) || !is_continuation(p[1])) ? 1 : 2;
}
size_t java_malformed4_length(const uint8_t* p) {
  if (p[0] > 0xF4 || (p[0] == 0xF0 && (p[1] < 0x90 || p[1] > 0xBF)) || (p[0] == 0xF4 && (p[1] & 0xF0) != 0x80) ||
      !is_continuation(p[1]))
    return 1;
  return is_continuation(p[2]) ? 3 : 2;
}

}  // namespace

std::string decode_utf8_as_java(std::string_view text) {
  const auto* in = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n && in[i] < 0x80) ++i;  // nearly every request string is ASCII
  if (i == n) return std::string(text);
  constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
  std::string out(text.substr(0, i));
  auto keep = [&](size_t from, size_t count) { out.append(text.data() + from, count); };
  while (i < n) {
    const size_t start = i;
    const uint8_t b1 = in[i++];
    if (b1 < 0x80) {
      keep(start, 1);
    } else if (b1 >= 0xC2 && b1 <= 0xDF) {  // two bytes
      if (i == n) {
        out += kReplacement;
        break;
      }
      if (is_continuation(in[i])) {
        keep(start, 2);
        ++i;
      } else {
        out += kReplacement;  // the next byte is read again
      }
    } else if ((b1 & 0xF0) == 0xE0) {  // three bytes
      if (i + 1 < n) {
        const uint8_t b2 = in[i], b3 = in[i + 1];
        if ((b1 == 0xE0 && (b2 & 0xE0) == 0x80) || !is_continuation(b2) || !is_continuation(b3)) {
          out += kReplacement;
          i = start + java_malformed3_length(in + start);
        } else {
          const uint32_t c = ((b1 & 0x0Fu) << 12) | ((b2 & 0x3Fu) << 6) | (b3 & 0x3Fu);
          if (c >= 0xD800 && c <= 0xDFFF)
            out += kReplacement;  // a surrogate: one replacement for all three bytes
          else
            keep(start, 3);
          i = start + 3;
        }
      } else {
        out += kReplacement;
        if (i < n && ((b1 == 0xE0 && (in[i] & 0xE0) == 0x80) || !is_continuation(in[i]))) continue;
        break;
      }
    } else if ((b1 & 0xF8) == 0xF0) {  // four bytes
      if (i + 2 < n) {
        const uint8_t b2 = in[i], b3 = in[i + 1], b4 = in[i + 2];
        const uint32_t c =
            ((b1 & 0x07u) << 18) | ((b2 & 0x3Fu) << 12) | ((b3 & 0x3Fu) << 6) | (b4 & 0x3Fu);
        if (!is_continuation(b2) || !is_continuation(b3) || !is_continuation(b4) || c < 0x10000 || c > 0x10FFFF) {
          out += kReplacement;
          i = start + java_malformed4_length(in + start);
        } else {
          keep(start, 4);
          i = start + 4;
        }
      } else {
        out += kReplacement;
        if (b1 > 0xF4 || (i < n && ((b1 == 0xF0 && (in[i] < 0x90 || in[i] > 0xBF)) ||
                                    (b1 == 0xF4 && (in[i] & 0xF0) != 0x80) || !is_continuation(in[i]))))
          continue;
        ++i;
        if (i < n && !is_continuation(in[i])) continue;
        break;
      }
    } else {
      out += kReplacement;  // C0, C1, a stray continuation byte, F8..FF
    }
  }
  return out;
}

// ---------------------------------------------------------------- Reader

void Reader::throw_short(size_t n) const {
  throw DecodeError("truncated input: need " + std::to_string(n) + " bytes at offset " +
                    std::to_string(pos_) + ", " + std::to_string(remaining()) + " left");
}

void Reader::check_count(int64_t count, size_t min_element_size) const {
  if (count < -1) throw DecodeError("negative array length " + std::to_string(count));
  if (count <= 0) return;
  const uint64_t per = min_element_size == 0 ? 1 : min_element_size;
  // count <= INT32_MAX and per is small, so no overflow in 64 bits for any
  // realistic element size; guard anyway.
  if (per > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(count) ||
      static_cast<uint64_t>(count) * per > remaining())
    throw DecodeError("array length " + std::to_string(count) + " exceeds remaining " +
                      std::to_string(remaining()) + " bytes");
}

double Reader::read_float64() {
  uint64_t bits = read_be<uint64_t>();
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

Uuid Reader::read_uuid() {
  Uuid u;
  std::memcpy(u.bytes.data(), take(16), 16);
  return u;
}

uint32_t Reader::read_uvarint() {
  uint32_t v = 0;
  for (int i = 0; i < 5; ++i) {
    auto b = static_cast<uint8_t>(take(1)[0]);
    if (i == 4 && (b & 0xf0) != 0) throw DecodeError("uvarint overflows 32 bits");
    v |= static_cast<uint32_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) return v;
  }
  throw DecodeError("uvarint longer than 5 bytes");
}

uint64_t Reader::read_uvarlong() {
  uint64_t v = 0;
  for (int i = 0; i < 10; ++i) {
    auto b = static_cast<uint8_t>(take(1)[0]);
    if (i == 9 && (b & 0xfe) != 0) throw DecodeError("uvarlong overflows 64 bits");
    v |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) return v;
  }
  throw DecodeError("uvarlong longer than 10 bytes");
}

int32_t Reader::read_varint() {
  uint32_t u = read_uvarint();
  return static_cast<int32_t>((u >> 1) ^ (~(u & 1) + 1));
}

int64_t Reader::read_varlong() {
  uint64_t u = read_uvarlong();
  return static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
}

std::optional<std::string> Reader::read_nullable_string() {
  int16_t n = read_int16();
  if (n == -1) return std::nullopt;
  if (n < 0) throw DecodeError("negative string length " + std::to_string(n));
  return decode_utf8_as_java(read_raw(static_cast<size_t>(n)));
}

std::string Reader::read_string() {
  int16_t n = read_int16();
  if (n < 0) throw DecodeError("invalid non-nullable string length " + std::to_string(n));
  return decode_utf8_as_java(read_raw(static_cast<size_t>(n)));
}

std::optional<std::string> Reader::read_compact_nullable_string() {
  uint32_t n = read_uvarint();
  if (n == 0) return std::nullopt;
  if (n - 1 > 0x7fff) throw DecodeError("compact string too long");
  return decode_utf8_as_java(read_raw(n - 1));
}

std::string Reader::read_compact_string() {
  uint32_t n = read_uvarint();
  if (n == 0) throw DecodeError("null compact string in non-nullable field");
  if (n - 1 > 0x7fff) throw DecodeError("compact string too long");
  return decode_utf8_as_java(read_raw(n - 1));
}

std::optional<std::string_view> Reader::read_nullable_bytes() {
  int32_t n = read_int32();
  if (n == -1) return std::nullopt;
  if (n < 0) throw DecodeError("negative bytes length " + std::to_string(n));
  return read_raw(static_cast<size_t>(n));
}

std::optional<std::string_view> Reader::read_compact_nullable_bytes() {
  uint32_t n = read_uvarint();
  if (n == 0) return std::nullopt;
  return read_raw(n - 1);
}

std::string_view Reader::read_bytes() {
  auto b = read_nullable_bytes();
  if (!b) throw DecodeError("null bytes in non-nullable field");
  return *b;
}

std::string_view Reader::read_compact_bytes() {
  auto b = read_compact_nullable_bytes();
  if (!b) throw DecodeError("null compact bytes in non-nullable field");
  return *b;
}

int32_t Reader::read_array_length(size_t min_element_size) {
  int32_t n = read_int32();
  check_count(n, min_element_size);
  return n;
}

int32_t Reader::read_compact_array_length(size_t min_element_size) {
  uint32_t n = read_uvarint();
  if (n > static_cast<uint32_t>(std::numeric_limits<int32_t>::max()))
    throw DecodeError("compact array length too large");
  int32_t count = static_cast<int32_t>(n) - 1;
  check_count(count, min_element_size);
  return count;
}

void Reader::skip_tagged_fields() {
  uint32_t count = read_uvarint();
  // Each tagged field needs at least 2 bytes (tag and size).
  if (static_cast<uint64_t>(count) * 2 > remaining())
    throw DecodeError("tagged field count exceeds remaining bytes");
  int64_t prev = -1;
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t tag = read_uvarint();
    if (static_cast<int64_t>(tag) <= prev) throw DecodeError("tagged fields not strictly ascending");
    prev = tag;
    uint32_t size = read_uvarint();
    skip(size);
  }
}

// ---------------------------------------------------------------- Writer

void Writer::write_float64(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  write_be(bits);
}

void Writer::write_uvarint(uint32_t v) {
  while (v >= 0x80) {
    buf_.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  buf_.push_back(static_cast<char>(v));
}

void Writer::write_uvarlong(uint64_t v) {
  while (v >= 0x80) {
    buf_.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  buf_.push_back(static_cast<char>(v));
}

void Writer::write_varint(int32_t v) {
  uint32_t u = (static_cast<uint32_t>(v) << 1) ^ static_cast<uint32_t>(v >> 31);
  write_uvarint(u);
}

void Writer::write_varlong(int64_t v) {
  uint64_t u = (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
  write_uvarlong(u);
}

// Kafka strings are at most 32767 bytes (classic and compact). Longer input is
// truncated rather than producing a corrupt frame or throwing mid-response.
constexpr size_t kMaxStringLength = 0x7fff;

void Writer::write_string(std::string_view s) {
  if (s.size() > kMaxStringLength) s = s.substr(0, kMaxStringLength);
  write_int16(static_cast<int16_t>(s.size()));
  write_raw(s);
}

void Writer::write_nullable_string(const std::optional<std::string>& s) {
  if (!s) {
    write_int16(-1);
    return;
  }
  write_string(*s);
}

void Writer::write_compact_string(std::string_view s) {
  if (s.size() > kMaxStringLength) s = s.substr(0, kMaxStringLength);
  write_uvarint(static_cast<uint32_t>(s.size() + 1));
  write_raw(s);
}

void Writer::write_compact_nullable_string(const std::optional<std::string>& s) {
  if (!s) {
    write_uvarint(0);
    return;
  }
  write_compact_string(*s);
}

void Writer::write_bytes(std::string_view b) {
  write_int32(static_cast<int32_t>(b.size()));
  write_raw(b);
}

void Writer::write_compact_bytes(std::string_view b) {
  write_uvarint(static_cast<uint32_t>(b.size() + 1));
  write_raw(b);
}

void Writer::write_nullable_bytes(std::optional<std::string_view> b) {
  if (!b) {
    write_int32(-1);
    return;
  }
  write_bytes(*b);
}

void Writer::write_compact_nullable_bytes(std::optional<std::string_view> b) {
  if (!b) {
    write_uvarint(0);
    return;
  }
  write_compact_bytes(*b);
}

void Writer::append_records_body(const Records& r) {
  if (r.in_memory()) {
    if (r.owner() && !r.bytes().empty()) {
      splices_.push_back({buf_.size(), {}, r.bytes(), r.owner()});
      spliced_bytes_ += r.bytes().size();
    } else {
      write_raw(r.bytes());
    }
    return;
  }
  for (const auto& region : r.regions()) {
    splices_.push_back({buf_.size(), region, {}, nullptr});
    spliced_bytes_ += region.length;
  }
}

void Writer::write_records(const Records& r) {
  write_int32(static_cast<int32_t>(r.size()));
  append_records_body(r);
}

void Writer::write_compact_records(const Records& r) {
  write_uvarint(static_cast<uint32_t>(r.size() + 1));
  append_records_body(r);
}

void Writer::write_nullable_records(const std::optional<Records>& r) {
  if (!r) {
    write_int32(-1);
    return;
  }
  write_records(*r);
}

void Writer::write_compact_nullable_records(const std::optional<Records>& r) {
  if (!r) {
    write_uvarint(0);
    return;
  }
  write_compact_records(*r);
}

void Writer::patch_int32(size_t at, int32_t v) {
  auto u = static_cast<uint32_t>(v);
  for (int i = 0; i < 4; ++i) buf_[at + i] = static_cast<char>((u >> (8 * (3 - i))) & 0xff);
}

}  // namespace sluice::protocol
