#pragma once
// ${NAME} and ${NAME:-default} expansion from the environment, applied to every scalar in config files.

#include <optional>
#include <string>
#include <string_view>

namespace evr::config {

// Expands ${NAME} (error when NAME is unset), ${NAME:-default} (default when NAME is unset or empty) and
// the escape $${ (a literal "${"). A '$' not followed by '{' is kept as is. On failure returns nullopt
// and sets `error` ("environment variable X is not set", "unterminated ${ ...", ...).
std::optional<std::string> expand_env(std::string_view text, std::string& error);

}  // namespace evr::config
