// evrouter: the event router daemon and its command line.
#include <cstdio>
#include <string>
#include <string_view>

#include "cli/commands.h"

namespace {

void usage() {
  std::fputs(
      "usage: evrouter <command> [options]\n"
      "\n"
      "commands:\n"
      "  serve --config FILE          run the daemon\n"
      "  listeners --config FILE      print each flow's listener URL (<flow>\\t<url>)\n"
      "  validate [--config FILE] [FILE...]\n"
      "                               check config, connections and flows; exit 0 when valid\n"
      "  test-pattern PATTERN EVENT   match an EventBridge pattern against an event (files or -)\n"
      "  test-connection NAME [--probe PATH]\n"
      "                               check a connection: DNS, TCP, TLS, probe request\n"
      "  tail [--flow F] [--pattern P] print events and delivery outcomes as they happen\n"
      "  flows list|enable|disable|reset|rotate-listener [NAME]\n"
      "                               a running daemon's flows (admin API: --admin-url, --token)\n"
      "  events list|get              look up events received by a running daemon\n"
      "  dlq list|get|replay|discard  dead letters of a running daemon\n"
      "  schemas list|get SOURCE TYPE payload schemas a running daemon inferred (--format json-schema)\n"
      "  replay --flow F --from T --to T [--destination D] [--dry-run]\n"
      "                               re-run a flow's events of a time window through its current "
      "definition\n"
      "  backup --config FILE --output PATH\n"
      "                               a consistent copy of the SQLite store, while the daemon runs\n"
      "  restore --config FILE --from PATH\n"
      "                               put a backup in place as the store (the daemon stopped)\n"
      "  version                      print the version\n",
      stderr);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage();
    return 2;
  }
  const std::string_view cmd = argv[1];
  evr::cli::Args args(argv + 2, argv + argc);
  if (cmd == "serve") return evr::cli::serve(args);
  if (cmd == "listeners") return evr::cli::listeners(args);
  if (cmd == "validate") return evr::cli::validate(args);
  if (cmd == "test-pattern") return evr::cli::test_pattern(args);
  if (cmd == "test-connection") return evr::cli::test_connection(args);
  if (cmd == "tail") return evr::cli::tail(args);
  if (cmd == "flows") return evr::cli::flows(args);
  if (cmd == "events") return evr::cli::events(args);
  if (cmd == "dlq") return evr::cli::dlq(args);
  if (cmd == "schemas") return evr::cli::schemas(args);
  if (cmd == "replay") return evr::cli::replay(args);
  if (cmd == "backup") return evr::cli::backup(args);
  if (cmd == "restore") return evr::cli::restore(args);
  if (cmd == "version" || cmd == "--version") return evr::cli::version(args);
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    usage();
    return 0;
  }
  std::fprintf(stderr, "evrouter: unknown command '%s'\n", argv[1]);
  usage();
  return 2;
}
