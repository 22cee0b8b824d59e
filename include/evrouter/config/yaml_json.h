#pragma once
// YAML to JSON, typed per the YAML 1.2 core schema, so that patterns and events can be written in either.
//
// Plain scalars: null, Null, NULL, ~ and empty -> null; true/True/TRUE/false/False/FALSE -> booleans;
// 123, -7, 0o17, 0x1F -> integers; 1.5, -2e3, .inf, .nan -> floats; anything else (yes, no, on, off,
// 010x...) -> string. Quoted scalars ('x', "x") and !!str-tagged scalars are always strings.
// Mappings -> objects (a repeated key keeps its last value), sequences -> arrays.

#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace evr::config {

// The JSON value of a scalar's text: resolved per the core schema when `plain`, else a string.
nlohmann::json yaml_scalar_to_json(const std::string& text, bool plain);

// A whole YAML node (as loaded by yaml-cpp) as JSON.
nlohmann::json yaml_to_json(const YAML::Node& node);

// Parses JSON, or YAML when the text is not valid JSON. Throws std::invalid_argument whose message
// starts with "line:column: " (1-based) on invalid input, or says the document is empty.
nlohmann::json parse_json_or_yaml(std::string_view text);

}  // namespace evr::config
