#include "storage/leader_epoch_cache.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <stdexcept>
#include <system_error>

namespace sluice::storage {
namespace {

constexpr int kFormatVersion = 0;

[[noreturn]] void throw_errno(const std::string& what) { throw std::system_error(errno, std::generic_category(), what); }

// The next line of `text` from `at` (without its '\n'); nullopt at the end.
std::optional<std::string_view> next_line(std::string_view text, size_t& at) {
  if (at >= text.size()) return std::nullopt;
  const size_t end = std::min(text.find('\n', at), text.size());
  std::string_view line = text.substr(at, end - at);
  at = end + 1;
  return line;
}

// A whole decimal integer (a leading '-' allowed), nothing else.
template <typename Int>
std::optional<Int> to_int(std::string_view s) {
  Int value{};
  const auto [end, error] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || error != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

}  // namespace

LeaderEpochCache::LeaderEpochCache(const std::filesystem::path& path) : LeaderEpochCache(load(path)) {}

LeaderEpochCache LeaderEpochCache::load(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return {};
    throw_errno("open " + path.string());
  }
  std::string text;
  char buffer[4096];
  for (;;) {
    const ssize_t got = ::read(fd, buffer, sizeof(buffer));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      const int error = errno;
      ::close(fd);
      throw std::system_error(error, std::generic_category(), "read " + path.string());
    }
    if (got == 0) break;
    text.append(buffer, static_cast<size_t>(got));
  }
  ::close(fd);
  return parse(text, path.string());
}

// Kafka reads an empty file, or one with a version and no count, as no entries; so do we.
LeaderEpochCache LeaderEpochCache::parse(std::string_view text, const std::string& where) {
  auto corrupt = [&](const std::string& why) {
    return std::runtime_error("leader epoch checkpoint " + where + ": " + why);
  };
  LeaderEpochCache cache;
  size_t at = 0;
  const auto version_line = next_line(text, at);
  if (!version_line) return cache;
  if (to_int<int>(*version_line) != kFormatVersion)
    throw corrupt("unknown version '" + std::string(*version_line) + "'");
  const auto count_line = next_line(text, at);
  if (!count_line) return cache;
  const auto count = to_int<int64_t>(*count_line);
  if (!count || *count < 0) throw corrupt("bad entry count '" + std::string(*count_line) + "'");
  while (const auto line = next_line(text, at)) {
    // "<epoch> <start offset>": Kafka splits on any run of white space.
    const size_t gap = line->find_first_of(" \t");
    const size_t second = gap == std::string_view::npos ? gap : line->find_first_not_of(" \t", gap);
    const auto epoch = gap == std::string_view::npos ? std::nullopt : to_int<int32_t>(line->substr(0, gap));
    const auto start = second == std::string_view::npos ? std::nullopt : to_int<int64_t>(line->substr(second));
    if (!epoch || !start || *epoch < 0 || *start < 0) throw corrupt("malformed line '" + std::string(*line) + "'");
    if (!cache.entries_.empty() &&
        (*epoch <= cache.entries_.back().epoch || *start <= cache.entries_.back().start_offset))
      throw corrupt("entry '" + std::string(*line) + "' does not follow the one before it");
    cache.entries_.push_back({*epoch, *start});
  }
  if (static_cast<int64_t>(cache.entries_.size()) != *count)
    throw corrupt("expected " + std::to_string(*count) + " entries, found " + std::to_string(cache.entries_.size()));
  return cache;
}

std::string LeaderEpochCache::serialize() const {
  std::string out = std::to_string(kFormatVersion) + "\n" + std::to_string(entries_.size()) + "\n";
  for (const EpochEntry& e : entries_) out += std::to_string(e.epoch) + " " + std::to_string(e.start_offset) + "\n";
  return out;
}

