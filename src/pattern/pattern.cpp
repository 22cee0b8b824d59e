// EventBridge event patterns: compiler (validation + normalisation) and tree matcher.
//
// A pattern compiles into a tree of Nodes. A Node holds the fields it names (each either a leaf with
// alternatives, a child Node, or both) and its $or groups. Dotted keys ("a.b") are folded into nested
// Nodes at compile time, so {"a.b": [..]} and {"a": {"b": [..]}} compile to the same tree.
// Matching walks the event alongside the tree; an event array met by a child Node is matched element by
// element, so fields of one object pattern must all come from the same array element (array consistency).

#include "evrouter/pattern/pattern.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string_view>
#include <vector>

#include "pattern/cidr.h"
#include "pattern/wildcard.h"

namespace evr::pattern {
namespace detail {

using json = nlohmann::json;

enum class Op : uint8_t {
  exact_string,
  exact_number,
  exact_bool,
  exact_null,
  prefix,
  prefix_ic,
  suffix,
  suffix_ic,
  equals_ic,
  wildcard,
  numeric,
  numeric_string,
  exists,
  not_exists,
  cidr,
  anything_but_strings,  // value or list of strings
  anything_but_numbers,  // value or list of numbers
  anything_but_prefix,   // list of prefixes
  anything_but_suffix,
  anything_but_ic,  // equals-ignore-case list
  anything_but_wildcard,
};

struct Range {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = true;
  bool hi_open = true;
  bool contains(double v) const {
    if (lo_open ? !(v > lo) : !(v >= lo)) return false;
    if (hi_open ? !(v < hi) : !(v <= hi)) return false;
    return true;
  }
};

struct Matcher {
  explicit Matcher(Op o) : op(o) {}
  Op op;
  bool flag = false;
  std::string text;                 // exact / prefix / suffix / equals-ignore-case (lowered when _ic)
  json number;                      // exact_number
  Range range;                      // numeric
  std::vector<std::string> texts;   // anything-but lists (lowered for _ic)
  std::vector<json> numbers;        // anything-but numbers
  std::vector<Wildcard> wildcards;  // wildcard (one) / anything-but wildcard (list)
  std::optional<Cidr> cidr;
};

struct Node;

struct Field {
  std::string key;
  std::string dotted;                 // key + ".": event keys that spell a path with dots ("a.b")
  std::vector<Matcher> alternatives;  // empty when the field only has a child
  bool has_leaf = false;
  std::unique_ptr<Node> child;
};

struct Node {
  std::vector<Field> fields;
  std::vector<std::vector<Node>> ors;  // each group: at least one alternative must match
};

struct Compiled {
  Node root;
};

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw PatternError(path.empty() ? what : path + ": " + what);
}

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool iequals_lowered(std::string_view value, std::string_view lowered) {
  if (value.size() != lowered.size()) return false;
  for (std::size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lowered[i]) return false;
  }
  return true;
}

bool starts_with_ic(std::string_view value, std::string_view lowered) {
  return value.size() >= lowered.size() && iequals_lowered(value.substr(0, lowered.size()), lowered);
}

bool ends_with_ic(std::string_view value, std::string_view lowered) {
  return value.size() >= lowered.size() &&
         iequals_lowered(value.substr(value.size() - lowered.size()), lowered);
}

bool numbers_equal(const json& a, const json& b) {
  if (a.is_number_integer() && b.is_number_integer()) {
    if (a.is_number_unsigned() && b.is_number_unsigned()) return a.get<uint64_t>() == b.get<uint64_t>();
    if (!a.is_number_unsigned() && !b.is_number_unsigned()) return a.get<int64_t>() == b.get<int64_t>();
  }
  return a.get<double>() == b.get<double>();
}

