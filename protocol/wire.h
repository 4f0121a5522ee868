// Kafka wire-format primitives: a bounds-checked, non-owning Reader and an
// appending Writer. Fixed-width integers are big-endian. Every length read from
// the wire is checked against the bytes left BEFORE anything is allocated.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/records.h"

namespace sluice::protocol {

struct DecodeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Uuid {
  std::array<uint8_t, 16> bytes{};
  bool operator==(const Uuid&) const = default;
  bool is_zero() const;
};

// A request string as Kafka reads it (Java's new String(bytes, UTF_8)), back
// in UTF-8: valid UTF-8 is unchanged, and each malformed sequence, as the
// JDK's decoder delimits it, becomes U+FFFD. Responses that echo a request's
// strings are then always valid UTF-8, and byte for byte what Kafka answers.
std::string decode_utf8_as_java(std::string_view text);

class Reader {
 public:
  explicit Reader(std::string_view buf) : buf_(buf) {}

  size_t remaining() const { return buf_.size() - pos_; }
  size_t position() const { return pos_; }

  int8_t read_int8() { return static_cast<int8_t>(take(1)[0]); }
  int16_t read_int16() { return static_cast<int16_t>(read_be<uint16_t>()); }
  int32_t read_int32() { return static_cast<int32_t>(read_be<uint32_t>()); }
  int64_t read_int64() { return static_cast<int64_t>(read_be<uint64_t>()); }
  uint16_t read_uint16() { return read_be<uint16_t>(); }
  uint32_t read_uint32() { return read_be<uint32_t>(); }
  double read_float64();
  bool read_bool() { return take(1)[0] != 0; }
  Uuid read_uuid();

  // Unsigned LEB128 varints; varint/varlong are zig-zag encoded. Over-long
  // encodings (more than 5 bytes for 32-bit, 10 for 64-bit) are rejected.
  uint32_t read_uvarint();
  int32_t read_varint();
  int64_t read_varlong();
  uint64_t read_uvarlong();

  std::string_view read_raw(size_t n) { return std::string_view(take(n), n); }
  void skip(size_t n) { take(n); }

  // Strings: classic = int16 length (-1 = null); compact = uvarint N+1 (0 = null).
  // The non-nullable forms throw DecodeError on a null.
  std::string read_string();
  std::optional<std::string> read_nullable_string();
  std::string read_compact_string();
  std::optional<std::string> read_compact_nullable_string();

  // Bytes: classic = int32 length (-1 = null); compact = uvarint N+1 (0 = null).
  // Returned as views into the buffer.
  std::optional<std::string_view> read_nullable_bytes();
  std::optional<std::string_view> read_compact_nullable_bytes();
  // Non-nullable forms (throw DecodeError on null).
  std::string_view read_bytes();
  std::string_view read_compact_bytes();

  // Array lengths: -1 means null. Throws DecodeError when the count is < -1 or
  // when count * max(min_element_size, 1) exceeds the bytes remaining.
  int32_t read_array_length(size_t min_element_size);
  int32_t read_compact_array_length(size_t min_element_size);

  // Skips a tagged-field section without interpreting it (validating counts,
  // sizes and strictly ascending tags).
  void skip_tagged_fields();

 private:
  const char* take(size_t n) {
    if (n > remaining()) throw_short(n);
    const char* p = buf_.data() + pos_;
    pos_ += n;
    return p;
  }
  template <typename T>
  T read_be() {
    const auto* p = reinterpret_cast<const unsigned char*>(take(sizeof(T)));
    T v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) v = static_cast<T>((v << 8) | p[i]);
    return v;
  }
  [[noreturn]] void throw_short(size_t n) const;
  void check_count(int64_t count, size_t min_element_size) const;

  std::string_view buf_;
  size_t pos_ = 0;
};

class Writer {
 public:
  // Bytes sent in place of nothing: the encoding is buffer() with each
  // splice's bytes inserted at its position `at`, in order. They are a file
  // region (sendfile), or, when `memory` is not empty, bytes in memory that
  // `owner` keeps alive (records given with an owner: Records::owned).
  struct Splice {
    size_t at;
    FileRegion region;
    std::string_view memory;
    std::shared_ptr<const void> owner;

    bool in_memory() const { return !memory.empty(); }
    size_t length() const { return in_memory() ? memory.size() : region.length; }
  };

  std::string& buffer() { return buf_; }
  const std::string& buffer() const { return buf_; }
  // Encoded size, spliced file regions included.
  size_t size() const { return buf_.size() + spliced_bytes_; }
  const std::vector<Splice>& splices() const { return splices_; }
  // Empties the writer (keeping the buffer's capacity).
  void clear() {
    buf_.clear();
    splices_.clear();
    spliced_bytes_ = 0;
  }

  void write_int8(int8_t v) { buf_.push_back(static_cast<char>(v)); }
  void write_int16(int16_t v) { write_be(static_cast<uint16_t>(v)); }
  void write_int32(int32_t v) { write_be(static_cast<uint32_t>(v)); }
  void write_int64(int64_t v) { write_be(static_cast<uint64_t>(v)); }
  void write_uint16(uint16_t v) { write_be(v); }
  void write_uint32(uint32_t v) { write_be(v); }
  void write_float64(double v);
  void write_bool(bool v) { buf_.push_back(v ? 1 : 0); }
  void write_uuid(const Uuid& u) {
    buf_.append(reinterpret_cast<const char*>(u.bytes.data()), u.bytes.size());
  }

  void write_uvarint(uint32_t v);
  void write_varint(int32_t v);
  void write_varlong(int64_t v);
  void write_uvarlong(uint64_t v);

  void write_raw(std::string_view s) { buf_.append(s.data(), s.size()); }

  // Strings longer than 32767 bytes (Kafka's limit) are truncated to 32767.
  void write_string(std::string_view s);
  void write_nullable_string(const std::optional<std::string>& s);
  void write_compact_string(std::string_view s);
  void write_compact_nullable_string(const std::optional<std::string>& s);

  void write_nullable_bytes(std::optional<std::string_view> b);
  void write_compact_nullable_bytes(std::optional<std::string_view> b);
  void write_bytes(std::string_view b);
  void write_compact_bytes(std::string_view b);

  // Records: like bytes, but file regions are spliced in rather than copied.
  void write_records(const Records& r);
  void write_compact_records(const Records& r);
  void write_nullable_records(const std::optional<Records>& r);
  void write_compact_nullable_records(const std::optional<Records>& r);

  // Array length helpers: classic int32 (-1 null) / compact uvarint N+1 (0 null).
  void write_array_length(int32_t n) { write_int32(n); }
  void write_compact_array_length(int32_t n) {
    write_uvarint(static_cast<uint32_t>(n + 1));
  }

  // Reserve an int32 (e.g. a size prefix) and fill it in later.
  size_t reserve_int32() {
    size_t at = buf_.size();
    buf_.append(4, '\0');
    return at;
  }
  void patch_int32(size_t at, int32_t v);

 private:
  template <typename T>
  void write_be(T v) {
    char b[sizeof(T)];
    for (size_t i = 0; i < sizeof(T); ++i)
      b[i] = static_cast<char>((v >> (8 * (sizeof(T) - 1 - i))) & 0xff);
    buf_.append(b, sizeof(T));
  }

  void append_records_body(const Records& r);

  std::string buf_;
  std::vector<Splice> splices_;
  size_t spliced_bytes_ = 0;
};

}  // namespace sluice::protocol
