#pragma once
// evrouter subcommands. Each takes the arguments after its name and returns the process exit code.

#include <string>
#include <vector>

namespace evr::cli {

using Args = std::vector<std::string>;

int serve(const Args& args);            // evrouter serve --config FILE
int listeners(const Args& args);        // evrouter listeners --config FILE
int validate(const Args& args);         // evrouter validate [--config FILE] [paths...]
int test_pattern(const Args& args);     // evrouter test-pattern PATTERN EVENT
int test_connection(const Args& args);  // evrouter test-connection NAME
int tail(const Args& args);             // evrouter tail [--flow F] [--pattern P]
int version(const Args& args);
int backup(const Args& args);   // evrouter backup [--config FILE] --output PATH (SQLite store)
int restore(const Args& args);  // evrouter restore [--config FILE] --from PATH (daemon stopped)
// Against a running daemon's admin API (operations.cpp).
int flows(const Args& args);    // evrouter flows list|enable|disable|reset|rotate-listener
int events(const Args& args);   // evrouter events list|get
int dlq(const Args& args);      // evrouter dlq list|get|replay|discard
int schemas(const Args& args);  // evrouter schemas list|get
int replay(const Args& args);   // evrouter replay --flow F --from T --to T [--destination D] [--dry-run]

}  // namespace evr::cli
