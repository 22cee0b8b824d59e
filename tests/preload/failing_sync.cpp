// A preloaded library (LD_PRELOAD) for process tests: fsync and fdatasync fail with EIO while the file named
// by EVR_TEST_FAIL_SYNC_FILE exists, as on a disk whose writeback failed; otherwise they are the C library's.
// Built without sanitizers (tests skip it under them: a sanitizer runtime must come first in the process).
#include <dlfcn.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace {

using SyncFn = int (*)(int);

SyncFn next_sync(const char* name) {
  return reinterpret_cast<SyncFn>(::dlsym(RTLD_NEXT, name));
}

// EIO while the trigger file exists, else the C library's function.
int sync_or_fail(SyncFn next, int fd) {
  const char* trigger = std::getenv("EVR_TEST_FAIL_SYNC_FILE");
  if (trigger != nullptr && ::access(trigger, F_OK) == 0) {
    errno = EIO;
    return -1;
  }
  return next(fd);
}

}  // namespace

extern "C" int fdatasync(int fd) {
  static const SyncFn next = next_sync("fdatasync");
  return sync_or_fail(next, fd);
}

extern "C" int fsync(int fd) {
  static const SyncFn next = next_sync("fsync");
  return sync_or_fail(next, fd);
}
