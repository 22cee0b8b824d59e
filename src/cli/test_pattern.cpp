// evrouter test-pattern PATTERN EVENT: does an EventBridge pattern match an event? Each argument is a file
// or - (standard input, at most once), holding JSON or YAML. Prints true (exit 0) or false (exit 1); exit 2
// when the pattern or the event is invalid.
#include <cctype>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "evrouter/config/yaml_json.h"
#include "evrouter/pattern/pattern.h"

namespace evr::cli {
namespace {

void test_pattern_usage() {
  std::fputs(
      "usage: evrouter test-pattern PATTERN EVENT\n"
      "  PATTERN and EVENT are files (JSON or YAML), or - for standard input (at most one).\n"
      "  Prints true and exits 0 when the event matches, prints false and exits 1 when it does not,\n"
      "  exits 2 when the pattern or the event is invalid.\n",
      stderr);
}

bool read_input(const std::string& name, std::string& text, std::string& error) {
  std::ostringstream ss;
  if (name == "-") {
    ss << std::cin.rdbuf();
    text = ss.str();
    return true;
  }
  std::ifstream f(name, std::ios::binary);
  if (!f) {
    error = "cannot read " + name;
    return false;
  }
  ss << f.rdbuf();
  text = ss.str();
  return true;
}

// Reads and parses one argument; reports on stderr and returns false on a problem.
bool load(const std::string& what, const std::string& name, nlohmann::json& out) {
  std::string text, error;
  if (!read_input(name, text, error)) {
    std::fprintf(stderr, "evrouter test-pattern: %s: %s\n", what.c_str(), error.c_str());
    return false;
  }
  const std::string label = name == "-" ? "<stdin>" : name;
  try {
    out = config::parse_json_or_yaml(text);
  } catch (const std::invalid_argument& e) {
    // "file:line:column: message" when the parser knows the position.
    const bool positioned = std::isdigit(static_cast<unsigned char>(e.what()[0])) != 0;
    std::fprintf(stderr, "evrouter test-pattern: %s: %s:%s%s\n", what.c_str(), label.c_str(),
                 positioned ? "" : " ", e.what());
    return false;
  }
  if (!out.is_object()) {
    std::fprintf(stderr, "evrouter test-pattern: %s: %s: expected a JSON object, found %s\n", what.c_str(),
                 label.c_str(), out.type_name());
    return false;
  }
  return true;
}

}  // namespace

int test_pattern(const Args& args) {
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
    test_pattern_usage();
    return 0;
  }
  if (args.size() != 2) {
    std::fprintf(stderr, "evrouter test-pattern: expected 2 arguments (PATTERN EVENT), got %zu\n",
                 args.size());
    test_pattern_usage();
    return 2;
  }
  if (args[0] == "-" && args[1] == "-") {
    std::fprintf(stderr, "evrouter test-pattern: standard input (-) can be used for only one argument\n");
    return 2;
  }
  nlohmann::json pattern_json, event;
  if (!load("pattern", args[0], pattern_json)) return 2;
  if (!load("event", args[1], event)) return 2;
  try {
    const auto p = pattern::Pattern::compile(pattern_json);
    const bool matched = p.matches(event);
    std::printf("%s\n", matched ? "true" : "false");
    return matched ? 0 : 1;
  } catch (const pattern::PatternError& e) {
    std::fprintf(stderr, "evrouter test-pattern: pattern: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "evrouter test-pattern: %s\n", e.what());
    return 2;
  }
}

}  // namespace evr::cli