bool LeaderEpochCache::assign(int32_t epoch, int64_t start_offset) {
  if (epoch < 0 || start_offset < 0)
    throw std::invalid_argument("leader epoch " + std::to_string(epoch) + " at offset " + std::to_string(start_offset));
  if (!entries_.empty() && entries_.back().epoch == epoch && start_offset >= entries_.back().start_offset) return false;
  while (!entries_.empty() && (entries_.back().epoch >= epoch || entries_.back().start_offset >= start_offset))
    entries_.pop_back();
  entries_.push_back({epoch, start_offset});
  return true;
}

std::optional<int32_t> LeaderEpochCache::latest_epoch() const {
  if (entries_.empty()) return std::nullopt;
  return entries_.back().epoch;
}

std::optional<int64_t> LeaderEpochCache::start_offset_of(int32_t epoch) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), epoch,
                             [](const EpochEntry& e, int32_t wanted) { return e.epoch < wanted; });
  if (it == entries_.end() || it->epoch != epoch) return std::nullopt;
  return it->start_offset;
}

std::pair<int32_t, int64_t> LeaderEpochCache::end_offset_for(int32_t requested_epoch, int64_t log_end_offset) const {
  // A follower that knows no epoch yet (or an old message format) asks with the undefined one.
  if (requested_epoch == kUndefinedEpoch) return {kUndefinedEpoch, kUndefinedEpochOffset};
  if (latest_epoch() == requested_epoch) return {requested_epoch, log_end_offset};
  auto higher = std::upper_bound(entries_.begin(), entries_.end(), requested_epoch,
                                 [](int32_t wanted, const EpochEntry& e) { return wanted < e.epoch; });
  if (higher == entries_.end()) return {kUndefinedEpoch, kUndefinedEpochOffset};
  // Below every epoch we know: those before were removed with the start of the log, and the
  // follower may replicate from where the first known one began.
  if (higher == entries_.begin()) return {requested_epoch, higher->start_offset};
  return {std::prev(higher)->epoch, higher->start_offset};
}

bool LeaderEpochCache::truncate_from_end(int64_t end_offset) {
  const size_t before = entries_.size();
  while (!entries_.empty() && entries_.back().start_offset >= end_offset) entries_.pop_back();
  return entries_.size() != before;
}

bool LeaderEpochCache::truncate_from_start(int64_t start_offset) {
  auto first_after = std::upper_bound(entries_.begin(), entries_.end(), start_offset,
                                      [](int64_t offset, const EpochEntry& e) { return offset < e.start_offset; });
  if (first_after == entries_.begin()) return false;  // every epoch starts after it
  const EpochEntry kept{std::prev(first_after)->epoch, start_offset};
  const bool changed = first_after - entries_.begin() > 1 || entries_.front() != kept;
  entries_.erase(entries_.begin(), std::prev(first_after));
  entries_.front() = kept;
  return changed;
}

void write_atomically_at(int dir_fd, const std::string& name, std::string_view contents) {
  const std::string temp = name + ".tmp";
  const int fd = ::openat(dir_fd, temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw_errno("open " + temp);
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t put = ::write(fd, contents.data() + done, contents.size() - done);
    if (put < 0 && errno == EINTR) continue;
    if (put < 0) {
      const int error = errno;
      ::close(fd);
      throw std::system_error(error, std::generic_category(), "write " + temp);
    }
    done += static_cast<size_t>(put);
  }
  if (::fsync(fd) != 0) {
    const int error = errno;
    ::close(fd);
    throw std::system_error(error, std::generic_category(), "fsync " + temp);
  }
  ::close(fd);
  if (::renameat(dir_fd, temp.c_str(), dir_fd, name.c_str()) != 0) throw_errno("rename " + temp + " to " + name);
  // The rename is durable only once the directory is.
  if (::fsync(dir_fd) != 0) throw_errno("fsync the directory of " + name);
}

void write_atomically(const std::filesystem::path& path, std::string_view contents) {
  std::filesystem::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) throw_errno("open " + dir.string());
  try {
    write_atomically_at(dir_fd, path.filename().string(), contents);
  } catch (...) {
    ::close(dir_fd);
    throw;
  }
  ::close(dir_fd);
}

}  // namespace sluice::storage
