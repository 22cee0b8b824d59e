#include "http/accept_errors.h"

#include <algorithm>
#include <cerrno>

#include "evrouter/common/log.h"
#include "evrouter/metrics/metrics.h"

namespace evr::http {
namespace {

constexpr std::chrono::milliseconds kFirstPause{10};
constexpr std::chrono::milliseconds kLongestPause{1000};
constexpr std::chrono::seconds kReportEvery{10};

// The metric's reason: a shortage that pauses accepting, or anything else (a connection reset before it
// was accepted, a firewall's EPERM), which does not.
const char* reason_of(const boost::system::error_code& ec) {
  if (ec.category() != boost::system::system_category()) return "other";
  switch (ec.value()) {
    case EMFILE:
    case ENFILE:
      return "file_descriptors";
    case ENOBUFS:
    case ENOMEM:
      return "memory";
    default:
      return "other";
  }
}

}  // namespace

AcceptErrors::AcceptErrors(std::string server) : server_(std::move(server)) {}

std::chrono::milliseconds AcceptErrors::failed(const boost::system::error_code& ec) {
  const char* reason = reason_of(ec);
  metrics::Registry::global()
      .counter(
          "evrouter_accept_errors_total",
          "Failed accepts of client connections, by server (ingest, admin) and reason (file_descriptors, "
          "memory: accepting pauses; other).",
          {{"server", server_}, {"reason", reason}})
      .inc();
  const bool shortage = std::string_view(reason) != "other";
  pause_ = shortage ? std::clamp(pause_ * 2, kFirstPause, kLongestPause) : std::chrono::milliseconds(0);
  ++unreported_;
  const auto now = std::chrono::steady_clock::now();
  if (last_report_ == std::chrono::steady_clock::time_point{} || now - last_report_ >= kReportEvery) {
    log::warn(shortage ? "accept failed; pausing new connections" : "accept failed",
              {{"server", server_},
               {"error", ec.message()},
               {"failures", std::to_string(unreported_)},
               {"pause_ms", std::to_string(pause_.count())}});
    last_report_ = now;
    unreported_ = 0;
  }
  return pause_;
}

}  // namespace evr::http
