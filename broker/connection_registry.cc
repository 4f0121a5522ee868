#include "broker/connection_registry.h"

#include <sys/resource.h>

#include <algorithm>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace sluice::broker {

ConnectionRegistry::ConnectionRegistry(const boost::asio::any_io_executor& executor, int64_t max_connections,
                                       int64_t max_connections_per_address, int64_t max_idle_ms)
    : room_(executor, Clock::time_point::max()),
      max_connections_(max_connections),
      max_connections_per_address_(max_connections_per_address),
      max_idle_ms_(max_idle_ms) {}

bool ConnectionRegistry::address_full(const std::string& address) const {
  auto it = per_address_.find(address);
  return it != per_address_.end() && it->second >= max_connections_per_address_;
}

ConnectionRegistry::Handle ConnectionRegistry::add(std::string address) {
  ++per_address_[address];
  return connections_.insert(connections_.end(),
                             std::make_shared<Connection>(Connection{nullptr, std::move(address), Clock::now()}));
}

void ConnectionRegistry::remove(Handle handle) {
  auto it = per_address_.find((*handle)->address);
  if (it != per_address_.end() && --it->second <= 0) per_address_.erase(it);
  connections_.erase(handle);
  room_.cancel();
}

boost::asio::awaitable<void> ConnectionRegistry::wait_for_room() {
  while (full()) {
    room_.expires_at(Clock::time_point::max());
    boost::system::error_code ignored;
    co_await room_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
  }
}

size_t ConnectionRegistry::close_idle(Clock::time_point now) {
  size_t closed = 0;
  const auto limit = std::chrono::milliseconds(max_idle_ms_);
  for (const auto& entry : connections_) {
    Connection& c = *entry;
    if (!c.socket || c.requests_in_handling > 0 || now - c.last_active <= limit || !c.socket->is_open()) continue;
    boost::system::error_code ignored;
    c.socket->shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    c.socket->close(ignored);
    ++closed;
  }
  return closed;
}

void ConnectionRegistry::close_all() {
  for (const auto& entry : connections_) {
    Connection& c = *entry;
    if (!c.socket) continue;
    boost::system::error_code ignored;
    c.socket->shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    c.socket->close(ignored);
  }
}

int64_t connections_allowed_by_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return INT64_MAX;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  if (limit.rlim_cur == RLIM_INFINITY) return INT64_MAX;
  const int64_t files = static_cast<int64_t>(limit.rlim_cur);
  const int64_t kept = std::max<int64_t>(64, files / 4);
  return std::max<int64_t>(1, files - kept);
}

}  // namespace sluice::broker
