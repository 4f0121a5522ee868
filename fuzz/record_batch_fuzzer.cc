// libFuzzer target: the record batch checks of a Produce request,
// protocol::check_produced_records (protocol/record_batch.h), which opens
// batches of every codec.
//
// Input: one control byte, then the partition's `records` bytes.
//   control & 0x0F  Produce version: 3 + (control & 0x0F) % 7, so 3..9
//   control & 0x40  records are null (the bytes after the control byte are ignored)
//   control & 0x20  also check with the Produce handler's inline bound on the
//                   decompressed size (256 KiB): a verdict other than
//                   MESSAGE_TOO_LARGE must be the one the default bound
//                   (100 MiB) gives
//   control & 0x80  fix-up mode: before the call, the batch length (bytes 8..11)
//                   is set to the size of what follows it and the CRC-32C
//                   (bytes 17..20) to the CRC of bytes 21..end, so that the
//                   fuzzer gets past the CRC check to the records and the
//                   decompression code
// max.message.bytes is Kafka's default, 1048588. Besides crashes, UB, leaks and
// large allocations:
//   - an accepted batch must be one whole, consistent batch;
//   - after every input, a valid batch of each codec (made here at start-up
//     by the codec libraries, as producers make them) must still be accepted:
//     decompression contexts are reused across batches on a thread, and no
//     input may leave one in a state that refuses the next client's batch
//     (SLUICE_FUZZ_NO_CANARIES=1 in the environment turns this check off, to
//     explore past a known finding of it).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <string>
#include <vector>

#include <lz4frame.h>
#include <snappy.h>
#include <zlib.h>
#include <zstd.h>

#include "protocol/crc32c.h"
#include "protocol/record_batch.h"

namespace {

using namespace sluice::protocol;

constexpr int32_t kMaxMessageBytes = 1048588;
constexpr size_t kInlineUncompressedBytes = 256 << 10;  // broker/handlers/produce.cc

void store_be32(char* p, uint32_t v) {
  p[0] = static_cast<char>(v >> 24);
  p[1] = static_cast<char>(v >> 16);
  p[2] = static_cast<char>(v >> 8);
  p[3] = static_cast<char>(v);
}

void store_be(std::string& s, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) s.push_back(static_cast<char>(v >> (8 * i)));
}

// Three records (key, value, one header each), as a producer sends them.
std::string canary_records() {
  std::string out;
  for (int i = 0; i < 3; ++i) {
    // attributes, timestamp delta i, offset delta i, key "key-i", value "value-i", one header "h"="v"
    const std::string body = std::string("\0", 1) + char(2 * i) + char(2 * i) + char(10) + "key-" + char('0' + i) +
                             char(14) + "value-" + char('0' + i) + char(2) + char(2) + "h" + char(2) + "v";
    out += static_cast<char>(2 * body.size());
    out += body;
  }
  return out;
}

std::string compress(Compression codec, const std::string& in) {
  std::string out;
  switch (codec) {
    case Compression::kNone:
      return in;
    case Compression::kGzip: {
      z_stream zs{};
      if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK) std::abort();
      out.resize(deflateBound(&zs, in.size()) + 32);
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
      zs.avail_in = static_cast<uInt>(in.size());
      zs.next_out = reinterpret_cast<Bytef*>(out.data());
      zs.avail_out = static_cast<uInt>(out.size());
      if (deflate(&zs, Z_FINISH) != Z_STREAM_END) std::abort();
      out.resize(zs.total_out);
      deflateEnd(&zs);
      return out;
    }
    case Compression::kSnappy:  // raw, as librdkafka sends it
      snappy::Compress(in.data(), in.size(), &out);
      return out;
    case Compression::kLz4: {  // independent blocks, no content size: as Java's and librdkafka's producers
      LZ4F_preferences_t prefs{};
      prefs.frameInfo.blockMode = LZ4F_blockIndependent;
      out.resize(LZ4F_compressFrameBound(in.size(), &prefs));
      const size_t n = LZ4F_compressFrame(out.data(), out.size(), in.data(), in.size(), &prefs);
      if (LZ4F_isError(n)) std::abort();
      out.resize(n);
      return out;
    }
    case Compression::kZstd: {
      out.resize(ZSTD_compressBound(in.size()));
      const size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3);
      if (ZSTD_isError(n)) std::abort();
      out.resize(n);
      return out;
    }
  }
  std::abort();
}

