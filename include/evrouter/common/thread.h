#pragma once
// Names the calling thread as `top -H`, `ps -L`, perf and debuggers show it ("evr-" + role, cut to the
// kernel's 15 characters): which of the daemon's threads uses the CPU is then visible without a profiler.

#include <string_view>

namespace evr {

void name_this_thread(std::string_view role);

}  // namespace evr
