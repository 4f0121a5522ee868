// A one-shot event a coroutine can wait on with a deadline: fetch long polls
// wait for new data, produce with acks=all waits for the group commit.
// Single-threaded: set() and wait_until() run on the io_context's thread.
#pragma once

#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace sluice::broker {

class AsyncEvent {
 public:
  explicit AsyncEvent(const boost::asio::any_io_executor& executor) : timer_(executor) {}

  void set() {
    set_ = true;
    timer_.cancel();
  }
  bool is_set() const { return set_; }

  // Returns when set() is called or the deadline passes, whichever is first.
  boost::asio::awaitable<void> wait_until(boost::asio::steady_timer::time_point deadline) {
    if (set_) co_return;
    timer_.expires_at(deadline);
    boost::system::error_code ignored;
    co_await timer_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
  }

 private:
  boost::asio::steady_timer timer_;
  bool set_ = false;
};

}  // namespace sluice::broker
