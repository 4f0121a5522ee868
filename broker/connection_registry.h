// The client connections this broker serves, and the limits on them: how many
// in all (max.connections, and what the open-file limit leaves after the
// broker's own files), how many from one address (max.connections.per.ip),
// and how long one may sit idle (connections.max.idle.ms). Shutdown and the
// idle sweep close connections through it. Network thread only.
#pragma once

#include <chrono>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

namespace sluice::broker {

class ConnectionRegistry {
 public:
  using Clock = std::chrono::steady_clock;

  // One connection's entry; the connection keeps it up to date.
  struct Connection {
    boost::asio::ip::tcp::socket* socket;  // set by the connection once it runs
    std::string address;  // the peer's IP address
    Clock::time_point last_active;
    int requests_in_handling = 0;  // a parked fetch or join is not idleness

    void touch() { last_active = Clock::now(); }
  };
  // Entries are shared with their connection's coroutine: at shutdown the
  // io_context destroys coroutines still in a request after the registry is
  // gone, and their clean-up still writes to their entry.
  using Handle = std::list<std::shared_ptr<Connection>>::iterator;

  // `max_connections` already lowered to what the open-file limit allows.
  ConnectionRegistry(const boost::asio::any_io_executor& executor, int64_t max_connections,
                     int64_t max_connections_per_address, int64_t max_idle_ms);

  int64_t max_connections() const { return max_connections_; }
  bool full() const { return static_cast<int64_t>(connections_.size()) >= max_connections_; }
  // True if one more connection from `address` would pass max.connections.per.ip.
  bool address_full(const std::string& address) const;

  Handle add(std::string address);
  void remove(Handle handle);

  // Returns once a connection has closed (or at once if there is room).
  boost::asio::awaitable<void> wait_for_room();

  // Closes the connections idle for longer than connections.max.idle.ms;
  // returns how many. Their coroutines see the socket closed and end.
  size_t close_idle(Clock::time_point now);
  int64_t max_idle_ms() const { return max_idle_ms_; }

  void close_all();

 private:
  std::list<std::shared_ptr<Connection>> connections_;
  std::unordered_map<std::string, int64_t> per_address_;
  boost::asio::steady_timer room_;  // cancelled when a connection closes
  const int64_t max_connections_;
  const int64_t max_connections_per_address_;
  const int64_t max_idle_ms_;
};

// Raises this process's open-file limit to its hard limit and returns how many
// connections it leaves room for once a quarter of it (at least 64) is kept
// for the broker's own segment, index and state files.
int64_t connections_allowed_by_file_limit();

}  // namespace sluice::broker
