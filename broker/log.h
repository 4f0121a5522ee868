// Minimal leveled logging to stderr: one line per event, with a UTC timestamp.
#pragma once

#include <sstream>
#include <string>

namespace sluice::broker {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

void set_log_level(LogLevel level);
bool log_enabled(LogLevel level);
void log_line(LogLevel level, const std::string& message);

}  // namespace sluice::broker

// Usage: SLUICE_LOG(kInfo, "listening on " << host << ":" << port);
#define SLUICE_LOG(level, stream_expr)                                            \
  do {                                                                            \
    if (::sluice::broker::log_enabled(::sluice::broker::LogLevel::level)) {       \
      std::ostringstream sluice_log_os_;                                          \
      sluice_log_os_ << stream_expr;                                              \
      ::sluice::broker::log_line(::sluice::broker::LogLevel::level, sluice_log_os_.str()); \
    }                                                                             \
  } while (0)
