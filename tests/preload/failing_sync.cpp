// A preloaded library (LD_PRELOAD) for process tests: fsync and fdatasync fail with EIO while the file named
// by EVR_TEST_FAIL_SYNC_FILE exists, as on a disk whose writeback failed; otherwise they are the C library's.
// Built without sanitizers (tests skip it under them: a sanitizer runtime must come first in the process).
#include <dlfcn.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace {

bool failing() {
  const char* path = std::getenv("EVR_TEST_FAIL_SYNC_FILE");
  return path != nullptr && ::access(path, F_OK) == 0;
}

template <typename Fn>
Fn real(const char* name) {
  return reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, name));
}

}  // namespace

extern "C" int fdatasync(int fd) {
  static const auto next = real<int (*)(int)>("fdatasync");
  if (failing()) {
    errno = EIO;
    return -1;
  }
  return next(fd);
}

extern "C" int fsync(int fd) {
  static const auto next = real<int (*)(int)>("fsync");
  if (failing()) {
    errno = EIO;
    return -1;
  }
  return next(fd);
}
