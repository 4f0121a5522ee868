#include "protocol/compression.h"

#include <lz4frame.h>
#include <snappy.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <cstring>
#include <utility>

namespace sluice::protocol {
namespace {

// Output is handed out in pieces of this size (zstd's recommended output size).
constexpr size_t kPieceBytes = 128 << 10;
// The largest zstd window accepted: zstd's own default limit, which is also
// what Kafka's Java consumers (zstd-jni) accept: a frame asking for more
// could not be read by them either. A Java producer at compression.zstd.level
// 22 writes 128 MiB windows, so nothing smaller can be the limit.
constexpr int kZstdWindowLogMax = 27;
// A zstd context that grew past this (a large window) is freed after use
// rather than kept as the thread's spare.
constexpr size_t kZstdRetainedContextBytes = 8 << 20;

// Codec contexts and output buffers are costly to create (a fresh 128 KiB
// buffer is 32 page faults), and produce checks one batch after another on
// the same thread: each thread keeps one spare of each kind, taken by a
// decompressor while it lives and given back when it ends. Only a context
// that reached the clean end of a stream is given back: liblz4 1.9.4 keeps
// failing after some errors even once reset (a frame whose content size is
// false made the next client's valid frame fail, found by fuzz/), so one
// that saw anything else is freed.
template <typename T, T* (*Make)(), void (*Free)(T*)>
class ThreadSpare {
 public:
  static T* take() {
    T*& spare = slot().spare;
    return spare ? std::exchange(spare, nullptr) : Make();
  }
  static void give_back(T* t) {
    T*& spare = slot().spare;
    if (spare) Free(spare);
    spare = t;
  }
  // Gives `t` back if its stream ended cleanly, else frees it.
  static void release(T* t, bool ended_cleanly) {
    if (ended_cleanly)
      give_back(t);
    else
      Free(t);
  }

 private:
  struct Slot {
    T* spare = nullptr;
    ~Slot() {
      if (spare) Free(spare);
    }
  };
  static Slot& slot() {
    thread_local Slot s;
    return s;
  }
};

char* new_piece() { return new char[kPieceBytes]; }
void delete_piece(char* p) { delete[] p; }
using Pieces = ThreadSpare<char, &new_piece, &delete_piece>;

// The part all codecs share: the input, the output bound, the piece buffer.
class BoundedDecompressor : public Decompressor {
 protected:
  BoundedDecompressor(std::string_view input, size_t max_output)
      : input_(input), left_(max_output), piece_(Pieces::take()) {}
  ~BoundedDecompressor() override { Pieces::give_back(piece_); }

  // Hands out `n` bytes of piece_ (or of `from`), counting them against the bound.
  Status emit(std::string_view& out, size_t n, const char* from = nullptr) {
    if (n > left_) return Status::kTooLarge;
    left_ -= n;
    out = std::string_view(from ? from : piece_, n);
    return Status::kData;
  }

  std::string_view input_;
  size_t left_;  // output still allowed
  char* piece_;
};

// --- gzip ---------------------------------------------------------------

z_stream* new_inflater() {
  auto* zs = new z_stream{};
  if (inflateInit2(zs, 15 + 16) != Z_OK) {  // 15-bit window, gzip wrapper
    delete zs;
    throw std::bad_alloc();
  }
  return zs;
}
void delete_inflater(z_stream* zs) {
  inflateEnd(zs);
  delete zs;
}
using Inflaters = ThreadSpare<z_stream, &new_inflater, &delete_inflater>;

class GzipDecompressor final : public BoundedDecompressor {
 public:
  GzipDecompressor(std::string_view input, size_t max_output)
      : BoundedDecompressor(input, max_output), zs_(Inflaters::take()) {
    inflateReset(zs_);
    zs_->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
    zs_->avail_in = static_cast<uInt>(input.size());
  }
  ~GzipDecompressor() override { Inflaters::release(zs_, ended_); }

  Status next(std::string_view& out) override {
    if (ended_) return Status::kEnd;
    zs_->next_out = reinterpret_cast<Bytef*>(piece_);
    zs_->avail_out = static_cast<uInt>(kPieceBytes);
    while (zs_->avail_out > 0) {
      const int ret = inflate(zs_, Z_NO_FLUSH);
      if (ret == Z_STREAM_END) {
        if (zs_->avail_in == 0) {
          ended_ = true;
          break;
        }
        // Another gzip member may follow (Java's GZIPInputStream reads them);
        // anything else after the stream is refused.
        if (zs_->avail_in < 2 || zs_->next_in[0] != 0x1f || zs_->next_in[1] != 0x8b) return Status::kCorrupt;
        inflateReset(zs_);
        continue;
      }
      if (ret == Z_BUF_ERROR || (ret == Z_OK && zs_->avail_in == 0 && zs_->avail_out > 0)) return Status::kCorrupt;
      if (ret != Z_OK) return Status::kCorrupt;  // data error, dictionary needed, out of memory
    }
    return emit(out, kPieceBytes - zs_->avail_out);
  }