// Parses a whole string as a decimal number (for numeric-string); no leading/trailing spaces.
std::optional<double> parse_number(std::string_view s) {
  if (s.empty() || s.size() > 64) return std::nullopt;
  char buf[65];
  std::copy(s.begin(), s.end(), buf);
  buf[s.size()] = '\0';
  // Decimal notation only: strtod would also take hex, "inf" and "nan".
  for (const char c : s) {
    if (!((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'))
      return std::nullopt;
  }
  char* end = nullptr;
  const double v = std::strtod(buf, &end);
  if (end != buf + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

// ---- compilation -------------------------------------------------------------------------------

const char* type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    default:
      return "a number";
  }
}

std::string quoted(const std::string& s) {
  return "\"" + s + "\"";
}

std::string string_operand(const json& v, const std::string& path, const char* op) {
  if (!v.is_string()) fail(path, std::string(op) + " takes a string, found " + type_name(v));
  return v.get<std::string>();
}

Wildcard compile_wildcard(const json& v, const std::string& path) {
  const auto s = string_operand(v, path, "wildcard");
  try {
    return Wildcard(s);
  } catch (const std::invalid_argument& e) {
    fail(path, std::string("wildcard: ") + e.what());
  }
}

Range compile_numeric(const json& v, const std::string& path, const char* op_name) {
  if (!v.is_array())
    fail(path, std::string(op_name) + " takes an array such as [\">\", 0, \"<=\", 5], found " + type_name(v));
  if (v.empty())
    fail(path, std::string(op_name) + " takes an array such as [\">\", 0, \"<=\", 5], found an empty array");
  Range r;
  bool has_lo = false;
  bool has_hi = false;
  std::size_t i = 0;
  while (i < v.size()) {
    if (!v[i].is_string())
      fail(path, std::string(op_name) + ": expected an operator (=, <, <=, >, >=) at position " +
                     std::to_string(i));
    const auto op = v[i].get<std::string>();
    if (op != "=" && op != "<" && op != "<=" && op != ">" && op != ">=") {
      fail(path, std::string(op_name) + ": unknown operator " + quoted(op) + " (expected =, <, <=, >, >=)");
    }
    if (i + 1 >= v.size() || !v[i + 1].is_number()) {
      fail(path, std::string(op_name) + ": " + quoted(op) + " must be followed by a number");
    }
    const double x = v[i + 1].get<double>();
    if (op == "=") {
      if (i != 0 || v.size() != 2)
        fail(path, std::string(op_name) + ": \"=\" cannot be combined with other terms");
      r.lo = r.hi = x;
      r.lo_open = r.hi_open = false;
      return r;
    }
    if (op[0] == '>') {
      if (has_lo || has_hi)
        fail(path, std::string(op_name) + ": a lower bound (> or >=) must come first and only once");
      has_lo = true;
      r.lo = x;
      r.lo_open = op.size() == 1;
    } else {
      if (has_hi) fail(path, std::string(op_name) + ": only one upper bound (< or <=) is allowed");
      if (!has_lo && i != 0) fail(path, std::string(op_name) + ": bad range");
      has_hi = true;
      r.hi = x;
      r.hi_open = op.size() == 1;
    }
    i += 2;
  }
  if (v.size() > 4)
    fail(path, std::string(op_name) + ": too many terms (at most a lower and an upper bound)");
  if (has_lo && has_hi && !(r.lo < r.hi))
    fail(path, std::string(op_name) + ": the lower bound must be less than the upper bound");
  return r;
}

// "prefix"/"suffix" operand: a non-empty-or-empty string, or {"equals-ignore-case": "..."}.
Matcher compile_affix(const json& v, const std::string& path, bool is_prefix) {
  const char* name = is_prefix ? "prefix" : "suffix";
  if (v.is_object()) {
    if (v.empty()) fail(path, std::string(name) + " takes a string or {\"equals-ignore-case\": \"...\"}");
    if (v.size() != 1) fail(path, "only one key is allowed in a match expression");
    const std::string& k = v.begin().key();
    const json& inner = v.begin().value();
    if (k != "equals-ignore-case")
      fail(path, std::string("unsupported ") + name + " form " + quoted(k) + " (only equals-ignore-case)");
    Matcher m(is_prefix ? Op::prefix_ic : Op::suffix_ic);
    m.text = lower_ascii(string_operand(inner, path, "equals-ignore-case"));
    return m;
  }
  Matcher m(is_prefix ? Op::prefix : Op::suffix);
  m.text = string_operand(v, path, name);
  return m;
}

std::vector<std::string> string_list(const json& v, const std::string& path, const char* what,
                                     bool allow_empty_strings) {
  std::vector<std::string> out;
  auto take = [&](const json& s) {
    if (!s.is_string())
      fail(path, std::string("anything-but ") + what + " takes strings, found " + type_name(s));
    if (!allow_empty_strings && s.get_ref<const std::string&>().empty()) {
      fail(path, std::string("anything-but ") + what + " cannot be empty");
    }
    out.push_back(s.get<std::string>());
  };
  if (v.is_array()) {
    if (v.empty()) fail(path, std::string("anything-but ") + what + " list cannot be empty");
    for (const auto& s : v) take(s);
  } else {
    take(v);
  }
  return out;
}

Matcher compile_anything_but(const json& v, const std::string& path) {
  if (v.is_string()) {
    Matcher m(Op::anything_but_strings);
    m.texts.push_back(v.get<std::string>());
    return m;
  }
  if (v.is_number()) {
    Matcher m(Op::anything_but_numbers);
    m.numbers.push_back(v);
    return m;
  }
  if (v.is_array()) {
    if (v.empty()) fail(path, "anything-but list cannot be empty");
    bool strings = false;
    bool numbers = false;
    for (const auto& e : v) {
      if (e.is_string()) {
        strings = true;
      } else if (e.is_number()) {
        numbers = true;
      } else {
        fail(path, std::string("anything-but list takes strings or numbers, found ") + type_name(e));
      }
    }
    if (strings && numbers) fail(path, "anything-but list mixes strings and numbers");
    Matcher m(strings ? Op::anything_but_strings : Op::anything_but_numbers);
    for (const auto& e : v) {
      if (strings) {
        m.texts.push_back(e.get<std::string>());
      } else {
        m.numbers.push_back(e);
      }
    }
    return m;
  }
  if (v.is_object()) {
    if (v.size() != 1) fail(path, "anything-but takes one operator, found " + std::to_string(v.size()));
    const std::string& k = v.begin().key();
    const json& inner = v.begin().value();
    if (k == "prefix" || k == "suffix") {
      if (inner.is_object()) fail(path, "anything-but " + k + " takes a string or a list of strings");
      Matcher m(k == "prefix" ? Op::anything_but_prefix : Op::anything_but_suffix);
      m.texts = string_list(inner, path, k.c_str(), false);
      return m;
    }
    if (k == "equals-ignore-case") {
      Matcher m(Op::anything_but_ic);
      m.texts = string_list(inner, path, "equals-ignore-case", true);
      for (auto& t : m.texts) t = lower_ascii(t);
      return m;
    }
    if (k == "wildcard") {
      Matcher m(Op::anything_but_wildcard);
      if (inner.is_array()) {
        if (inner.empty()) fail(path, "anything-but wildcard list cannot be empty");
        for (const auto& w : inner) m.wildcards.push_back(compile_wildcard(w, path));
      } else {
        m.wildcards.push_back(compile_wildcard(inner, path));
      }
      return m;
    }
    fail(path, "unsupported anything-but form " + quoted(k) +
                   " (expected a value, a list, prefix, suffix, equals-ignore-case or wildcard)");
  }
  fail(path,
       std::string("anything-but takes a string, a number, a list or an operator, found ") + type_name(v));
}

Matcher compile_operator(const json& obj, const std::string& path) {
  if (obj.empty()) fail(path, "empty match expression (expected an operator such as prefix or numeric)");
  if (obj.size() != 1)
    fail(path, "only one key is allowed in a match expression, found " + std::to_string(obj.size()));
  const std::string& op = obj.begin().key();
  const json& v = obj.begin().value();
  if (op == "prefix") return compile_affix(v, path, true);
  if (op == "suffix") return compile_affix(v, path, false);
  if (op == "equals-ignore-case") {
    Matcher m(Op::equals_ic);
    m.text = lower_ascii(string_operand(v, path, "equals-ignore-case"));
    return m;
  }
  if (op == "wildcard") {
    Matcher m(Op::wildcard);
    m.wildcards.push_back(compile_wildcard(v, path));
    return m;
  }
  if (op == "anything-but") return compile_anything_but(v, path);
  if (op == "numeric" || op == "numeric-string") {
    Matcher m(op == "numeric" ? Op::numeric : Op::numeric_string);
    m.range = compile_numeric(v, path, op.c_str());
    return m;
  }
  if (op == "exists") {
    if (!v.is_boolean()) fail(path, std::string("exists takes true or false, found ") + type_name(v));
    return Matcher(v.get<bool>() ? Op::exists : Op::not_exists);
  }
  if (op == "cidr") {
    const auto s = string_operand(v, path, "cidr");
    try {
      Matcher m(Op::cidr);
      m.cidr = Cidr::parse(s);
      return m;
    } catch (const std::invalid_argument& e) {
      fail(path, std::string("cidr: ") + e.what());
    }
  }
  fail(path,
       "unknown operator " + quoted(op) +
           " (expected prefix, suffix, equals-ignore-case, wildcard, anything-but, numeric, numeric-string, "
           "exists or cidr)");
}

std::vector<Matcher> compile_alternatives(const json& arr, const std::string& path) {
  if (arr.empty()) fail(path, "empty arrays are not allowed (list at least one value)");
  std::vector<Matcher> out;
  out.reserve(arr.size());
  for (const auto& v : arr) {
    switch (v.type()) {
      case json::value_t::string: {
        Matcher m(Op::exact_string);
        m.text = v.get<std::string>();
        out.push_back(std::move(m));
        break;
      }
      case json::value_t::boolean: {
        Matcher m(Op::exact_bool);
        m.flag = v.get<bool>();
        out.push_back(std::move(m));
        break;
      }
      case json::value_t::null:
        out.emplace_back(Op::exact_null);
        break;
      case json::value_t::object:
        out.push_back(compile_operator(v, path));
        break;
      case json::value_t::array:
        fail(path,
             "a match value must be a string, number, true, false, null or an operator object, found an "
             "array");
      default: {
        Matcher m(Op::exact_number);
        m.number = v;
        out.push_back(std::move(m));
      }
    }
  }
  return out;
}

Field& field_for(Node& node, const std::string& key) {
  for (auto& f : node.fields) {
    if (f.key == key) return f;
  }
  node.fields.emplace_back();
  node.fields.back().key = key;
  node.fields.back().dotted = key + ".";
  return node.fields.back();
}

void compile_object(const json& obj, Node& node, const std::string& path);

// Deep-merges `alt` into `base`: objects merge key by key, anything else in `alt` replaces what `base` has.
void merge_override(json& base, const json& alt) {
  for (const auto& [key, v] : alt.items()) {
    auto it = base.find(key);
    if (it != base.end() && it->is_object() && v.is_object()) {
      merge_override(*it, v);
    } else {
      base[key] = v;
    }
  }
}

// $or at one level: each alternative is the rest of this level with the alternative's fields laid over it
// (a field the alternative names replaces the same field of the enclosing level, as EventBridge does).
void compile_or(const json& obj, const json& v, Node& node, const std::string& path) {
  const std::string here = path.empty() ? "$or" : path + ".$or";
  if (!v.is_array())
    fail(here, std::string("$or takes an array of at least two patterns, found ") + type_name(v));
  if (v.size() < 2) fail(here, "$or takes an array of at least two patterns");
  json rest = obj;
  rest.erase("$or");
  std::vector<Node> group;
  group.reserve(v.size());
  for (const auto& alt : v) {
    if (!alt.is_object())
      fail(here, std::string("each $or alternative must be an object, found ") + type_name(alt));
    if (alt.empty()) fail(here, "empty objects are not allowed");
    json merged = rest;
    merge_override(merged, alt);
    Node n;
    compile_object(merged, n, path);
    group.push_back(std::move(n));
  }
  node.ors.push_back(std::move(group));
}

void compile_member(const std::string& key, const json& v, Node& node, const std::string& path) {
  const std::string here = path.empty() ? key : path + "." + key;
  // "a.b" names the same field as {"a": {"b": ...}}.
  if (const auto dot = key.find('.'); dot != std::string::npos && dot > 0 && dot + 1 < key.size()) {
    Field& f = field_for(node, key.substr(0, dot));
    if (!f.child) f.child = std::make_unique<Node>();
    compile_member(key.substr(dot + 1), v, *f.child,
                   path.empty() ? key.substr(0, dot) : path + "." + key.substr(0, dot));
    return;
  }
  if (v.is_array()) {
    Field& f = field_for(node, key);
    auto alts = compile_alternatives(v, here);
    f.alternatives.insert(f.alternatives.end(), std::make_move_iterator(alts.begin()),
                          std::make_move_iterator(alts.end()));
    f.has_leaf = true;
    return;
  }
  if (v.is_object()) {
    Field& f = field_for(node, key);
    if (!f.child) f.child = std::make_unique<Node>();
    compile_object(v, *f.child, here);
    return;
  }
  fail(here, std::string("expected an array of values or a nested object, found ") + type_name(v));
}

void compile_object(const json& obj, Node& node, const std::string& path) {
  if (obj.empty()) fail(path, "empty objects are not allowed");
  if (const auto it = obj.find("$or"); it != obj.end()) {
    // Validate this level's own fields once, with their real paths, before they are folded into each
    // alternative.
    for (const auto& [key, v] : obj.items()) {
      if (key != "$or") {
        Node scratch;
        compile_member(key, v, scratch, path);
      }
    }
    compile_or(obj, *it, node, path);
    return;
  }
  for (const auto& [key, v] : obj.items()) {
    compile_member(key, v, node, path);
  }
}

// ---- matching ------------------------------------------------------------------------------------

bool match_value(const Matcher& m, const json& v) {
  switch (m.op) {
    case Op::exact_string:
      return v.is_string() && v.get_ref<const std::string&>() == m.text;
    case Op::exact_number:
      return v.is_number() && numbers_equal(v, m.number);
    case Op::exact_bool:
      return v.is_boolean() && v.get<bool>() == m.flag;
    case Op::exact_null:
      return v.is_null();
    case Op::prefix:
      return v.is_string() && v.get_ref<const std::string&>().starts_with(m.text);
    case Op::suffix:
      return v.is_string() && v.get_ref<const std::string&>().ends_with(m.text);
    case Op::prefix_ic:
      return v.is_string() && starts_with_ic(v.get_ref<const std::string&>(), m.text);
    case Op::suffix_ic:
      return v.is_string() && ends_with_ic(v.get_ref<const std::string&>(), m.text);
    case Op::equals_ic:
      return v.is_string() && iequals_lowered(v.get_ref<const std::string&>(), m.text);
    case Op::wildcard:
      return v.is_string() && m.wildcards.front().matches(v.get_ref<const std::string&>());
    case Op::numeric:
      return v.is_number() && m.range.contains(v.get<double>());
    case Op::numeric_string: {
      if (v.is_number()) return m.range.contains(v.get<double>());
      if (!v.is_string()) return false;
      const auto n = parse_number(v.get_ref<const std::string&>());
      return n && m.range.contains(*n);
    }
    case Op::exists:
      return true;
    case Op::not_exists:
      return false;
    case Op::cidr:
      return v.is_string() && m.cidr->contains(v.get_ref<const std::string&>());
    case Op::anything_but_strings:
      return !v.is_string() ||
             std::find(m.texts.begin(), m.texts.end(), v.get_ref<const std::string&>()) == m.texts.end();
    case Op::anything_but_numbers:
      return !v.is_number() || std::none_of(m.numbers.begin(), m.numbers.end(),
                                            [&](const json& n) { return numbers_equal(v, n); });
    case Op::anything_but_prefix:
      return !v.is_string() || std::none_of(m.texts.begin(), m.texts.end(), [&](const std::string& p) {
        return v.get_ref<const std::string&>().starts_with(p);
      });
    case Op::anything_but_suffix:
      return !v.is_string() || std::none_of(m.texts.begin(), m.texts.end(), [&](const std::string& p) {
        return v.get_ref<const std::string&>().ends_with(p);
      });
    case Op::anything_but_ic:
      return !v.is_string() || std::none_of(m.texts.begin(), m.texts.end(), [&](const std::string& p) {
        return iequals_lowered(v.get_ref<const std::string&>(), p);
      });
    case Op::anything_but_wildcard:
      return !v.is_string() || std::none_of(m.wildcards.begin(), m.wildcards.end(), [&](const Wildcard& w) {
        return w.matches(v.get_ref<const std::string&>());
      });
  }
  return false;
}

// Calls f on every leaf value of v (arrays flattened, objects skipped); stops when f returns true.
template <typename F>
bool any_leaf(const json& v, const F& f) {
  if (v.is_array()) {
    for (const auto& e : v) {
      if (any_leaf(e, f)) return true;
    }
    return false;
  }
  if (v.is_object()) return false;
  return f(v);
}

bool has_leaf(const json& v) {
  return any_leaf(v, [](const json&) { return true; });
}

bool match_leaf(const Field& f, const json* v) {
  const bool present = v != nullptr && has_leaf(*v);
  for (const auto& m : f.alternatives) {
    if (m.op == Op::not_exists) {
      if (!present) return true;
      continue;
    }
    if (!present) continue;
    if (m.op == Op::exists) return true;
    if (any_leaf(*v, [&](const json& x) { return match_value(m, x); })) return true;
  }
  return false;
}

bool match_node(const Node& node, const json* obj);

// A child node against an event value: objects directly, arrays element by element (same element for
// every field), anything else as if the field held nothing.
bool match_child(const Node& node, const json* v) {
  if (v != nullptr && v->is_array()) {
    bool any_object = false;
    for (const auto& e : *v) {
      if (e.is_object() || e.is_array()) {
        any_object = true;
        if (match_child(node, &e)) return true;
      }
    }
    return any_object ? false : match_node(node, nullptr);
  }
  return match_node(node, v != nullptr && v->is_object() ? v : nullptr);
}

bool match_node(const Node& node, const json* obj) {
  for (const auto& f : node.fields) {
    const json* v = nullptr;
    if (obj != nullptr) {
      const auto it = obj->find(f.key);
      if (it != obj->end()) v = &*it;
    }
    if (f.has_leaf && !match_leaf(f, v)) return false;
    if (f.child) {
      // An event may spell a path with dots in one key ({"a.b": 1} is a.b). Rare: only then build a view
      // that merges those keys under this field.
      if (obj != nullptr) {
        const auto& members = obj->get_ref<const json::object_t&>();
        auto it = members.lower_bound(f.dotted);
        if (it != members.end() && it->first.starts_with(f.dotted)) {
          json view = v != nullptr && v->is_object() ? *v : json::object();
          for (; it != members.end() && it->first.starts_with(f.dotted); ++it) {
            view[it->first.substr(f.dotted.size())] = it->second;
          }
          if (!match_child(*f.child, &view)) return false;
          continue;
        }
      }
      if (!match_child(*f.child, v)) return false;
    }
  }
  for (const auto& group : node.ors) {
    if (std::none_of(group.begin(), group.end(), [&](const Node& alt) { return match_node(alt, obj); }))
      return false;
  }
  return true;
}

void select_node(const Node& node, Selection& into) {
  if (into.all) return;
  for (const auto& f : node.fields) {
    Selection& s = into.fields[f.key];
    if (f.has_leaf) {
      s.all = true;
      s.fields.clear();
    } else if (f.child) {
      select_node(*f.child, s);
    }
  }
  for (const auto& group : node.ors) {
    for (const auto& alt : group) select_node(alt, into);
  }
}

void required_in(const Node& node, std::vector<std::string>& path,
                 std::vector<Pattern::RequiredStrings>& out) {
  for (const auto& f : node.fields) {
    path.push_back(f.key);
    if (f.has_leaf && !f.alternatives.empty() &&
        std::all_of(f.alternatives.begin(), f.alternatives.end(),
                    [](const Matcher& m) { return m.op == Op::exact_string; })) {
      Pattern::RequiredStrings r;
      r.path = path;
      for (const auto& m : f.alternatives) r.values.push_back(m.text);
      out.push_back(std::move(r));
    }
    if (f.child) required_in(*f.child, path, out);
    path.pop_back();
  }
}

}  // namespace
}  // namespace detail

std::vector<Pattern::RequiredStrings> Pattern::required_strings() const {
  std::vector<RequiredStrings> out;
  std::vector<std::string> path;
  detail::required_in(compiled_->root, path, out);
  return out;
}

Pattern Pattern::compile(const nlohmann::json& pattern) {
  if (!pattern.is_object()) {
    throw PatternError(std::string("a pattern must be a JSON object, found ") + detail::type_name(pattern));
  }
  auto c = std::make_shared<detail::Compiled>();
  detail::compile_object(pattern, c->root, "");
  return Pattern(std::move(c));
}

void Pattern::select(Selection& into) const {
  detail::select_node(compiled_->root, into);
}

bool Pattern::matches(const nlohmann::json& event) const {
  return detail::match_node(compiled_->root, event.is_object() ? &event : nullptr);
}

}  // namespace evr::pattern
