// The admin HTTP server (admin.listeners, default http://127.0.0.1:9644): on
// a thread and an io_context of its own, so that nothing it does (a slow
// scraper, a flood of connections) can stall the Kafka listeners. It reads the
// broker only through thread-safe callbacks.
//
//   GET /v1/health/live    200 while the process serves HTTP
//   GET /v1/health/ready   200 once the node serves (registered, caught up,
//                          listeners open), else 503 with the reason
//   GET /metrics           Prometheus's text exposition format
//   GET /v1/brokers, /v1/topics, /v1/partitions, /v1/groups, /v1/controller
//                          JSON views (METRICS.md)
//
// A node may add actions (POST; the federation endpoint's topic moves). Other
// paths get 404 and other methods 405, as JSON. Requests are bounded
// (8 KiB of headers, no body), so are connections (16 at once, 10 s to send
// a request).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::broker {

class AdminServer {
 public:
  struct Readiness {
    bool ready = false;
    std::string reason;  // why not, when not
  };
  struct Handlers {
    std::function<std::string()> metrics;   // the /metrics body
    std::function<Readiness()> readiness;
    // The JSON views (GET /v1/brokers, ...): which paths are views, and a
    // view's body (nullopt while the node has no status to show yet: 503).
    std::function<bool(std::string_view path)> is_view = nullptr;
    std::function<std::optional<std::string>(std::string_view path)> view = nullptr;
    // Actions (POST, parameters in the query string, no body): the HTTP
    // status and JSON body of the action at `target` (path and query), or
    // nullopt for a target that is no action. Called on the admin thread.
    struct ActionResult {
      int status = 200;
      std::string body;
    };
    std::function<std::optional<ActionResult>(std::string_view target)> action = nullptr;
  };

  // Binds host:port (port 0: any free one); throws std::runtime_error naming
  // the address when it cannot. Serves from then on, until destroyed.
  AdminServer(const std::string& host, uint16_t port, Handlers handlers);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  uint16_t port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::broker
