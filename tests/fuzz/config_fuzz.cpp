// libFuzzer target: the configuration and flow loader (src/config/loader.cpp). The input is split at the
// first NUL byte into a main config file and a flow file, written to a private temporary directory (the
// working directory while loading, so that `flows: [flow.yaml]` finds the flow; libFuzzer reads its corpus
// by relative paths, so the directory is left again after each input). Both are loaded as `evrouter validate`
// does (secrets not required), the flow file on its own too.
//
// Checked for every input: no crash, no sanitizer report, no exception escaping the loader; a result is
// either a config (no error diagnostic) or at least one error diagnostic; every diagnostic names a file,
// and one in either of the two fuzzed files has a 1-based line and column and reads "file:line:column: ".
//   scripts/fuzz.sh config [seconds]
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "evrouter/config/loader.h"

namespace {

namespace fs = std::filesystem;
using namespace evr::config;

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "config fuzz: %s\n", why.c_str());
  std::abort();
}

struct Dir {
  Dir() {
    std::string tmpl = (fs::temp_directory_path() / "evr-config-fuzz-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) fail("mkdtemp");
    path = fs::canonical(tmpl);
    ::setenv("EVR_FUZZ_SECRET", "fuzz-secret", 1);
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(instance->path, ec);
    });
    instance = this;
  }
  fs::path path;
  static inline Dir* instance = nullptr;
};

// Runs in `dir` for the lifetime of the object.
class InDir {
 public:
  explicit InDir(const fs::path& dir) : old_(fs::current_path()) { fs::current_path(dir); }
  ~InDir() { fs::current_path(old_); }
  InDir(const InDir&) = delete;
  InDir& operator=(const InDir&) = delete;

 private:
  fs::path old_;
};

void write(const fs::path& file, std::string_view text) {
  std::ofstream f(file, std::ios::binary | std::ios::trunc);
  f.write(text.data(), static_cast<std::streamsize>(text.size()));
}

void check(const std::vector<Diagnostic>& diagnostics, const fs::path& main, const fs::path& flow) {
  for (const auto& d : diagnostics) {
    if (d.where.file.empty()) fail("a diagnostic without a file: " + d.str());
    if (d.message.empty()) fail("a diagnostic without a message: " + d.str());
    const fs::path file(d.where.file);
    const bool ours = file == main || file == flow || file == main.filename() || file == flow.filename();
    if (!ours) continue;
    if (d.where.line < 1 || d.where.column < 1) fail("a diagnostic without line and column: " + d.str());
    const std::string prefix =
        d.where.file + ":" + std::to_string(d.where.line) + ":" + std::to_string(d.where.column) + ": ";
    if (d.str().rfind(prefix, 0) != 0) fail("a diagnostic not reading file:line:column: " + d.str());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Dir dir;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto nul = input.find('\0');
  const std::string_view main_text = input.substr(0, nul);
  const std::string_view flow_text =
      nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);
  const fs::path main = dir.path / "evrouter.yaml";
  const fs::path flow = dir.path / "flow.yaml";
  write(main, main_text);
  write(flow, flow_text);

  const InDir in_dir(dir.path);
  LoadOptions options;
  options.require_secrets = false;
  LoadResult result;
  try {
    result = load(main, options);
  } catch (const std::exception& e) {
    fail(std::string("load() threw: ") + e.what());
  }
  if (result.ok() != (result.errors() == 0)) fail("ok() disagrees with the error count");
  check(result.diagnostics, main, flow);

  std::vector<Diagnostic> diagnostics;
  std::optional<Flow> loaded;
  try {
    loaded = load_flow(flow, diagnostics, nullptr, options);
  } catch (const std::exception& e) {
    fail(std::string("load_flow() threw: ") + e.what());
  }
  bool error = false;
  for (const auto& d : diagnostics) error = error || d.severity == Diagnostic::Severity::error;
  if (loaded.has_value() == error) fail("load_flow() returned a flow with errors, or none without");
  check(diagnostics, main, flow);
  return 0;
}