std::string canary_batch(Compression codec) {
  const std::string payload = compress(codec, canary_records());
  std::string covered;  // attributes .. end
  store_be(covered, static_cast<uint16_t>(codec), 2);
  store_be(covered, 2, 4);                 // last offset delta
  store_be(covered, 1700000000000, 8);     // base timestamp
  store_be(covered, 1700000000002, 8);     // max timestamp
  store_be(covered, UINT64_MAX, 8);        // producer id -1
  store_be(covered, 0xFFFF, 2);            // producer epoch -1
  store_be(covered, 0xFFFFFFFF, 4);        // base sequence -1
  store_be(covered, 3, 4);                 // records
  covered += payload;
  std::string batch;
  store_be(batch, 0, 8);                            // base offset
  store_be(batch, 4 + 1 + 4 + covered.size(), 4);   // batch length
  store_be(batch, 0xFFFFFFFF, 4);                   // partition leader epoch
  batch.push_back(2);                               // magic
  store_be(batch, crc32c(covered), 4);
  return batch + covered;
}

const std::vector<std::string>& canaries() {
  static const std::vector<std::string> batches = [] {
    std::vector<std::string> v;
    for (Compression c : {Compression::kNone, Compression::kGzip, Compression::kSnappy, Compression::kLz4,
                          Compression::kZstd}) {
      v.push_back(canary_batch(c));
      const ProducedBatch r = check_produced_records(v.back(), 9, kMaxMessageBytes);
      if (r.error != ErrorCode::kNone) {
        std::fprintf(stderr, "record_batch_fuzzer: the canary batch of codec %d is refused before any input: %d %s\n",
                     static_cast<int>(c), static_cast<int>(r.error), r.error_message.c_str());
        std::abort();
      }
    }
    return v;
  }();
  return batches;
}

bool g_canaries = true;

void check_canaries() {
  if (!g_canaries) return;
  for (const std::string& batch : canaries()) {
    const ProducedBatch r = check_produced_records(batch, 9, kMaxMessageBytes);
    if (r.error != ErrorCode::kNone) {
      std::fprintf(stderr,
                   "record_batch_fuzzer: after this input, a valid batch of codec %d is refused (error %d %s): "
                   "the input left state behind\n",
                   batch[RecordBatchHeader::kAttributesAt + 1] & 7, static_cast<int>(r.error), r.error_message.c_str());
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* off = std::getenv("SLUICE_FUZZ_NO_CANARIES");
  g_canaries = !(off && *off && std::string_view(off) != "0");
  (void)canaries();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t control = data[0];
  const auto version = static_cast<int16_t>(3 + (control & 0x0F) % 7);
  if (control & 0x40) {
    (void)check_produced_records(std::nullopt, version, kMaxMessageBytes);
    check_canaries();
    return 0;
  }
  // An exact-size heap copy, so that ASan sees any read past the end.
  std::vector<char> batch(data + 1, data + size);
  if ((control & 0x80) && batch.size() >= RecordBatchHeader::kLogOverhead) {
    store_be32(batch.data() + RecordBatchHeader::kBatchLengthAt,
               static_cast<uint32_t>(batch.size() - RecordBatchHeader::kLogOverhead));
    if (batch.size() >= RecordBatchHeader::kAttributesAt) {
      const std::string_view covered(batch.data() + RecordBatchHeader::kAttributesAt,
                                     batch.size() - RecordBatchHeader::kAttributesAt);
      store_be32(batch.data() + RecordBatchHeader::kCrcAt, crc32c(covered));
    }
  }
  const std::string_view bytes(batch.data(), batch.size());
  const ProducedBatch result = check_produced_records(bytes, version, kMaxMessageBytes);
  if (result.error == ErrorCode::kNone) {
    const RecordBatchHeader& h = result.header;
    if (h.total_size() != batch.size() || h.magic != 2 || h.base_offset != 0 ||
        static_cast<int64_t>(h.last_offset_delta) + 1 != h.records_count || !record_batch_crc_ok(bytes)) {
      std::fprintf(stderr, "record_batch_fuzzer: an inconsistent batch was accepted\n");
      std::abort();
    }
  }
  if (control & 0x20) {
    const ProducedBatch small = check_produced_records(bytes, version, kMaxMessageBytes, kInlineUncompressedBytes);
    if (small.error != ErrorCode::kMessageTooLarge && small.error != result.error) {
      std::fprintf(stderr, "record_batch_fuzzer: error %d with a %zu-byte bound, %d with the default bound\n",
                   static_cast<int>(small.error), kInlineUncompressedBytes, static_cast<int>(result.error));
      std::abort();
    }
  }
  check_canaries();
  return 0;
}
