#pragma once
// How a destination treats a response: success, retry later, or give up; and when to try again.

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "evrouter/config/config.h"
#include "evrouter/http/client.h"

namespace evr::destination {

enum class Verdict : std::uint8_t { success, retry, fail };

// The verdict on each response of a destination (config::Responses). Built-in: 2xx success; network
// errors, timeouts, 5xx, 408, 425 and 429 retry; anything else (1xx, 3xx, other 4xx) fail. Configured
// codes win over configured classes, which win over the built-in verdict. Network errors always retry.
class Classifier {
 public:
  Classifier();  // built-in verdicts only
  explicit Classifier(const config::Responses& responses);

  Verdict operator()(const http::Result& result) const {
    return result.ok() ? status(result.response.status) : Verdict::retry;
  }
  Verdict status(int status) const {
    return status >= 0 && status < static_cast<int>(table_.size()) ? table_[static_cast<std::size_t>(status)]
                                                                   : Verdict::fail;
  }

 private:
  std::array<Verdict, 600> table_;
};

// The built-in classifier.
Verdict classify(const http::Result& result);

// Retry-After as delta-seconds or an HTTP-date; the wait in milliseconds from `now_ms`, or nullopt.
std::optional<int64_t> parse_retry_after(std::string_view value, int64_t now_ms);

// Exponential backoff with jitter after `attempts` attempts: base * 2^(attempts-1), capped, then spread by
// +/- jitter. `unit_random` is uniform in [0, 1).
int64_t backoff_ms(const config::RetryPolicy& policy, int attempts, double unit_random);

}  // namespace evr::destination