 private:
  z_stream* zs_;
  bool ended_ = false;
};

// --- snappy -------------------------------------------------------------

constexpr std::string_view kXerialMagic("\x82SNAPPY\0", 8);
constexpr size_t kXerialHeaderBytes = 16;  // magic, int32 version, int32 compatible version

uint32_t load_be32(const char* p) {
  return (uint32_t(uint8_t(p[0])) << 24) | (uint32_t(uint8_t(p[1])) << 16) | (uint32_t(uint8_t(p[2])) << 8) |
         uint32_t(uint8_t(p[3]));
}

class SnappyDecompressor final : public BoundedDecompressor {
 public:
  SnappyDecompressor(std::string_view input, size_t max_output) : BoundedDecompressor(input, max_output) {
    framed_ = input.size() >= kXerialHeaderBytes && input.substr(0, kXerialMagic.size()) == kXerialMagic;
    position_ = framed_ ? kXerialHeaderBytes : 0;
  }

  Status next(std::string_view& out) override {
    if (position_ == input_.size() && (framed_ || done_raw_)) return Status::kEnd;
    std::string_view block;
    if (framed_) {
      if (input_.size() - position_ < 4) return Status::kCorrupt;
      const uint32_t length = load_be32(input_.data() + position_);
      if (length > input_.size() - position_ - 4) return Status::kCorrupt;
      block = input_.substr(position_ + 4, length);
      position_ += 4 + length;
    } else {
      // snappy-java reads a stream without its framing as one raw block.
      block = input_;
      position_ = input_.size();
      done_raw_ = true;
    }
    size_t length = 0;
    if (!snappy::GetUncompressedLength(block.data(), block.size(), &length)) return Status::kCorrupt;
    // The length is a claim until the block decodes to exactly it. Checking
    // that first costs a pass but writes nothing, so a liar is found out
    // (corrupt) before anything is allocated, and a block past the bound is
    // told from one that only claims to be.
    if (!snappy::IsValidCompressedBuffer(block.data(), block.size())) return Status::kCorrupt;
    if (length > left_) return Status::kTooLarge;
    const char* target = piece_;
    if (length > kPieceBytes) {
      if (large_.size() < length) large_.reset(length);
      target = large_.data();
    }
    if (!snappy::RawUncompress(block.data(), block.size(), const_cast<char*>(target))) return Status::kCorrupt;
    return emit(out, length, target);
  }

 private:
  // A buffer for blocks larger than a piece, not zero-filled.
  class Buffer {
   public:
    size_t size() const { return size_; }
    char* data() { return data_.get(); }
    void reset(size_t n) {
      data_.reset(new char[n]);
      size_ = n;
    }

   private:
    std::unique_ptr<char[]> data_;
    size_t size_ = 0;
  };

  bool framed_ = false;
  bool done_raw_ = false;
  size_t position_ = 0;
  Buffer large_;
};

// --- lz4 ----------------------------------------------------------------

LZ4F_dctx* new_lz4_context() {
  LZ4F_dctx* ctx = nullptr;
  if (LZ4F_isError(LZ4F_createDecompressionContext(&ctx, LZ4F_VERSION))) throw std::bad_alloc();
  return ctx;
}
void delete_lz4_context(LZ4F_dctx* ctx) { LZ4F_freeDecompressionContext(ctx); }
using Lz4Contexts = ThreadSpare<LZ4F_dctx, &new_lz4_context, &delete_lz4_context>;

class Lz4Decompressor final : public BoundedDecompressor {
 public:
  Lz4Decompressor(std::string_view input, size_t max_output)
      : BoundedDecompressor(input, max_output), ctx_(Lz4Contexts::take()) {
    LZ4F_resetDecompressionContext(ctx_);
  }
  ~Lz4Decompressor() override { Lz4Contexts::release(ctx_, ended_); }

