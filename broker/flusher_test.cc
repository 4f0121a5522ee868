#include "broker/flusher.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <cstdio>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace sluice::broker {
namespace {

// Runs the io_context until the flush's completion has run (at most 5 s).
void wait_for(boost::asio::io_context& io, const std::optional<bool>& result) {
  io.restart();  // after an earlier wait ran out of work
  auto work = boost::asio::make_work_guard(io);  // the completion is posted from the flusher's thread
  for (int i = 0; i < 500 && !result; ++i) io.run_for(std::chrono::milliseconds(10));
}

// Runs one flush of `fds` and returns what it reported.
bool flush_and_wait(boost::asio::io_context& io, Flusher& flusher, const std::vector<int>& fds) {
  std::optional<bool> result;
  flusher.flush(fds, [&](bool ok) { result = ok; });
  wait_for(io, result);
  EXPECT_TRUE(result.has_value());
  return result.value_or(true);
}

// An open file with something to sync, already unlinked.
int scratch_file() {
  char path[] = "/tmp/sluice-flusher-test-XXXXXX";
  const int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  ::unlink(path);
  EXPECT_EQ(::write(fd, "data", 4), 4);
  return fd;
}

TEST(FlusherTest, ReportsSuccessOnlyWhenEveryFileWasSynced) {
  boost::asio::io_context io;
  Flusher flusher(io.get_executor());
  const int fd = scratch_file();
  EXPECT_TRUE(flush_and_wait(io, flusher, {fd}));
  // A descriptor that is not open cannot be synced: the flush fails.
  EXPECT_FALSE(flush_and_wait(io, flusher, {fd, 987654}));
  ::close(fd);
}

// A file whose error flag is set once the syncs are done (a segment file whose naming failed:
// its data would not be found after a restart) fails the flush, even though it synced.
TEST(FlusherTest, FailsWhenAFilesErrorIsSet) {
  boost::asio::io_context io;
  Flusher flusher(io.get_executor());
  const int fd = scratch_file();
  auto error = std::make_shared<std::atomic<int>>(0);
  storage::SyncList sync;
  sync.fds = {fd};
  sync.errors = {error};
  std::optional<bool> result;
  flusher.flush(sync, [&](bool ok) { result = ok; });
  wait_for(io, result);
  EXPECT_EQ(result, std::optional<bool>(true));
  // Set by a job that runs before the syncs (the naming is such a job): the flush fails.
  flusher.run([error] { error->store(EEXIST); return false; }, nullptr);
  result.reset();
  flusher.flush(sync, [&](bool ok) { result = ok; });
  wait_for(io, result);
  EXPECT_EQ(result, std::optional<bool>(false));
  ::close(fd);
}

// Out of file descriptors, dup() fails: the flush must fail rather than
// acknowledge data it never synced (an acks=all produce would be answered
// with the data still only in the page cache).
TEST(FlusherTest, FailsWhenNoDescriptorIsLeftToDuplicate) {
  boost::asio::io_context io;
  Flusher flusher(io.get_executor());
  const int fd = scratch_file();
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  std::vector<int> filler;
  rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(fd + 1);  // no descriptor above fd: dup() fails with EMFILE
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);
  for (int spare; (spare = ::open("/dev/null", O_RDONLY)) >= 0;) filler.push_back(spare);  // lower ones too
  std::optional<bool> result;
  flusher.flush({fd}, [&](bool ok) { result = ok; });
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  for (int spare : filler) ::close(spare);
  wait_for(io, result);
  ASSERT_TRUE(result.has_value());
  EXPECT_FALSE(*result);
  ::close(fd);
}

// A job runs before the syncs of its round, even of a flush requested before
// it, and reports its own result: the leader-epoch checkpoint relies on landing
// before the flush that moves the recovery point past the batches it describes.
// What ran on a flusher's thread, in order ("sync" for each fdatasync), for the tests of its
// rounds; hold() keeps the thread busy until what follows is queued, so it is taken in one round.
struct RoundRecorder {
  std::mutex mutex;
  std::vector<std::string> order;
  void record(const char* what) {
    std::lock_guard lock(mutex);
    order.push_back(what);
  }
  std::vector<std::string> recorded() {
    std::lock_guard lock(mutex);
    return order;
  }
  FlushObserver observer() {
    FlushObserver o;
    o.synced = [this](double) { record("sync"); };
    return o;
  }
  static std::shared_ptr<std::promise<void>> hold(Flusher& flusher) {
    auto release = std::make_shared<std::promise<void>>();
    flusher.run([gate = release->get_future().share()] { gate.wait(); return true; }, nullptr);
    return release;
  }
};

TEST(FlusherTest, JobsRunBeforeTheSyncsOfTheirRoundAndReportTheirOwnResult) {
  boost::asio::io_context io;
  RoundRecorder rounds;
  Flusher flusher(io.get_executor(), rounds.observer());
  auto hold = [&flusher] { return RoundRecorder::hold(flusher); };
  const int fd = scratch_file();
  std::optional<bool> job_result, flush_result;
  auto release = hold();
  flusher.flush({fd}, [&](bool ok) { flush_result = ok; });
  flusher.run([&] { rounds.record("job"); return true; }, [&](bool ok) { job_result = ok; });
  release->set_value();
  wait_for(io, flush_result);
  wait_for(io, job_result);
  EXPECT_EQ(flush_result, std::optional<bool>(true));
  EXPECT_EQ(job_result, std::optional<bool>(true));
  EXPECT_EQ(rounds.recorded(), (std::vector<std::string>{"job", "sync"}));

  // In a round whose sync fails (fdatasync of a pipe: EINVAL), a job that
  // succeeded still reports success, and one that throws reports failure.
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  std::optional<bool> good_job, bad_job;
  flush_result.reset();
  release = hold();
  flusher.flush({pipe_fds[0]}, [&](bool ok) { flush_result = ok; });
  flusher.run([] { return true; }, [&](bool ok) { good_job = ok; });
  flusher.run([]() -> bool { throw std::runtime_error("disk full"); }, [&](bool ok) { bad_job = ok; });
  release->set_value();
  wait_for(io, flush_result);
  wait_for(io, good_job);
  wait_for(io, bad_job);
  EXPECT_EQ(flush_result, std::optional<bool>(false));
  EXPECT_EQ(good_job, std::optional<bool>(true));
  EXPECT_EQ(bad_job, std::optional<bool>(false));
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  ::close(fd);
}

// A job nothing waits for (a segment's block reserve) runs after the syncs of its round, queued
// before them or not: a flush is not delayed by it.
TEST(FlusherTest, AfterSyncsJobsRunAfterTheSyncsOfTheirRound) {
  boost::asio::io_context io;
  RoundRecorder rounds;
  Flusher flusher(io.get_executor(), rounds.observer());
  auto release = RoundRecorder::hold(flusher);
  const int fd = scratch_file();
  std::optional<bool> flush_result, late_result;
  flusher.run_after_syncs([&] { rounds.record("reserve"); return true; }, [&](bool ok) { late_result = ok; });
  flusher.run([&] { rounds.record("job"); return true; }, nullptr);
  flusher.flush({fd}, [&](bool ok) { flush_result = ok; });
  release->set_value();
  wait_for(io, flush_result);
  wait_for(io, late_result);
  EXPECT_EQ(flush_result, std::optional<bool>(true));
  EXPECT_EQ(late_result, std::optional<bool>(true));
  EXPECT_EQ(rounds.recorded(), (std::vector<std::string>{"job", "sync", "reserve"}));
  ::close(fd);
}

}  // namespace
}  // namespace sluice::broker
