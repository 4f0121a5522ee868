// Bounded, streaming decompression of a record batch's records section, for
// checking what a producer sent before it is stored. Output comes in pieces
// of at most a few hundred KiB, and the caller fixes the most it will take in
// all: a bomb or a size liar costs at most that bound in CPU and a fixed amount
// of memory, never the size it claims.
//
// The formats are Kafka's: gzip (RFC 1952, concatenated members allowed),
// snappy in snappy-java's framing ("\x82SNAPPY\0", then blocks each preceded
// by a big-endian int32 length) or as one raw snappy block, the LZ4 frame
// format, and zstd frames.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

#include "protocol/record_batch.h"

namespace sluice::protocol {

class Decompressor {
 public:
  enum class Status {
    kData,      // `out` holds the next piece of output (it may be empty)
    kEnd,       // the stream ended cleanly with all of the input used
    kCorrupt,   // the input is not a valid stream of this codec
    kTooLarge,  // the output would pass the bound given to open()
  };

  // A decompressor for `input` (which must outlive it) that refuses to produce
  // more than `max_output` bytes. `codec` must not be kNone.
  static std::unique_ptr<Decompressor> open(Compression codec, std::string_view input, size_t max_output);

  virtual ~Decompressor() = default;

  // The next piece of output, valid until the next call.
  virtual Status next(std::string_view& out) = 0;
};

}  // namespace sluice::protocol
