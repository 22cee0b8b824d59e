#pragma once
// How a destination treats a response: success, retry later, or give up; and when to try again.

#include <cstdint>
#include <optional>
#include <string_view>

#include "evrouter/config/config.h"
#include "evrouter/http/client.h"

namespace evr::destination {

enum class Verdict { success, retry, fail };

// 2xx: success. Network errors, timeouts, 5xx, 408 and 429: retry. Anything else (3xx, other 4xx): fail.
Verdict classify(const http::Result& result);

// Retry-After as delta-seconds or an HTTP-date; the wait in milliseconds from `now_ms`, or nullopt.
std::optional<int64_t> parse_retry_after(std::string_view value, int64_t now_ms);

// Exponential backoff with jitter after `attempts` attempts: base * 2^(attempts-1), capped, then spread by
// +/- jitter. `unit_random` is uniform in [0, 1).
int64_t backoff_ms(const config::RetryPolicy& policy, int attempts, double unit_random);

}  // namespace evr::destination
