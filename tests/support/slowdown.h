#pragma once
// How much slower this build runs than the plain one, for the few tests that check a time limit (a
// latency, a deadline, "answered in parallel, not one after another"). The plain build keeps the exact
// limits the tests prove; a sanitizer build (scripts/sanitize.sh) runs the same code several times slower
// and scales the limits by slowdown(). The daemons the tests start as child processes are built the same
// way, so the factor holds for them too.
//
// Detected at compile time: clang's __has_feature, gcc's __SANITIZE_*__ macros, or -DEVROUTER_SANITIZED=1.

#include <chrono>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EVROUTER_TEST_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define EVROUTER_TEST_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(EVROUTER_TEST_ASAN)
#define EVROUTER_TEST_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__) && !defined(EVROUTER_TEST_TSAN)
#define EVROUTER_TEST_TSAN 1
#endif

namespace evr::test {

// True under AddressSanitizer (whose quarantine and shadow memory change a process's RSS).
constexpr bool asan_build() {
#if defined(EVROUTER_TEST_ASAN)
  return true;
#else
  return false;
#endif
}

constexpr bool tsan_build() {
#if defined(EVROUTER_TEST_TSAN)
  return true;
#else
  return false;
#endif
}

// 1 in the plain build; ASan + UBSan at -O1 run the daemon about 2-3 times slower, TSan 5-15 times.
constexpr int slowdown() {
  if (tsan_build()) return 10;
  if (asan_build()) return 4;
#if defined(EVROUTER_SANITIZED) && EVROUTER_SANITIZED
  return 4;
#else
  return 1;
#endif
}

// A time limit of the plain build, scaled for this one.
template <class Rep, class Period>
constexpr std::chrono::duration<Rep, Period> scaled(std::chrono::duration<Rep, Period> limit) {
  return limit * slowdown();
}

}  // namespace evr::test
