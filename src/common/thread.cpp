#include "evrouter/common/thread.h"

#include <pthread.h>

#include <string>

namespace evr {

void name_this_thread(std::string_view role) {
  std::string name = "evr-";
  name.append(role.substr(0, 11));  // 15 characters and the terminator
  pthread_setname_np(pthread_self(), name.c_str());
}

}  // namespace evr
