#include "federation/placement.h"

#include <charconv>
#include <random>
#include <sstream>

namespace sluice::federation {
namespace {

constexpr char kHex[] = "0123456789abcdef";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

int32_t TopicPlacement::partition_count() const {
  int32_t n = 0;
  for (const auto& s : segments) n += s.partitions;
  return n;
}

std::optional<TopicPlacement::Location> TopicPlacement::locate(int32_t p) const {
  if (p < 0) return std::nullopt;
  for (const auto& s : segments) {
    if (p < s.partitions) return Location{&s.cluster, s.first_member_partition + p, s.offset_base(p)};
    p -= s.partitions;
  }
  return std::nullopt;
}

int32_t TopicPlacement::federated_partition(std::string_view cluster, int32_t member_partition) const {
  int32_t first = 0;
  for (const auto& s : segments) {
    const int32_t i = member_partition - s.first_member_partition;
    if (s.cluster == cluster && i >= 0 && i < s.partitions) return first + i;
    first += s.partitions;
  }
  return -1;
}

bool TopicPlacement::on(std::string_view cluster) const { return segment_on(cluster) != nullptr; }

const PlacementSegment* TopicPlacement::segment_on(std::string_view cluster) const {
  for (const auto& s : segments)
    if (s.cluster == cluster) return &s;
  return nullptr;
}

protocol::Uuid new_topic_id() {
  static std::random_device device;
  static std::mt19937_64 random(device() ^ (uint64_t{device()} << 32));
  protocol::Uuid id;
  do {
    for (size_t i = 0; i < 16; i += 8) {
      const uint64_t r = random();
      for (size_t j = 0; j < 8; ++j) id.bytes[i + j] = static_cast<uint8_t>(r >> (8 * j));
    }
  } while (id.is_zero());
  return id;
}

bool valid_cluster_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
          c == '.'))
      return false;
  return true;
}

// "1 <topic id, 32 hex digits> <cluster>:<partitions> ...": version 1, every
// offset base zero and every segment from its member's partition 0. Version 2
// adds, where needed, a segment's first member partition and its offset bases:
// "<cluster>:<partitions>[+<first>][@<base>,<base>,...]" (a base per partition).
std::string encode_placement(const TopicPlacement& placement) {
  bool bases = false;
  for (const auto& s : placement.segments) {
    for (int64_t b : s.offset_bases) bases = bases || b != 0;
    bases = bases || s.first_member_partition != 0;
  }
  std::string out = bases ? "2 " : "1 ";
  for (uint8_t b : placement.topic_id.bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  for (const auto& s : placement.segments) {
    out += " " + s.cluster + ":" + std::to_string(s.partitions);
    if (s.first_member_partition != 0) out += "+" + std::to_string(s.first_member_partition);
    bool any = false;
    for (int64_t b : s.offset_bases) any = any || b != 0;
    if (!bases || !any) continue;
    for (size_t i = 0; i < s.offset_bases.size(); ++i) out += (i == 0 ? "@" : ",") + std::to_string(s.offset_bases[i]);
  }
  return out;
}

namespace {

// "<base>,<base>,...": exactly `count` non-negative offsets.
bool decode_bases(std::string_view text, int32_t count, std::vector<int64_t>& out) {
  const char* p = text.data();
  const char* end = text.data() + text.size();
  for (int32_t i = 0; i < count; ++i) {
    if (i > 0) {
      if (p == end || *p != ',') return false;
      ++p;
    }
    int64_t base = -1;
    auto [next, ec] = std::from_chars(p, end, base);
    if (ec != std::errc() || base < 0) return false;
    out.push_back(base);
    p = next;
  }
  return p == end;
}

}  // namespace

std::optional<TopicPlacement> decode_placement(std::string_view text) {
  std::istringstream in{std::string(text)};
  std::string version, id;
  if (!(in >> version >> id) || (version != "1" && version != "2") || id.size() != 32) return std::nullopt;
  TopicPlacement placement;
  for (size_t i = 0; i < 16; ++i) {
    const int hi = hex_value(id[2 * i]), lo = hex_value(id[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    placement.topic_id.bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  for (std::string segment; in >> segment;) {
    const size_t at = version == "2" ? segment.find('@') : std::string::npos;
    const std::string_view head = std::string_view(segment).substr(0, at);
    const size_t colon = head.rfind(':');
    if (colon == std::string::npos) return std::nullopt;
    PlacementSegment s{std::string(head.substr(0, colon)), 0};
    const char* end = head.data() + head.size();
    auto [ptr, ec] = std::from_chars(head.data() + colon + 1, end, s.partitions);
    if (ec == std::errc() && ptr != end && *ptr == '+' && version == "2") {
      auto [after, first_ec] = std::from_chars(ptr + 1, end, s.first_member_partition);
      if (first_ec != std::errc() || s.first_member_partition < 0) return std::nullopt;
      ptr = after;
    }
    if (ec != std::errc() || ptr != end || s.partitions <= 0 || !valid_cluster_name(s.cluster)) return std::nullopt;
    if (at != std::string::npos &&
        !decode_bases(std::string_view(segment).substr(at + 1), s.partitions, s.offset_bases))
      return std::nullopt;
    placement.segments.push_back(std::move(s));
  }
  if (placement.segments.empty()) return std::nullopt;
  return placement;
}

}  // namespace sluice::federation
