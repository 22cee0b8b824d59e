#include "evrouter/destination/retry.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <string>

namespace evr::destination {

Classifier::Classifier() {
  for (std::size_t s = 0; s < table_.size(); ++s) {
    if (s >= 200 && s < 300) {
      table_[s] = Verdict::success;
    } else if (s >= 500 || s == 408 || s == 425 || s == 429) {
      table_[s] = Verdict::retry;
    } else {
      table_[s] = Verdict::fail;
    }
  }
}

Classifier::Classifier(const config::Responses& responses) : Classifier() {
  const std::pair<const std::vector<std::string>*, Verdict> lists[] = {{&responses.success, Verdict::success},
                                                                       {&responses.retry, Verdict::retry},
                                                                       {&responses.fail, Verdict::fail}};
  // Classes first, then codes: a code wins over a class whatever list each is in.
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& [list, verdict] : lists) {
      for (const auto& entry : *list) {
        if (entry.size() != 3 || entry[0] < '1' || entry[0] > '5') continue;  // the loader checked them
        const bool is_class = entry[1] == 'x' || entry[1] == 'X';
        if (is_class != (pass == 0)) continue;
        const int first = entry[0] - '0';
        if (is_class) {
          for (int s = first * 100; s < first * 100 + 100; ++s) table_[static_cast<std::size_t>(s)] = verdict;
        } else {
          int code = 0;
          std::from_chars(entry.data(), entry.data() + entry.size(), code);
          table_[static_cast<std::size_t>(code)] = verdict;
        }
      }
    }
  }
}

Verdict classify(const http::Result& result) {
  static const Classifier builtin;
  return builtin(result);
}

std::optional<int64_t> parse_retry_after(std::string_view value, int64_t now_ms) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    int64_t seconds = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec != std::errc() || p != value.data() + value.size()) return std::nullopt;
    return std::min<int64_t>(seconds, 365LL * 24 * 3600) * 1000;
  }
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
  std::tm tm{};
  const std::string s(value);
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  const int64_t at_ms = static_cast<int64_t>(timegm(&tm)) * 1000;
  return std::max<int64_t>(0, at_ms - now_ms);
}

int64_t backoff_ms(const config::RetryPolicy& policy, int attempts, double unit_random) {
  const double base = static_cast<double>(policy.backoff_base.count());
  const double cap = static_cast<double>(policy.backoff_cap.count());
  const int exp = std::clamp(attempts - 1, 0, 40);
  double delay = std::min(cap, base * std::ldexp(1.0, exp));
  const double jitter = std::clamp(policy.jitter, 0.0, 1.0);
  delay *= 1.0 + jitter * (2.0 * unit_random - 1.0);
  return std::max<int64_t>(1, static_cast<int64_t>(delay));
}

}  // namespace evr::destination
