// Temporary: commands not written yet (removed as src/cli/serve.cpp lands).
#include "cli/commands.h"
namespace evr::cli {
int serve(const Args&) { return 2; }
int listeners(const Args&) { return 2; }
int version(const Args&) { return 0; }
}  // namespace evr::cli