  Status next(std::string_view& out) override {
    if (ended_) return Status::kEnd;
    // Kafka reads only frames of independent blocks (its Java consumers
    // cannot read linked ones): the block-independence flag must be set.
    constexpr std::string_view kMagic("\x04\x22\x4D\x18", 4);
    if (position_ == 0 && input_.size() > 4 && input_.substr(0, 4) == kMagic && !(input_[4] & 0x20))
      return Status::kCorrupt;
    size_t produced = 0;
    while (produced < kPieceBytes) {
      size_t dst = kPieceBytes - produced;
      size_t src = input_.size() - position_;
      const size_t hint = LZ4F_decompress(ctx_, piece_ + produced, &dst, input_.data() + position_, &src, nullptr);
      if (LZ4F_isError(hint)) return Status::kCorrupt;
      position_ += src;
      produced += dst;
      if (hint == 0) {  // the frame is complete; Kafka's batches hold exactly one
        if (position_ != input_.size()) return Status::kCorrupt;
        ended_ = true;
        break;
      }
      if (position_ == input_.size() && dst == 0) return Status::kCorrupt;  // cut short
    }
    return emit(out, produced);
  }

 private:
  LZ4F_dctx* ctx_;
  size_t position_ = 0;
  bool ended_ = false;
};

// --- zstd ---------------------------------------------------------------

ZSTD_DCtx* new_zstd_context() {
  ZSTD_DCtx* ctx = ZSTD_createDCtx();
  if (!ctx) throw std::bad_alloc();
  return ctx;
}
void delete_zstd_context(ZSTD_DCtx* ctx) { ZSTD_freeDCtx(ctx); }
using ZstdContexts = ThreadSpare<ZSTD_DCtx, &new_zstd_context, &delete_zstd_context>;

// zstd allocates a frame's whole window up front (up to 128 MiB at the
// window log limit), though it touches only what the frame writes. The window
// log limit is therefore also tied to the output bound: a frame whose window
// is larger than the bound allows is "too large" for it, which sends the
// network thread's small-bound check (broker/handlers/produce.cc) to the CPU
// worker, whose bound allows any window up to the limit.
class ZstdDecompressor final : public BoundedDecompressor {
 public:
  ZstdDecompressor(std::string_view input, size_t max_output)
      : BoundedDecompressor(input, max_output), ctx_(ZstdContexts::take()) {
    while (window_log_max_ > 10 && (size_t{1} << (window_log_max_ - 1)) >= max_output) --window_log_max_;
    ZSTD_DCtx_reset(ctx_, ZSTD_reset_session_and_parameters);
    ZSTD_DCtx_setParameter(ctx_, ZSTD_d_windowLogMax, window_log_max_);
  }
  ~ZstdDecompressor() override {
    ZstdContexts::release(ctx_, ended_ && ZSTD_sizeof_DCtx(ctx_) <= kZstdRetainedContextBytes);
  }

  Status next(std::string_view& out) override {
    if (ended_) return Status::kEnd;
    ZSTD_inBuffer in{input_.data(), input_.size(), position_};
    ZSTD_outBuffer piece{piece_, kPieceBytes, 0};
    while (piece.pos < piece.size) {
      const size_t in_before = in.pos, out_before = piece.pos;
      const size_t hint = ZSTD_decompressStream(ctx_, &piece, &in);
      if (ZSTD_isError(hint)) {
        const bool window_over_bound = ZSTD_getErrorCode(hint) == ZSTD_error_frameParameter_windowTooLarge &&
                                       window_log_max_ < kZstdWindowLogMax;
        return window_over_bound ? Status::kTooLarge : Status::kCorrupt;
      }
      if (hint == 0 && in.pos == in.size) {  // a frame ended with the input
        ended_ = true;
        break;
      }
      // More input is needed but there is none: the frame was cut short.
      if (in.pos == in.size && piece.pos < piece.size && hint != 0) return Status::kCorrupt;
      if (in.pos == in_before && piece.pos == out_before) return Status::kCorrupt;  // no progress at all
    }
    position_ = in.pos;
    return emit(out, piece.pos);
  }

 private:
  ZSTD_DCtx* ctx_;
  int window_log_max_ = kZstdWindowLogMax;  // lowered for small output bounds
  size_t position_ = 0;
  bool ended_ = false;
};

}  // namespace

std::unique_ptr<Decompressor> Decompressor::open(Compression codec, std::string_view input, size_t max_output) {
  switch (codec) {
    case Compression::kGzip:
      return std::make_unique<GzipDecompressor>(input, max_output);
    case Compression::kSnappy:
      return std::make_unique<SnappyDecompressor>(input, max_output);
    case Compression::kLz4:
      return std::make_unique<Lz4Decompressor>(input, max_output);
    case Compression::kZstd:
      return std::make_unique<ZstdDecompressor>(input, max_output);
    case Compression::kNone:
      break;
  }
  return nullptr;
}

}  // namespace sluice::protocol
