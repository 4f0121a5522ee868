// Whether an OffsetFetch or OffsetCommit answer from a member says its
// coordinator of the group moved or is not ready: forward_to_coordinators
// (forward.h) asks again then. Shared by the handlers and the topic mover.
#pragma once

#include "federation/handlers/forward.h"
#include "protocol/messages/offset_commit_response.h"
#include "protocol/messages/offset_fetch_response.h"

namespace sluice::federation {

inline bool offset_fetch_coordinator_moved(const protocol::OffsetFetchResponse& reply) {
  if (coordinator_error(reply.error_code)) return true;
  for (const auto& t : reply.topics)
    for (const auto& p : t.partitions)
      if (coordinator_error(p.error_code)) return true;
  return false;
}

inline bool offset_commit_coordinator_moved(const protocol::OffsetCommitResponse& reply) {
  for (const auto& t : reply.topics)
    for (const auto& p : t.partitions)
      if (coordinator_error(p.error_code)) return true;
  return false;
}

}  // namespace sluice::federation
