// CRC-32C (Castagnoli), the checksum of Kafka record batches (magic 2).
#pragma once

#include <cstdint>
#include <string_view>

namespace sluice::protocol {

// Continues a running CRC: crc32c_extend(crc32c_extend(0, a), b) == crc32c(a + b).
uint32_t crc32c_extend(uint32_t crc, std::string_view data);

inline uint32_t crc32c(std::string_view data) { return crc32c_extend(0, data); }

}  // namespace sluice::protocol
