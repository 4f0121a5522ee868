// DescribeLogDirs (key 35): this broker's log directory, the size of each
// partition it holds and how far it is behind (kafka-log-dirs.sh --describe),
// and (v4) the file system's size and free space. Clients send it to each
// broker they want described.
#include <sys/statvfs.h>

#include <map>

#include "broker/handlers/handlers.h"
#include "protocol/messages/describe_log_dirs_request.h"
#include "protocol/messages/describe_log_dirs_response.h"

namespace sluice::broker {

using protocol::DescribeLogDirsRequest;
using protocol::DescribeLogDirsResponse;
using Result = DescribeLogDirsResponse::DescribeLogDirsResult;

boost::asio::awaitable<void> handle_describe_log_dirs(RequestContext& ctx) {
  auto request = ctx.decode<DescribeLogDirsRequest>();
  Broker& broker = ctx.broker;
  // Null: every partition; otherwise those named (and held here).
  std::map<std::string, std::vector<int32_t>, std::less<>> wanted;
  if (request.topics)
    for (const auto& t : request.topics.value()) {
      auto& parts = wanted[t.topic];
      parts.insert(parts.end(), t.partitions.begin(), t.partitions.end());
    }
  Result result;
  result.log_dir = std::filesystem::absolute(broker.replicas.log_dir()).string();
  std::map<std::string, std::vector<Result::DescribeLogDirsTopic::DescribeLogDirsPartition>> held;
  broker.replicas.for_each_partition([&](Partition& p) {
    if (request.topics) {
      auto it = wanted.find(p.topic);
      if (it == wanted.end() || std::find(it->second.begin(), it->second.end(), p.index) == it->second.end()) return;
    }
    // Kafka's lag: what this replica lacks of the partition's high watermark
    // (for a follower, the leader's as last heard; a leader lacks nothing).
    const int64_t end = p.log->log_end_offset();
    const int64_t lag = p.is_leader ? 0 : std::max<int64_t>(p.leader_high_watermark - end, 0);
    held[p.topic].push_back({p.index, static_cast<int64_t>(p.log->size_bytes()), lag, false});
  });
  for (auto& [name, partitions] : held) result.topics.push_back({name, std::move(partitions)});
  if (ctx.api_version >= 4) {
    // A file-system call: off the network thread.
    const std::string dir = result.log_dir;
    struct statvfs fs {};
    bool ok = false;
    co_await broker.cpu_worker.run([&] { ok = ::statvfs(dir.c_str(), &fs) == 0; });
    if (ok) {
      result.total_bytes = static_cast<int64_t>(fs.f_blocks) * static_cast<int64_t>(fs.f_frsize);
      result.usable_bytes = static_cast<int64_t>(fs.f_bavail) * static_cast<int64_t>(fs.f_frsize);
    }
  }
  DescribeLogDirsResponse reply;
  reply.results.push_back(std::move(result));
  ctx.respond(reply);
}

}  // namespace sluice::broker
