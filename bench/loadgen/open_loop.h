#pragma once
// An open-loop HTTP/1.1 load generator: requests are scheduled at a fixed rate, independently of the
// answers, and each latency is measured from the request's scheduled time (so a stalled server is not
// hidden by the generator waiting for it: no coordinated omission). Requests wait for an idle keep-alive
// connection when all are busy; that wait counts in the latency.

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "loadgen/latency.h"

namespace evr::bench {

struct Target {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string path = "/";
  std::vector<std::pair<std::string, std::string>> headers;
  // Headers whose value is "<id_prefix>-<n>", n counting requests: unique ids for deduplicating servers.
  std::vector<std::string> id_headers;
  std::string id_prefix = "req";
  std::string body;
  // Optional delivery sink on 127.0.0.1:sink_port, served by a thread of its own (so the sender's work does
  // not delay the sink's reads): answers 200 to every request and records when the request carrying each
  // id (in sink_id_header) arrived, to measure the latency a router adds between its answer to a request and
  // its delivery of that request's event. 0: no sink.
  uint16_t sink_port = 0;
  std::string sink_id_header = "X-Correlation-Id";
};

struct Plan {
  double rate = 100;  // requests per second, evenly spaced
  std::chrono::milliseconds duration{10000};
  int connections = 16;
  std::chrono::milliseconds drain{10000};      // time allowed for the last answers once the schedule ends
  std::chrono::milliseconds sink_wait{10000};  // then for the sink to receive what was answered 2xx
};

struct Report {
  uint64_t scheduled = 0;
  uint64_t ok = 0;          // 2xx answers
  uint64_t non2xx = 0;      // other answers
  uint64_t errors = 0;      // connection, write or read failures
  uint64_t unfinished = 0;  // still waiting when the drain time ran out (counted in latency as a floor)
  double elapsed_s = 0;     // from the first scheduled send to the last answer
  Latencies latency;        // scheduled time -> whole answer read
  Latencies send_lag;       // scheduled time -> write started (generator or connection backlog)
  // With a sink:
  uint64_t sink_requests = 0;  // requests the sink received
  uint64_t sink_matched = 0;   // first arrivals of ids answered 2xx
  uint64_t sink_repeated = 0;  // arrivals of an id already received (at-least-once redeliveries)
  Latencies added;             // 2xx answer read -> the sink's first arrival of that id (0 when earlier)
};

// Runs the plan against the target on the calling thread. Throws when the target cannot be reached.
Report run_open_loop(const Target& target, const Plan& plan);

}  // namespace evr::bench
