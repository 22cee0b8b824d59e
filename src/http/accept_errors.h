#pragma once
// What an accept loop does when accept() fails. The listening socket stays readable while connections wait
// in its backlog, so retrying at once after EMFILE (no file descriptor left) or ENOBUFS/ENOMEM fails again
// at once: a loop that logs and retries burns a CPU and floods the log. Here a resource shortage pauses
// accepting (10 ms, doubling to 1 s while it lasts) and a failure is logged at most once per 10 s with
// the count since the last report; every failure is counted on /metrics
// (evrouter_accept_errors_total{server, reason}).
//
// One per accept loop, used on that loop's thread only.

#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstdint>
#include <string>

namespace evr::http {

class AcceptErrors {
 public:
  explicit AcceptErrors(std::string server);  // "ingest", "admin": the metric's and the log's label

  // accept() failed with `ec`: how long to wait before accepting again (zero: at once).
  std::chrono::milliseconds failed(const boost::system::error_code& ec);
  // accept() succeeded: the next shortage starts from the shortest pause again.
  void succeeded() { pause_ = std::chrono::milliseconds(0); }

 private:
  std::string server_;
  std::chrono::milliseconds pause_{0};
  std::chrono::steady_clock::time_point last_report_{};
  uint64_t unreported_ = 0;
};

}  // namespace evr::http
