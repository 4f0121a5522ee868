// Micro-benchmarks of the storage layer alone (no network, no broker), each
// next to the plain system-call peer measured in the same run, so the ratio
// says what the log costs on top of the file system:
//   Append/<batch>/<flush>  PartitionLog::append of ready batches  vs  PlainWrite: write() to a file
//   Read/<fetch>            locate() + pread of fetch-sized reads  vs  PlainRead: pread() of the same sizes
//                           (both into a reused buffer)
// With flush=1, both sides fdatasync once per MiB appended (a group commit's rhythm; the
// log's index files are synced only by the periodic checkpoint, as in the broker).
// Run: build/bin/sluice_storage_bench (make bench-storage writes bench/STORAGE.md).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "storage/partition_log.h"

namespace {

using sluice::storage::BatchFormat;
using sluice::storage::BatchSummary;
using sluice::storage::LogOptions;
using sluice::storage::PartitionLog;

constexpr size_t kFlushEvery = 1 << 20;
constexpr size_t kLogBytes = 256 << 20;  // what each run writes before starting over

std::filesystem::path scratch_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("sluice-storage-bench-" + std::to_string(::getpid()) + "-" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// Entries framed as Kafka's log: base offset, length, then a body; one record each.
std::string make_entry(size_t size) {
  std::string e(size, 'x');
  const uint32_t length = static_cast<uint32_t>(size - 12);
  for (int i = 0; i < 4; ++i) e[8 + i] = static_cast<char>(length >> (8 * (3 - i)));
  for (int i = 12; i < 16; ++i) e[i] = 0;  // last offset delta 0
  return e;
}

BatchFormat bench_format() {
  BatchFormat f;
  f.header_bytes = 16;
  f.summarize = [](std::string_view) { return std::optional<BatchSummary>(BatchSummary{0, 0}); };
  f.verify = [](std::string_view) { return true; };
  return f;
}

LogOptions bench_options() {
  LogOptions o;
  o.segment_ms = INT64_MAX / 4;
  return o;
}

void Append(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  const bool flush = state.range(1) != 0;
  const auto dir = scratch_dir("append");
  auto log = PartitionLog::open(dir, bench_options(), bench_format());
  std::string entry = make_entry(size);
  size_t written = 0, since_flush = 0;
  for (auto _ : state) {
    log->append(std::span<char>(entry.data(), entry.size()), BatchSummary{0, 0});
    written += size;
    since_flush += size;
    if (flush && since_flush >= kFlushEvery) {
      for (int fd : log->to_sync().fds) ::fdatasync(fd);  // what the group commit does for acks=all (and rolls)
      since_flush = 0;
    }
    if (written >= kLogBytes) {  // keep the disk use bounded
      state.PauseTiming();
      log.reset();
      std::filesystem::remove_all(dir);
      log = PartitionLog::open(dir, bench_options(), bench_format());
      written = 0;
      state.ResumeTiming();
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
  log.reset();
  std::filesystem::remove_all(dir);
}

void PlainWrite(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  const bool flush = state.range(1) != 0;
  const auto dir = scratch_dir("write");
  const auto path = dir / "plain";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  std::string entry = make_entry(size);
  size_t written = 0, since_flush = 0;
  for (auto _ : state) {
    if (::write(fd, entry.data(), entry.size()) != static_cast<ssize_t>(entry.size())) state.SkipWithError("write");
    written += size;
    since_flush += size;
    if (flush && since_flush >= kFlushEvery) {
      ::fdatasync(fd);
      since_flush = 0;
    }
    if (written >= kLogBytes) {
      state.PauseTiming();
      ::ftruncate(fd, 0);
      written = 0;
      state.ResumeTiming();
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
  ::close(fd);
  std::filesystem::remove_all(dir);
}

// A log of 64 MiB of 1 KiB batches, read front to back in fetch-sized steps:
// locate() (index lookup and header reads), then the bytes it names copied out
// with pread() into a reused buffer (the broker hands them to sendfile instead).
void Read(benchmark::State& state) {
  const size_t fetch = static_cast<size_t>(state.range(0));
  const auto dir = scratch_dir("read");
  auto log = PartitionLog::open(dir, bench_options(), bench_format());
  std::string entry = make_entry(1024);
  for (size_t i = 0; i < (64u << 20) / entry.size(); ++i)
    log->append(std::span<char>(entry.data(), entry.size()), BatchSummary{0, 0});
  std::string buffer(fetch + entry.size(), '\0');
  int64_t offset = 0;
  size_t bytes = 0;
  for (auto _ : state) {
    size_t got = 0;
    for (const auto& slice : log->locate(offset, fetch, true)) {
      got += static_cast<size_t>(::pread(slice.fd, buffer.data() + got, slice.length, static_cast<off_t>(slice.position)));
    }
    benchmark::DoNotOptimize(buffer.data());
    bytes += got;
    offset += static_cast<int64_t>(got / entry.size());
    if (offset >= log->log_end_offset()) offset = 0;
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  log.reset();
  std::filesystem::remove_all(dir);
}

void PlainRead(benchmark::State& state) {
  const size_t fetch = static_cast<size_t>(state.range(0));
  const auto dir = scratch_dir("pread");
  const auto path = dir / "plain";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  // Written 1 KiB at a time like the log's batches: the page cache keeps small
  // appends in small pages, which read back slower than big writes would.
  std::string chunk(1024, 'x');
  for (int i = 0; i < 64 * 1024; ++i) ::write(fd, chunk.data(), chunk.size());
  const size_t total = 64u << 20;
  std::string buffer(fetch, '\0');
  size_t at = 0, bytes = 0;
  for (auto _ : state) {
    ssize_t got = ::pread(fd, buffer.data(), fetch, static_cast<off_t>(at));
    benchmark::DoNotOptimize(buffer.data());
    bytes += static_cast<size_t>(got);
    at += fetch;
    if (at >= total) at = 0;
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  ::close(fd);
  std::filesystem::remove_all(dir);
}

}  // namespace

BENCHMARK(Append)->ArgsProduct({{100, 16384}, {0, 1}})->ArgNames({"batch", "flush"});
BENCHMARK(PlainWrite)->ArgsProduct({{100, 16384}, {0, 1}})->ArgNames({"batch", "flush"});
BENCHMARK(Read)->Arg(64 << 10)->Arg(1 << 20)->ArgNames({"fetch"});
BENCHMARK(PlainRead)->Arg(64 << 10)->Arg(1 << 20)->ArgNames({"fetch"});
BENCHMARK_MAIN();
