#include "evrouter/config/loader.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <system_error>
#include <thread>

#include "evrouter/common/tls_files.h"
#include "evrouter/config/env.h"
#include "evrouter/config/yaml_json.h"
#include "evrouter/http/client.h"
#include "evrouter/mapping/inputs.h"
#include "evrouter/mapping/path.h"
#include "evrouter/mapping/template.h"
#include "evrouter/mapping/text.h"
#include "evrouter/pattern/pattern.h"
#include "evrouter/source/source.h"

namespace evr::config {
namespace {

namespace fs = std::filesystem;
using Severity = Diagnostic::Severity;

// ---------------------------------------------------------------------------------------------------
// A YAML document as a small tree that keeps 1-based positions, and remembers which scalars were quoted.

struct Entry;

struct Node {
  enum class Kind { null, scalar, sequence, map };
  Kind kind = Kind::null;
  std::string text;   // scalar
  bool plain = true;  // false for quoted or !!str scalars: always strings
  int line = 0;
  int column = 0;
  bool bad = false;  // a problem was already reported here (e.g. env expansion); stay quiet about it
  // A vector of pairs of the incomplete Node does not compile with clang 14 and libstdc++ 12 (std::pair
  // checks its members are complete); a vector of a declared-later struct does.
  std::vector<Entry> entries;  // map: key, value (in file order, duplicates kept)
  std::vector<Node> items;     // sequence
};

struct Entry {
  Node key;
  Node value;
};

void set_mark(Node& n, const YAML::Mark& m) {
  if (m.is_null()) return;
  n.line = m.line + 1;
  n.column = m.column + 1;
}

Node convert(const YAML::Node& y) {
  Node n;
  set_mark(n, y.Mark());
  switch (y.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      n.kind = Node::Kind::null;
      break;
    case YAML::NodeType::Scalar:
      n.kind = Node::Kind::scalar;
      n.text = y.Scalar();
      n.plain = y.Tag() != "!" && y.Tag() != "tag:yaml.org,2002:str";
      break;
    case YAML::NodeType::Sequence:
      n.kind = Node::Kind::sequence;
      for (const auto& item : y) n.items.push_back(convert(item));
      break;
    case YAML::NodeType::Map:
      n.kind = Node::Kind::map;
      for (const auto& kv : y) {
        Node key = convert(kv.first);
        Node value = convert(kv.second);
        // An empty value ("key:") carries the position of the next token: point at the key instead.
        if (value.kind == Node::Kind::null && value.line != key.line) {
          value.line = key.line;
          value.column = key.column;
        }
        n.entries.push_back(Entry{std::move(key), std::move(value)});
      }
      break;
  }
  return n;
}

// A YAML node as JSON; `Json` is nlohmann::json, or nlohmann::ordered_json to keep the order of mapping keys
// (templates are written in the order the receiver reads).
template <typename Json>
Json node_to_json(const Node& n) {
  switch (n.kind) {
    case Node::Kind::null:
      return nullptr;
    case Node::Kind::scalar:
      return Json(yaml_scalar_to_json(n.text, n.plain));
    case Node::Kind::sequence: {
      Json out = Json::array();
      for (const auto& item : n.items) out.push_back(node_to_json<Json>(item));
      return out;
    }
    case Node::Kind::map: {
      Json out = Json::object();
      for (const auto& [k, v] : n.entries) out[k.text] = node_to_json<Json>(v);
      return out;
    }
  }
  return nullptr;
}

nlohmann::json to_json(const Node& n) {
  return node_to_json<nlohmann::json>(n);
}

nlohmann::ordered_json to_ordered_json(const Node& n) {
  return node_to_json<nlohmann::ordered_json>(n);
}

std::string key_path(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string(key) : parent + "." + std::string(key);
}

std::string index_path(const std::string& parent, std::size_t i) {
  return parent + "[" + std::to_string(i) + "]";
}

std::string found(const Node& n) {
  switch (n.kind) {
    case Node::Kind::null:
      return "an empty value";
    case Node::Kind::scalar:
      return "'" + n.text + "'";
    case Node::Kind::sequence:
      return "a sequence";
    case Node::Kind::map:
      return "a mapping";
  }
  return "?";
}

// Edit distance counting a swap of two neighbours as one edit (optimal string alignment), case-blind,
// for "did you mean" hints.
std::size_t distance(std::string_view a, std::string_view b) {
  auto lower = [](char c) { return std::tolower(static_cast<unsigned char>(c)); };
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) && lower(a[i - 2]) == lower(b[j - 1])) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

template <typename Range>
std::optional<std::string> closest(std::string_view word, const Range& candidates) {
  std::optional<std::string> best;
  std::size_t best_d = 0;
  // One edit for short words, up to a third of the word (at most 3) for longer ones.
  const std::size_t limit = word.size() <= 3 ? 1 : std::clamp<std::size_t>(word.size() / 3, 2, 3);
  for (const auto& c : candidates) {
    const std::size_t d = distance(word, c);
    if (d <= limit && (!best || d < best_d)) {
      best = std::string(c);
      best_d = d;
    }
  }
  return best;
}

template <typename Range>
std::string join(const Range& items, const char* sep = ", ") {
  std::string out;
  for (const auto& i : items) {
    if (!out.empty()) out += sep;
    out += i;
  }
  return out;
}

// `re` is one of the loader's fixed patterns. Each is compiled once per thread: compiling a std::regex costs
// far more than matching a short name, and a thousand flows mean thousands of names (it was ~20 % of a
// 1,000-flow start).
bool matches(const std::string& text, const char* re) {
  thread_local std::map<std::string, std::regex, std::less<>> compiled;
  auto it = compiled.find(std::string_view(re));
  if (it == compiled.end()) it = compiled.emplace(re, std::regex(re)).first;
  return std::regex_match(text, it->second);
}

constexpr const char* kHeaderName = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
// Published sources and webhook source names: what an envelope's "source" may hold.
constexpr const char* kSourceName = "[A-Za-z0-9._/:-]{1,256}";
constexpr const char* kSourceNameText = "1 to 256 characters from A-Z a-z 0-9 . _ / : -";

// ---------------------------------------------------------------------------------------------------
// Reports problems of one file.

class Reader {
 public:
  Reader(std::string file, std::vector<Diagnostic>& out) : file_(std::move(file)), out_(out) {}

  const std::string& file() const { return file_; }
  SourceLocation where(const Node& n) const { return {file_, n.line, n.column}; }
  std::size_t errors() const { return errors_; }

  void error(const Node& n, const std::string& path, std::string message) {
    ++errors_;
    out_.push_back({Severity::error, where(n), path, std::move(message)});
  }
  void warning(const Node& n, const std::string& path, std::string message) {
    out_.push_back({Severity::warning, where(n), path, std::move(message)});
  }
  void report(Severity s, const Node& n, const std::string& path, std::string message) {
    s == Severity::error ? error(n, path, std::move(message)) : warning(n, path, std::move(message));
  }

 private:
  std::string file_;
  std::vector<Diagnostic>& out_;
  std::size_t errors_ = 0;
};

// Expands ${...} in every scalar value, and reports duplicate and non-string keys, in one walk.
void prepare(Reader& r, Node& n, const std::string& path) {
  switch (n.kind) {
    case Node::Kind::null:
      return;
    case Node::Kind::scalar: {
      if (n.text.find('$') == std::string::npos) return;
      std::string error;
      if (auto v = expand_env(n.text, error)) {
        n.text = std::move(*v);
      } else {
        r.error(n, path, error);
        n.bad = true;
      }
      return;
    }
    case Node::Kind::sequence:
      for (std::size_t i = 0; i < n.items.size(); ++i) prepare(r, n.items[i], index_path(path, i));
      return;
    case Node::Kind::map: {
      std::map<std::string, const Node*> seen;
      for (auto& [k, v] : n.entries) {
        if (k.kind != Node::Kind::scalar) {
          r.error(k, path, "expected a string key, found " + found(k));
          k.bad = true;
          continue;
        }
        const std::string p = key_path(path, k.text);
        auto [it, inserted] = seen.emplace(k.text, &k);
        if (!inserted) {
          r.error(k, p,
                  "duplicate key '" + k.text + "' (first at line " + std::to_string(it->second->line) + ")");
        }
        prepare(r, v, p);
      }
      return;
    }
  }
}

// A mapping in the file, with the keys it may hold.
class Map {
 public:
  // `n` may be null (absent section: every key takes its default).
  Map(Reader& r, const Node* n, std::string path) : r_(r), node_(n), path_(std::move(path)) {
    if (n == nullptr || n->kind == Node::Kind::null) {
      node_ = nullptr;
    } else if (n->kind != Node::Kind::map) {
      if (!n->bad) r.error(*n, path_, "expected a mapping, found " + found(*n));
      node_ = nullptr;
      valid_ = false;
    }
  }

  bool valid() const { return valid_; }
  bool present() const { return node_ != nullptr; }
  const Node* node() const { return node_; }
  const std::string& path() const { return path_; }
  std::string path(std::string_view key) const { return key_path(path_, key); }

  // Reports keys that are not in `allowed`, with a hint when one is close.
  void allow(std::initializer_list<std::string_view> allowed) {
    if (node_ == nullptr) return;
    for (const auto& [k, v] : node_->entries) {
      if (k.bad) continue;
      if (std::find(allowed.begin(), allowed.end(), k.text) != allowed.end()) continue;
      std::string msg = "unknown key '" + k.text + "'";
      if (auto hint = closest(k.text, allowed)) {
        msg += " (did you mean '" + *hint + "'?)";
      } else {
        msg += " (expected one of: " + join(allowed) + ")";
      }
      r_.error(k, path(k.text), msg);
    }
  }

  // The value of `key` (the last one when repeated), or nullptr when absent.
  const Node* get(std::string_view key) const {
    if (node_ == nullptr) return nullptr;
    const Node* out = nullptr;
    for (const auto& [k, v] : node_->entries) {
      if (k.text == key) out = &v;
    }
    return out;
  }
  const Node* key_node(std::string_view key) const {
    if (node_ == nullptr) return nullptr;
    for (const auto& [k, v] : node_->entries) {
      if (k.text == key) return &k;
    }
    return nullptr;
  }

  // Reports a missing key at the mapping itself (or at `fallback` when the mapping is absent).
  void missing(std::string_view key, const Node& fallback, const std::string& expected) {
    r_.error(node_ != nullptr ? *node_ : fallback, path(key),
             "required key '" + std::string(key) + "' is missing (expected " + expected + ")");
  }

 private:
  Reader& r_;
  const Node* node_;
  std::string path_;
  bool valid_ = true;
};

// ---------------------------------------------------------------------------------------------------
// Typed values. Each reports what it expected and what it found, and returns nullopt on a problem.
// Null values count as "not given" for optional keys; callers check that with `given()`.

bool given(const Node* n) {
  return n != nullptr && n->kind != Node::Kind::null;
}

std::optional<std::string> get_string(Reader& r, const Node& n, const std::string& path,
                                      const char* expected = "a string") {
  if (n.bad) return std::nullopt;
  if (n.kind != Node::Kind::scalar) {
    r.error(n, path, std::string("expected ") + expected + ", found " + found(n));
    return std::nullopt;
  }
  return n.text;
}

std::optional<int64_t> get_int(Reader& r, const Node& n, const std::string& path, int64_t min, int64_t max) {
  if (n.bad) return std::nullopt;
  const std::string range = max == std::numeric_limits<int64_t>::max()
                                ? "an integer >= " + std::to_string(min)
                                : "an integer between " + std::to_string(min) + " and " + std::to_string(max);
  if (n.kind != Node::Kind::scalar) {
    r.error(n, path, "expected " + range + ", found " + found(n));
    return std::nullopt;
  }
  const nlohmann::json v = yaml_scalar_to_json(n.text, true);
  if (!v.is_number_integer()) {
    r.error(n, path, "expected " + range + ", found " + found(n));
    return std::nullopt;
  }
  if (v.is_number_unsigned() &&
      v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    r.error(n, path, "expected " + range + ", found " + n.text);
    return std::nullopt;
  }
  const int64_t i = v.get<int64_t>();
  if (i < min || i > max) {
    r.error(n, path, "expected " + range + ", found " + n.text);
    return std::nullopt;
  }
  return i;
}

std::optional<double> get_number(Reader& r, const Node& n, const std::string& path, double min, double max,
                                 const std::string& expected) {
  if (n.bad) return std::nullopt;
  if (n.kind != Node::Kind::scalar) {
    r.error(n, path, "expected " + expected + ", found " + found(n));
    return std::nullopt;
  }
  const nlohmann::json v = yaml_scalar_to_json(n.text, true);
  if (!v.is_number() || !std::isfinite(v.get<double>())) {
    r.error(n, path, "expected " + expected + ", found " + found(n));
    return std::nullopt;
  }
  const double d = v.get<double>();
  if (d < min || d > max) {
    r.error(n, path, "expected " + expected + ", found " + n.text);
    return std::nullopt;
  }
  return d;
}

std::optional<bool> get_bool(Reader& r, const Node& n, const std::string& path) {
  if (n.bad) return std::nullopt;
  if (n.kind == Node::Kind::scalar) {
    const nlohmann::json v = yaml_scalar_to_json(n.text, true);
    if (v.is_boolean()) return v.get<bool>();
  }
  r.error(n, path, "expected true or false, found " + found(n));
  return std::nullopt;
}

std::optional<Millis> get_duration(Reader& r, const Node& n, const std::string& path,
                                   bool allow_zero = false) {
  if (n.bad) return std::nullopt;
  std::optional<Millis> d;
  if (n.kind == Node::Kind::scalar) d = parse_duration(n.text);
  if (!d) {
    r.error(n, path,
            "expected a duration with a unit (ms, s, m, h, d), e.g. 500ms, 10s, 48h, found " + found(n));
    return std::nullopt;
  }
  if (!allow_zero && d->count() <= 0) {
    r.error(n, path, "expected a duration greater than zero, found " + n.text);
    return std::nullopt;
  }
  return d;
}

std::optional<uint64_t> get_size(Reader& r, const Node& n, const std::string& path) {
  if (n.bad) return std::nullopt;
  std::optional<uint64_t> s;
  if (n.kind == Node::Kind::scalar) s = parse_byte_size(n.text);
  if (!s) {
    r.error(n, path, "expected a size in bytes, e.g. 1048576, 512KiB or 1MiB, found " + found(n));
    return std::nullopt;
  }
  if (*s == 0) {
    r.error(n, path, "expected a size greater than zero, found " + n.text);
    return std::nullopt;
  }
  return s;
}

std::optional<std::string> get_choice(Reader& r, const Node& n, const std::string& path,
                                      std::initializer_list<std::string_view> choices) {
  if (n.bad) return std::nullopt;
  if (n.kind == Node::Kind::scalar) {
    for (auto c : choices) {
      if (n.text == c) return std::string(c);
    }
  }
  std::string msg = "expected one of " + join(choices) + ", found " + found(n);
  if (n.kind == Node::Kind::scalar) {
    if (auto hint = closest(n.text, choices)) msg += " (did you mean '" + *hint + "'?)";
  }
  r.error(n, path, msg);
  return std::nullopt;
}

// A string matching `re`, described by `expected` in messages.
std::optional<std::string> get_name(Reader& r, const Node& n, const std::string& path, const char* re,
                                    const std::string& expected) {
  auto s = get_string(r, n, path, expected.c_str());
  if (!s) return std::nullopt;
  if (!matches(*s, re)) {
    r.error(n, path, "expected " + expected + ", found " + found(n));
    return std::nullopt;
  }
  return s;
}

// A sequence of strings; a single string is accepted as a one-item list.
std::optional<std::vector<std::pair<std::string, const Node*>>> get_string_list(Reader& r, const Node& n,
                                                                                const std::string& path,
                                                                                const char* expected) {
  if (n.bad) return std::nullopt;
  std::vector<std::pair<std::string, const Node*>> out;
  if (n.kind == Node::Kind::null) return out;
  if (n.kind == Node::Kind::scalar) {
    out.emplace_back(n.text, &n);
    return out;
  }
  if (n.kind != Node::Kind::sequence) {
    r.error(n, path, std::string("expected ") + expected + ", found " + found(n));
    return std::nullopt;
  }
  bool ok = true;
  for (std::size_t i = 0; i < n.items.size(); ++i) {
    const Node& item = n.items[i];
    if (item.bad) {
      ok = false;
      continue;
    }
    if (item.kind != Node::Kind::scalar || item.text.empty()) {
      r.error(item, index_path(path, i), "expected a non-empty string, found " + found(item));
      ok = false;
      continue;
    }
    out.emplace_back(item.text, &item);
  }
  if (!ok) return std::nullopt;
  return out;
}

// {env: NAME} or {file: PATH}.
std::optional<SecretRef> get_secret(Reader& r, const Node& n, const std::string& path) {
  if (n.bad) return std::nullopt;
  if (n.kind == Node::Kind::scalar) {
    r.error(n, path, "secrets are referenced, never inline: use {env: NAME} or {file: PATH}");
    return std::nullopt;
  }
  if (n.kind != Node::Kind::map) {
    r.error(n, path, "expected a secret reference {env: NAME} or {file: PATH}, found " + found(n));
    return std::nullopt;
  }
  Map m(r, &n, path);
  m.allow({"env", "file"});
  const Node* env = m.get("env");
  const Node* file = m.get("file");
  if ((env != nullptr) == (file != nullptr)) {
    r.error(n, path,
            std::string("expected exactly one of env or file, e.g. {env: NAME} or {file: PATH}, found ") +
                (env != nullptr ? "both" : "neither"));
    return std::nullopt;
  }
  SecretRef ref;
  ref.where = r.where(n);
  if (env != nullptr) {
    auto name = get_name(r, *env, m.path("env"), "[A-Za-z_][A-Za-z0-9_]*",
                         "an environment variable name (letters, digits and _)");
    if (!name) return std::nullopt;
    ref.kind = SecretRef::Kind::env;
    ref.name = *name;
  } else {
    auto p = get_string(r, *file, m.path("file"), "a file path");
    if (!p) return std::nullopt;
    if (p->empty()) {
      r.error(*file, m.path("file"), "expected a file path, found an empty string");
      return std::nullopt;
    }
    ref.kind = SecretRef::Kind::file;
    ref.name = *p;
  }
  return ref;
}

// Why a secret has no usable value, or nullopt when it has one.
std::optional<std::string> secret_problem(const SecretRef& ref) {
  if (ref.resolve()) return std::nullopt;
  if (ref.kind == SecretRef::Kind::env) {
    const char* v = std::getenv(ref.name.c_str());
    return "environment variable " + ref.name + (v == nullptr ? " is not set" : " is empty");
  }
  std::ifstream f(ref.name, std::ios::binary);
  if (!f) return "secret file " + ref.name + " cannot be read (" + std::strerror(errno) + ")";
  if (fs::is_directory(ref.name)) return "secret file " + ref.name + " is a directory";
  if (f.seekg(0, std::ios::end) && f.tellg() > static_cast<std::streamoff>(kMaxSecretFileBytes))
    return "secret file " + ref.name + " is larger than 64 KiB";
  return "secret file " + ref.name + " is empty";
}

void check_secret(Reader& r, const Node& n, const std::string& path, const SecretRef& ref, bool required) {
  if (auto problem = secret_problem(ref))
    r.report(required ? Severity::error : Severity::warning, n, path, *problem);
}

// An IPv4 or IPv6 address (what the listener can bind; no host names).
bool valid_ip(const std::string& s) {
  in6_addr buf{};
  return ::inet_pton(AF_INET, s.c_str(), &buf) == 1 || ::inet_pton(AF_INET6, s.c_str(), &buf) == 1;
}

// http://host[:port][/path] or https://...
bool valid_http_url(const std::string& s) {
  static const std::regex re(R"(^https?://([A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[^\s?#]*)?$)");
  std::smatch m;
  if (!std::regex_match(s, m, re)) return false;
  if (m[2].matched && std::stoi(m[2].str().substr(1)) > 65535) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------------
// Sections of the main config.

void parse_retry(Reader& r, const Node& n, const std::string& path, RetryPolicy& retry) {
  Map m(r, &n, path);
  if (!m.valid()) return;
  m.allow({"max_attempts", "max_age", "backoff_base", "backoff_cap", "jitter"});
  if (const Node* v = m.get("max_attempts"); given(v)) {
    if (auto i = get_int(r, *v, m.path("max_attempts"), 1, 1000000))
      retry.max_attempts = static_cast<int>(*i);
  }
  if (const Node* v = m.get("max_age"); given(v)) {
    if (auto d = get_duration(r, *v, m.path("max_age"))) retry.max_age = *d;
  }
  bool base_ok = true;
  if (const Node* v = m.get("backoff_base"); given(v)) {
    auto d = get_duration(r, *v, m.path("backoff_base"));
    base_ok = d.has_value();
    if (d) retry.backoff_base = *d;
  }
  if (const Node* v = m.get("backoff_cap"); given(v)) {
    if (auto d = get_duration(r, *v, m.path("backoff_cap"))) {
      retry.backoff_cap = *d;
      if (base_ok && *d < retry.backoff_base) {
        r.error(*v, m.path("backoff_cap"),
                "expected a duration >= backoff_base (" + format_duration(retry.backoff_base) + "), found " +
                    v->text);
      }
    }
  } else if (base_ok && retry.backoff_cap < retry.backoff_base && m.present()) {
    r.error(*m.get("backoff_base"), m.path("backoff_base"),
            "expected a duration <= backoff_cap (" + format_duration(retry.backoff_cap) + "), found " +
                m.get("backoff_base")->text);
  }
  if (const Node* v = m.get("jitter"); given(v)) {
    if (auto d = get_number(r, *v, m.path("jitter"), 0, 1, "a number between 0 and 1")) retry.jitter = *d;
  }
}

// The keys of `auth: {type: oauth2, ...}` besides client_secret (client credentials grant).
void parse_oauth2(Reader& r, Map& m, const Node& n, Auth& auth) {
  m.allow({"type", "token_url", "client_id", "client_secret", "scope", "audience", "client_auth"});
  if (const Node* v = m.get("token_url"); given(v)) {
    if (auto s = get_string(r, *v, m.path("token_url"), "an http:// or https:// URI")) {
      if (valid_http_url(*s) && http::Endpoint::parse(*s)) {
        auth.token_url = *s;
      } else {
        r.error(
            *v, m.path("token_url"),
            "expected an http:// or https:// URI without query, e.g. https://auth.example.com/oauth/token, "
            "found " +
                found(*v));
      }
    }
  } else {
    m.missing("token_url", n, "the token endpoint, e.g. https://auth.example.com/oauth/token");
  }
  if (const Node* v = m.get("client_id"); given(v)) {
    if (auto s = get_string(r, *v, m.path("client_id"), "a client id")) {
      if (s->empty()) {
        r.error(*v, m.path("client_id"), "expected a client id, found an empty string");
      } else {
        auth.client_id = *s;
      }
    }
  } else {
    m.missing("client_id", n, "the OAuth2 client id");
  }
  for (const char* key : {"scope", "audience"}) {
    if (const Node* v = m.get(key); given(v)) {
      if (auto s = get_string(r, *v, m.path(key)))
        (std::string_view(key) == "scope" ? auth.scope : auth.audience) = *s;
    }
  }
  if (const Node* v = m.get("client_auth"); given(v)) {
    if (auto s = get_choice(r, *v, m.path("client_auth"), {"basic", "form"})) {
      auth.client_auth = *s == "form" ? Auth::ClientAuth::form : Auth::ClientAuth::basic;
    }
  }
}

// responses: {success: [...], retry: [...], fail: [...]}; entries are codes (100..599) or classes (1xx..5xx).
void parse_responses(Reader& r, const Node& n, const std::string& path, Responses& out) {
  Map m(r, &n, path);
  if (!m.valid()) return;
  m.allow({"success", "retry", "fail"});
  std::map<std::string, std::pair<std::string, int>> seen;  // entry -> (list, line)
  const std::pair<const char*, std::vector<std::string>*> lists[] = {
      {"success", &out.success}, {"retry", &out.retry}, {"fail", &out.fail}};
  for (const auto& [key, list] : lists) {
    const Node* v = m.get(key);
    if (!given(v)) continue;
    const std::string lp = m.path(key);
    if (v->bad) continue;
    if (v->kind != Node::Kind::sequence) {
      r.error(*v, lp,
              "expected a sequence of status codes or classes, e.g. [\"409\", 4xx], found " + found(*v));
      continue;
    }
    list->clear();
    for (std::size_t i = 0; i < v->items.size(); ++i) {
      const Node& item = v->items[i];
      const std::string ip = index_path(lp, i);
      if (item.bad) continue;
      std::string entry = item.kind == Node::Kind::scalar ? item.text : std::string();
      std::transform(entry.begin(), entry.end(), entry.begin(),
                     [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
      const bool is_class = matches(entry, "[1-5]xx");
      const bool is_code = matches(entry, "[1-5][0-9][0-9]");
      if (!is_class && !is_code) {
        r.error(item, ip,
                "expected a status code between 100 and 599 (e.g. 409) or a class 1xx..5xx, found " +
                    found(item));
        continue;
      }
      auto [it, inserted] = seen.emplace(entry, std::make_pair(std::string(key), item.line));
      if (!inserted) {
        r.error(item, ip,
                entry + " is already listed in " + it->second.first + " (line " +
                    std::to_string(it->second.second) + "); a status may be in one list only");
        continue;
      }
      list->push_back(entry);
    }
  }
}

// breaker: {failures: N, cooldown: DURATION}
void parse_breaker(Reader& r, const Node& n, const std::string& path, BreakerPolicy& b) {
  Map m(r, &n, path);
  if (!m.valid()) return;
  m.allow({"failures", "cooldown"});
  if (const Node* v = m.get("failures"); given(v)) {
    if (auto i = get_int(r, *v, m.path("failures"), 0, 1000000)) b.failures = static_cast<int>(*i);
  }
  if (const Node* v = m.get("cooldown"); given(v)) {
    if (auto d = get_duration(r, *v, m.path("cooldown"))) b.cooldown = *d;
  }
}

// concurrency: N (fixed) | adaptive | {adaptive: BOOL, max: N, initial: N}
void parse_concurrency(Reader& r, const Node& n, const std::string& path, Connection& c) {
  if (n.bad) return;
  if (n.kind == Node::Kind::scalar && n.text == "adaptive") {
    c.adaptive.enabled = true;
    c.concurrency = 64;
    c.adaptive.initial = 4;
    return;
  }
  if (n.kind != Node::Kind::map) {
    if (auto i = get_int(r, n, path, 1, 10000)) c.concurrency = static_cast<int>(*i);
    return;
  }
  Map m(r, &n, path);
  if (!m.valid()) return;
  m.allow({"adaptive", "max", "initial"});
  if (const Node* v = m.get("adaptive"); given(v)) {
    if (auto b = get_bool(r, *v, m.path("adaptive"))) c.adaptive.enabled = *b;
  }
  c.concurrency = c.adaptive.enabled ? 64 : c.concurrency;
  if (const Node* v = m.get("max"); given(v)) {
    if (auto i = get_int(r, *v, m.path("max"), 1, 10000)) c.concurrency = static_cast<int>(*i);
  }
  c.adaptive.initial = std::min(4, c.concurrency);
  if (const Node* v = m.get("initial"); given(v)) {
    if (!c.adaptive.enabled) {
      r.error(*v, m.path("initial"), "initial applies to adaptive concurrency only (set adaptive: true)");
    } else if (auto i = get_int(r, *v, m.path("initial"), 1, 10000)) {
      if (*i > c.concurrency) {
        r.error(*v, m.path("initial"),
                "expected an integer between 1 and max (" + std::to_string(c.concurrency) + "), found " +
                    v->text);
      } else {
        c.adaptive.initial = static_cast<int>(*i);
      }
    }
  }
}

void parse_auth(Reader& r, const Node& n, const std::string& path, Auth& auth, bool require_secrets) {
  if (n.bad) return;
  if (n.kind == Node::Kind::scalar && n.text == "none") {
    auth.type = Auth::Type::none;
    return;
  }
  Map m(r, &n, path);
  if (!m.valid()) return;
  const Node* type = m.get("type");
  if (!given(type)) {
    m.missing("type", n, "none, basic, bearer, api_key or oauth2");
    return;
  }
  auto t = get_choice(r, *type, m.path("type"), {"none", "basic", "bearer", "api_key", "oauth2"});
  if (!t) {
    m.allow({"type", "username", "password", "token", "header", "key", "token_url", "client_id",
             "client_secret", "scope", "audience", "client_auth"});
    return;
  }
  // The secret each type needs, and the keys it accepts.
  std::string secret_key;
  if (*t == "none") {
    auth.type = Auth::Type::none;
    m.allow({"type"});
    return;
  }
  if (*t == "basic") {
    auth.type = Auth::Type::basic;
    secret_key = "password";
    m.allow({"type", "username", "password"});
    if (const Node* u = m.get("username"); given(u)) {
      if (auto s = get_string(r, *u, m.path("username"))) auth.username = *s;
    } else {
      m.missing("username", n, "a user name");
    }
  } else if (*t == "bearer") {
    auth.type = Auth::Type::bearer;
    secret_key = "token";
    m.allow({"type", "token"});
  } else if (*t == "oauth2") {
    auth.type = Auth::Type::oauth2;
    secret_key = "client_secret";
    parse_oauth2(r, m, n, auth);
  } else {
    auth.type = Auth::Type::api_key;
    secret_key = "key";
    m.allow({"type", "header", "key"});
    if (const Node* h = m.get("header"); given(h)) {
      if (auto s = get_name(r, *h, m.path("header"), "[!#$%&'*+.^_`|~0-9A-Za-z-]+", "an HTTP header name")) {
        auth.header = *s;
      }
    }
  }
  const Node* secret = m.get(secret_key);
  if (!given(secret)) {
    m.missing(secret_key, n, "a secret reference {env: NAME} or {file: PATH}");
    return;
  }
  if (auto ref = get_secret(r, *secret, m.path(secret_key))) {
    check_secret(r, *secret, m.path(secret_key), *ref, require_secrets);
    auth.secret = std::move(*ref);
  }
}

void parse_secret_list(Reader& r, Map& m, const Node& n, std::vector<SecretRef>& out, bool require_secrets,
                       const std::string& expected);

// `signing: {type: standard-webhooks, secret | secrets}` or `signing: none`.
void parse_signing(Reader& r, const Node& n, const std::string& path, Signing& signing,
                   bool require_secrets) {
  signing.where = r.where(n);
  if (n.bad) return;
  if (n.kind == Node::Kind::scalar && n.text == "none") {
    signing.type = Signing::Type::none;
    return;
  }
  Map m(r, &n, path);
  if (!m.valid()) return;
  const Node* type = m.get("type");
  if (!given(type)) {
    m.missing("type", n, "standard-webhooks or none");
    return;
  }
  auto t = get_choice(r, *type, m.path("type"), {"standard-webhooks", "none"});
  if (!t) return;
  if (*t == "none") {
    signing.type = Signing::Type::none;
    m.allow({"type"});
    return;
  }
  signing.type = Signing::Type::standard_webhooks;
  m.allow({"type", "secret", "secrets"});
  parse_secret_list(r, m, n, signing.secrets, require_secrets,
                    "the signing secret (whsec_...), e.g. {env: WEBHOOK_SIGNING_SECRET}");
  const bool many = signing.secrets.size() > 1;
  for (const SecretRef& ref : signing.secrets) {
    if (auto value = ref.resolve(); value && !source::standard_webhooks_key(*value)) {
      Node at;
      at.line = ref.where.line;
      at.column = ref.where.column;
      r.error(at, m.path(many ? "secrets" : "secret"),
              ref.describe() + " is not a Standard Webhooks secret (whsec_ followed by base64)");
    }
  }
}

void parse_connection(Reader& r, const Node& n, const std::string& path, Connection& c,
                      bool require_secrets) {
  c.where = r.where(n);
  Map m(r, &n, path);
  if (!m.valid()) return;
  m.allow({"base_uri", "auth", "media_type", "connect_timeout", "request_timeout", "rate_limit",
           "concurrency", "retry", "ca_file", "tls_verify", "signing", "breaker", "responses"});
  if (const Node* v = m.get("base_uri"); given(v)) {
    if (auto s = get_string(r, *v, m.path("base_uri"), "an http:// or https:// URI")) {
      // The client's own parser too: what validate accepts, the daemon can use.
      if (valid_http_url(*s) && http::Endpoint::parse(*s)) {
        c.base_uri = *s;
      } else {
        r.error(*v, m.path("base_uri"),
                "expected an http:// or https:// URI with a host, e.g. https://api.example.com/base, found " +
                    found(*v));
      }
    }
  } else {
    m.missing("base_uri", n, "an http:// or https:// URI");
  }
  if (const Node* v = m.get("auth"); given(v)) parse_auth(r, *v, m.path("auth"), c.auth, require_secrets);
  if (const Node* v = m.get("media_type"); given(v)) {
    if (auto s = get_name(r, *v, m.path("media_type"), R"([A-Za-z0-9.+_-]+/[A-Za-z0-9.+_-]+(\s*;.*)?)",
                          "a media type, e.g. application/json")) {
      c.media_type = *s;
    }
  }
  if (const Node* v = m.get("connect_timeout"); given(v)) {
    if (auto d = get_duration(r, *v, m.path("connect_timeout"))) c.connect_timeout = *d;
  }
  if (const Node* v = m.get("request_timeout"); given(v)) {
    if (auto d = get_duration(r, *v, m.path("request_timeout"))) c.request_timeout = *d;
  }
  if (const Node* v = m.get("rate_limit"); given(v)) {
    Map rl(r, v, m.path("rate_limit"));
    if (rl.valid()) {
      rl.allow({"per_second", "burst"});
      if (const Node* p = rl.get("per_second"); given(p)) {
        if (auto d = get_number(r, *p, rl.path("per_second"), 0, 1e9, "a number >= 0 (0 = unlimited)")) {
          c.rate_limit.per_second = *d;
        }
      }
      if (const Node* b = rl.get("burst"); given(b)) {
        if (auto d = get_number(r, *b, rl.path("burst"), 1, 1e9, "a number >= 1")) c.rate_limit.burst = *d;
      }
    }
  }
  if (const Node* v = m.get("concurrency"); given(v)) parse_concurrency(r, *v, m.path("concurrency"), c);
  if (const Node* v = m.get("breaker"); given(v)) parse_breaker(r, *v, m.path("breaker"), c.breaker);
  if (const Node* v = m.get("responses"); given(v)) parse_responses(r, *v, m.path("responses"), c.responses);
  if (const Node* v = m.get("retry"); given(v)) parse_retry(r, *v, m.path("retry"), c.retry);
  if (const Node* v = m.get("ca_file"); given(v)) {
    if (auto s = get_string(r, *v, m.path("ca_file"), "a file path")) {
      c.ca_file = *s;
      std::error_code ec;
      if (!fs::is_regular_file(*s, ec)) {
        r.error(*v, m.path("ca_file"), "expected a readable PEM file, found '" + *s + "' (no such file)");
      }
    }
  }
  if (const Node* v = m.get("tls_verify"); given(v)) {
    if (auto b = get_bool(r, *v, m.path("tls_verify"))) c.tls_verify = *b;
  }
  if (const Node* v = m.get("signing"); given(v))
    parse_signing(r, *v, m.path("signing"), c.signing, require_secrets);
}

// server.tls: both files readable PEM, the key the certificate's.
void parse_server_tls(Reader& r, const Node& n, const std::string& path, std::optional<ServerTls>& out) {
  Map m(r, &n, path);
  if (!m.valid()) return;
  m.allow({"cert_file", "key_file", "min_version"});
  ServerTls t;
  bool ok = true;
  auto file = [&](const char* key, std::string& into) {
    const Node* v = m.get(key);
    if (!given(v)) {
      r.error(n, m.path(key), "expected a PEM file path: TLS needs both cert_file and key_file");
      ok = false;
      return;
    }
    if (auto str = get_string(r, *v, m.path(key), "a file path")) {
      std::string problem;
      if (std::strcmp(key, "cert_file") == 0 ? !tls_files::readable_certificate(*str, problem)
                                             : !tls_files::readable_private_key(*str, problem)) {
        r.error(*v, m.path(key), "expected a readable PEM file, found '" + *str + "' (" + problem + ")");
        ok = false;
      }
      into = *str;
    } else {
      ok = false;
    }
  };
  file("cert_file", t.cert_file);
  file("key_file", t.key_file);
  if (const Node* v = m.get("min_version"); given(v)) {
    if (auto str = get_string(r, *v, m.path("min_version"), "\"1.2\" or \"1.3\"")) {
      if (*str == "1.2" || *str == "1.3") {
        t.min_version = *str;
      } else {
        r.error(*v, m.path("min_version"), "expected \"1.2\" or \"1.3\", found " + found(*v));
        ok = false;
      }
    }
  }
  if (!ok) return;
  if (std::string problem; !tls_files::key_matches(t.cert_file, t.key_file, problem)) {
    r.error(*m.get("key_file"), m.path("key_file"),
            "expected the private key of " + t.cert_file + ", found one that does not match it (" + problem +
                ")");
    return;
  }
  out = std::move(t);
}

void parse_server(Reader& r, const Node* n, Server& s) {
  Map m(r, n, "server");
  if (!m.valid()) return;
  m.allow({"listen", "port", "public_base_url", "workers", "max_body_bytes", "max_body_memory",
           "max_connections", "request_timeout", "idle_timeout", "shutdown_grace", "tls"});
  if (const Node* v = m.get("listen"); given(v)) {
    if (auto str = get_string(r, *v, m.path("listen"), "an IP address")) {
      if (valid_ip(*str)) {
        s.listen = *str;
      } else {
        r.error(*v, m.path("listen"),
                "expected an IP address to listen on, e.g. 0.0.0.0 or 127.0.0.1, found " + found(*v));
      }
    }
  }
  if (const Node* v = m.get("port"); given(v)) {
    if (auto i = get_int(r, *v, m.path("port"), 0, 65535)) s.port = static_cast<uint16_t>(*i);
  }
  if (const Node* v = m.get("public_base_url"); given(v)) {
    // An empty value (e.g. ${EVROUTER_PUBLIC_BASE_URL:-} with the variable unset) means the default.
    if (auto str = get_string(r, *v, m.path("public_base_url"), "an http:// or https:// URL");
        str && !str->empty()) {
      if (valid_http_url(*str)) {
        s.public_base_url = *str;
      } else {
        r.error(*v, m.path("public_base_url"),
                "expected an http:// or https:// URL with a host, e.g. https://hooks.example.com, found " +
                    found(*v));
      }
    }
  }
  if (const Node* v = m.get("tls"); given(v)) parse_server_tls(r, *v, m.path("tls"), s.tls);
  if (s.public_base_url.empty())
    s.public_base_url = (s.tls ? "https://localhost:" : "http://localhost:") + std::to_string(s.port);
  if (const Node* v = m.get("workers"); given(v)) {
    if (auto i = get_int(r, *v, m.path("workers"), 0, 1024)) s.workers = static_cast<int>(*i);
  }
  if (const Node* v = m.get("max_body_bytes"); given(v)) {
    if (auto b = get_size(r, *v, m.path("max_body_bytes"))) s.max_body_bytes = *b;
  }
  if (const Node* v = m.get("max_body_memory"); given(v)) {
    if (auto b = get_size(r, *v, m.path("max_body_memory"))) {
      if (*b < s.max_body_bytes) {
        r.error(*v, m.path("max_body_memory"),
                "expected at least server.max_body_bytes (" + std::to_string(s.max_body_bytes) +
                    " bytes): a webhook of the largest size allowed must fit, found " + found(*v));
      } else {
        s.max_body_memory = *b;
      }
    }
  } else if (s.max_body_memory < s.max_body_bytes) {
    s.max_body_memory = s.max_body_bytes;  // a large max_body_bytes raises the default
  }
  if (const Node* v = m.get("max_connections"); given(v)) {
    if (auto i = get_int(r, *v, m.path("max_connections"), 1, 1000000))
      s.max_connections = static_cast<int>(*i);
  }
  if (const Node* v = m.get("request_timeout"); given(v)) {
    if (auto d = get_duration(r, *v, m.path("request_timeout"))) s.request_timeout = *d;
  }
  if (const Node* v = m.get("idle_timeout"); given(v)) {
    if (auto d = get_duration(r, *v, m.path("idle_timeout"))) s.idle_timeout = *d;
  }
  if (const Node* v = m.get("shutdown_grace"); given(v)) {
    if (auto d = get_duration(r, *v, m.path("shutdown_grace"), true)) s.shutdown_grace = *d;
  }
}

void parse_store(Reader& r, const Node* n, Store& s) {
  Map m(r, n, "store");
  if (!m.valid()) return;
  m.allow({"type", "state_dir", "durability", "dedup_window", "commit_max_batch", "servers", "stream",
           "replicas", "timeout", "retention", "ack_wait"});
  if (const Node* v = m.get("type"); given(v)) {
    if (auto t = get_choice(r, *v, m.path("type"), {"sqlite", "jetstream"})) s.type = *t;
  }
  if (const Node* v = m.get("servers"); given(v)) {
    if (auto list = get_string_list(r, *v, m.path("servers"),
                                    "a sequence of NATS URLs, e.g. [nats://127.0.0.1:4222]")) {
      std::vector<std::string> servers;
      for (std::size_t i = 0; i < list->size(); ++i) {
        const auto& [url, node] = (*list)[i];
        if (url.rfind("nats://", 0) != 0 && url.rfind("tls://", 0) != 0) {
          r.error(*node, index_path(m.path("servers"), i),
                  "expected a NATS URL (nats://host:port or tls://host:port), found " + found(*node));
          continue;
        }
        servers.push_back(url);
      }
      if (list->empty()) {
        r.error(*v, m.path("servers"), "expected at least one NATS URL");
      } else if (servers.size() == list->size()) {
        s.servers = std::move(servers);
      }
    }
  }
  if (const Node* v = m.get("stream"); given(v)) {
    if (auto str = get_name(r, *v, m.path("stream"), "[A-Za-z0-9_-]{1,32}",
                            "a stream name of 1 to 32 of [A-Za-z0-9_-]"))
      s.stream = *str;
  }
  if (const Node* v = m.get("replicas"); given(v)) {
    if (auto i = get_int(r, *v, m.path("replicas"), 1, 5)) s.replicas = static_cast<int>(*i);
  }
  if (const Node* v = m.get("timeout"); given(v)) {
    if (auto d = get_duration(r, *v, m.path("timeout"))) s.timeout = *d;
  }
  if (const Node* v = m.get("ack_wait"); given(v)) {
    if (auto d = get_duration(r, *v, m.path("ack_wait"))) {
      if (*d < std::chrono::seconds(1)) {
        r.error(*v, m.path("ack_wait"), "expected a duration of at least 1s, found " + found(*v));
      } else {
        s.ack_wait = *d;
      }
    }
  }
  if (const Node* v = m.get("state_dir"); given(v)) {
    if (auto str = get_string(r, *v, m.path("state_dir"), "a directory path")) {
      if (str->empty()) {
        r.error(*v, m.path("state_dir"), "expected a directory path, found an empty string");
      } else {
        s.state_dir = *str;
      }
    }
  }
  if (const Node* v = m.get("durability"); given(v)) {
    if (auto d = get_choice(r, *v, m.path("durability"), {"fsync", "os", "none"})) {
      s.durability = *d == "fsync" ? Store::Durability::fsync
                     : *d == "os"  ? Store::Durability::os
                                   : Store::Durability::none;
    }
  }
  if (const Node* v = m.get("dedup_window"); given(v)) {
    if (auto d = get_duration(r, *v, m.path("dedup_window"))) s.dedup_window = *d;
  }
  if (const Node* v = m.get("commit_max_batch"); given(v)) {
    if (auto i = get_int(r, *v, m.path("commit_max_batch"), 1, 1000000))
      s.commit_max_batch = static_cast<int>(*i);
  }
  if (const Node* v = m.get("retention"); given(v)) {
    if (auto d = get_duration(r, *v, m.path("retention"), true)) s.retention = *d;
  }
}

void parse_admin(Reader& r, const Node* n, Admin& a) {
  Map m(r, n, "admin");
  if (!m.valid()) return;
  if (!m.present()) return;
  a.where = r.where(*n);
  a.enabled = true;
  m.allow({"enabled", "listen", "port", "token", "max_connections", "tls"});
  if (const Node* v = m.get("enabled"); given(v)) {
    if (auto b = get_bool(r, *v, m.path("enabled"))) a.enabled = *b;
  }
  if (const Node* v = m.get("tls"); given(v)) parse_server_tls(r, *v, m.path("tls"), a.tls);
  if (const Node* v = m.get("listen"); given(v)) {
    if (auto str = get_string(r, *v, m.path("listen"), "an IP address")) {
      if (valid_ip(*str)) {
        a.listen = *str;
      } else {
        r.error(*v, m.path("listen"),
                "expected an IP address, e.g. 127.0.0.1 or 0.0.0.0, found " + found(*v));
      }
    }
  }
  if (const Node* v = m.get("port"); given(v)) {
    if (auto i = get_int(r, *v, m.path("port"), 0, 65535)) a.port = static_cast<uint16_t>(*i);
  }
  if (const Node* v = m.get("max_connections"); given(v)) {
    if (auto i = get_int(r, *v, m.path("max_connections"), 1, 10000))
      a.max_connections = static_cast<int>(*i);
  }
  if (const Node* v = m.get("token"); given(v)) {
    if (auto ref = get_secret(r, *v, m.path("token"))) {
      // Optional: unset means loopback only, without auth; the daemon says so at start.
      a.token = std::move(*ref);
    }
  }
}

void parse_publish(Reader& r, const Node* n, Publish& p, bool require_secrets) {
  Map m(r, n, "publish");
  if (!m.valid() || !m.present()) return;
  m.allow({"max_entries", "keys"});
  if (const Node* v = m.get("max_entries"); given(v)) {
    if (auto i = get_int(r, *v, m.path("max_entries"), 1, 1000)) p.max_entries = static_cast<int>(*i);
  }
  const Node* keys = m.get("keys");
  if (!given(keys) || keys->bad) {
    if (!given(keys))
      r.warning(*m.node(), m.path("keys"), "no publish key is configured: the publish API is off");
    return;
  }
  if (keys->kind != Node::Kind::sequence) {
    r.error(*keys, m.path("keys"), "expected a sequence of keys {name, key, sources}, found " + found(*keys));
    return;
  }
  std::map<std::string, int> names;
  for (std::size_t i = 0; i < keys->items.size(); ++i) {
    const Node& item = keys->items[i];
    const std::string path = index_path(m.path("keys"), i);
    Map km(r, &item, path);
    if (!km.valid()) continue;
    if (!km.present()) {
      r.error(item, path, "expected a key {name, key, sources}, found an empty value");
      continue;
    }
    km.allow({"name", "key", "sources"});
    PublishKey k;
    k.where = r.where(item);
    if (const Node* v = km.get("name"); given(v)) {
      if (auto s =
              get_name(r, *v, km.path("name"), "[A-Za-z0-9_.-]+", "a key name made of A-Z a-z 0-9 _ . -")) {
        k.name = *s;
        auto [it, inserted] = names.emplace(k.name, v->line);
        if (!inserted) {
          r.error(*v, km.path("name"),
                  "duplicate key name '" + k.name + "' (first at line " + std::to_string(it->second) + ")");
        }
      }
    } else {
      km.missing("name", item, "a name for the producer holding this key, e.g. orders-service");
    }
    if (const Node* v = km.get("key"); given(v)) {
      if (auto ref = get_secret(r, *v, km.path("key"))) {
        check_secret(r, *v, km.path("key"), *ref, require_secrets);
        k.key = std::move(*ref);
      }
    } else {
      km.missing("key", item, "a secret reference {env: NAME} or {file: PATH}");
    }
    if (const Node* v = km.get("sources"); given(v)) {
      auto list =
          get_string_list(r, *v, km.path("sources"), "a sequence of sources, e.g. [app.orders, \"app.*\"]");
      if (list && list->empty()) {
        r.error(*v, km.path("sources"), "expected at least one source, e.g. [app.orders]");
      } else if (list) {
        for (std::size_t j = 0; j < list->size(); ++j) {
          const auto& [name, node] = (*list)[j];
          const std::string sp =
              v->kind == Node::Kind::sequence ? index_path(km.path("sources"), j) : km.path("sources");
          if (!matches(name, "[A-Za-z0-9._/:*-]{1,256}")) {
            r.error(*node, sp,
                    "expected a source such as app.orders or app.* (" + std::string(kSourceNameText) +
                        ", and * for any run of characters), found " + found(*node));
          } else {
            k.sources.push_back(name);
          }
        }
      }
    } else {
      km.missing("sources", item, "the sources this key may publish, e.g. [app.orders, \"app.*\"]");
    }
    p.keys.push_back(std::move(k));
  }
}

void parse_log(Reader& r, const Node* n, Log& l) {
  Map m(r, n, "log");
  if (!m.valid()) return;
  m.allow({"level", "format"});
  if (const Node* v = m.get("level"); given(v)) {
    if (auto s = get_choice(r, *v, m.path("level"), {"trace", "debug", "info", "warn", "error"}))
      l.level = *s;
  }
  if (const Node* v = m.get("format"); given(v)) {
    if (auto s = get_choice(r, *v, m.path("format"), {"text", "json"})) l.format = *s;
  }
}

void parse_reload(Reader& r, const Node* n, Reload& reload) {
  Map m(r, n, "reload");
  if (!m.valid()) return;
  m.allow({"watch", "debounce"});
  if (const Node* v = m.get("watch"); given(v)) {
    if (auto b = get_bool(r, *v, m.path("watch"))) reload.watch = *b;
  }
  if (const Node* v = m.get("debounce"); given(v)) {
    if (auto d = get_duration(r, *v, m.path("debounce"), true)) reload.debounce = *d;
  }
}

void parse_schemas(Reader& r, const Node* n, Schemas& s) {
  Map m(r, n, "schemas");
  if (!m.valid()) return;
  m.allow({"enabled", "redact", "redact_defaults", "max_fields", "max_schemas", "max_array_items",
           "sample_rate", "max_rate", "queue", "flush_interval"});
  if (const Node* v = m.get("enabled"); given(v)) {
    if (auto b = get_bool(r, *v, m.path("enabled"))) s.enabled = *b;
  }
  if (const Node* v = m.get("redact"); given(v)) {
    if (auto list = get_string_list(r, *v, m.path("redact"), "a sequence of key names or paths")) {
      for (auto& [text, node] : *list) {
        if (text.size() > 256) {
          r.error(*node, m.path("redact"), "expected a key name or path of at most 256 characters");
          continue;
        }
        s.redact.push_back(text);
      }
    }
  }
  if (const Node* v = m.get("redact_defaults"); given(v)) {
    if (auto b = get_bool(r, *v, m.path("redact_defaults"))) s.redact_defaults = *b;
  }
  if (const Node* v = m.get("max_fields"); given(v)) {
    if (auto i = get_int(r, *v, m.path("max_fields"), 1, 100000)) s.max_fields = static_cast<int>(*i);
  }
  if (const Node* v = m.get("max_schemas"); given(v)) {
    if (auto i = get_int(r, *v, m.path("max_schemas"), 1, 100000)) s.max_schemas = static_cast<int>(*i);
  }
  if (const Node* v = m.get("max_array_items"); given(v)) {
    if (auto i = get_int(r, *v, m.path("max_array_items"), 1, 10000))
      s.max_array_items = static_cast<int>(*i);
  }
  if (const Node* v = m.get("sample_rate"); given(v)) {
    if (auto d = get_number(r, *v, m.path("sample_rate"), 0, 1, "a number between 0 and 1"))
      s.sample_rate = *d;
  }
  if (const Node* v = m.get("max_rate"); given(v)) {
    if (auto i = get_int(r, *v, m.path("max_rate"), 0, 1000000)) s.max_rate = static_cast<int>(*i);
  }
  if (const Node* v = m.get("queue"); given(v)) {
    if (auto i = get_int(r, *v, m.path("queue"), 1, 1000000)) s.queue = static_cast<int>(*i);
  }
  if (const Node* v = m.get("flush_interval"); given(v)) {
    if (auto d = get_duration(r, *v, m.path("flush_interval"))) s.flush_interval = *d;
  }
}

// ---------------------------------------------------------------------------------------------------
// Files.

// Counts a stream's documents (up to kMax) and remembers where the second one starts.
struct DocumentCounter final : YAML::EventHandler {
  static constexpr int kMax = 16;
  int documents = 0;
  YAML::Mark second = YAML::Mark::null_mark();
  void OnDocumentStart(const YAML::Mark& mark) override {
    if (documents == 1) second = mark;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
  }
  void OnMapEnd() override {}
};

// Whether `text` may hold more than one YAML document: it has a document marker or directive anywhere
// (a conservative test: anywhere, not only at the start of a line), or a byte order mark.
bool may_hold_documents(std::string_view text) {
  return text.find("---") != std::string_view::npos || text.find("...") != std::string_view::npos ||
         text.find('%') != std::string_view::npos || text.find("\xEF\xBB\xBF") != std::string_view::npos;
}

// The whole file into `text`; "" or why it cannot be read. With plain system calls: a start reads 1,000
// flow files, and a stream per file costs a quarter as much as parsing it.
std::string read_file(const fs::path& file, std::string& text) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::strerror(errno);
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return std::strerror(errno);
  if (S_ISDIR(st.st_mode)) return "is a directory";
  text.clear();
  if (S_ISREG(st.st_mode)) text.reserve(static_cast<std::size_t>(st.st_size));
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) return {};
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::strerror(errno);
    }
    text.append(buf, static_cast<std::size_t>(n));
  }
}

// Reads and parses a YAML file with exactly one document; reports its problems and returns nullopt.
std::optional<Node> read_yaml(Reader& r, const fs::path& file, const char* expected) {
  std::string text;
  if (const std::string why = read_file(file, text); !why.empty()) {
    r.error(Node{}, "", "cannot read file (" + why + ")");
    return std::nullopt;
  }
  YAML::Node doc;
  DocumentCounter counter;
  try {
    // Not YAML::LoadAll: in yaml-cpp 0.7 it loops forever, allocating, on some malformed input (the
    // parser reports a document it cannot consume again and again; found by tests/fuzz/config_fuzz.cpp).
    // The documents are counted with a bounded loop, and only the first is built.
    // A second document needs a marker (a line starting with "---" or "...", or a "%" directive; a byte
    // order mark may precede one): text with none of them holds at most one document, so the counting
    // parse (half of the YAML work of a start) is skipped.
    if (may_hold_documents(text)) {
      std::istringstream in(text);
      YAML::Parser parser(in);
      while (counter.documents < DocumentCounter::kMax && parser.HandleNextDocument(counter)) {
        ++counter.documents;
      }
      if (counter.documents > 0) doc = YAML::Load(text);
    } else {
      doc = YAML::Load(text);  // a null node when there is no document
      counter.documents = doc.IsNull() ? 0 : 1;
    }
  } catch (const YAML::ParserException& e) {
    Node at;
    at.line = 1;
    at.column = 1;
    set_mark(at, e.mark);
    r.error(at, "", "invalid YAML: " + e.msg);
    return std::nullopt;
  } catch (const YAML::Exception& e) {
    Node at;  // where yaml-cpp says, or the start of the file
    at.line = 1;
    at.column = 1;
    set_mark(at, e.mark);
    r.error(at, "", std::string("invalid YAML: ") + e.what());
    return std::nullopt;
  }
  if (counter.documents == 0 || (counter.documents == 1 && doc.IsNull())) {
    Node at;
    at.line = 1;
    at.column = 1;
    r.error(at, "", std::string("the file is empty (expected ") + expected + ")");
    return std::nullopt;
  }
  if (counter.documents > 1) {
    Node at;
    at.line = 1;
    at.column = 1;
    set_mark(at, counter.second);
    r.error(at, "",
            std::string("expected a single YAML document (") + expected + "), found " +
                (counter.documents < DocumentCounter::kMax
                     ? std::to_string(counter.documents)
                     : "more than " + std::to_string(counter.documents - 1)));
    return std::nullopt;
  }
  Node root = convert(doc);
  if (root.kind != Node::Kind::map) {
    r.error(root, "", std::string("expected ") + expected + ", found " + found(root));
    return std::nullopt;
  }
  prepare(r, root, "");
  return root;
}

// Sorts one file's diagnostics by position, keeping the order of problems found at the same place.
void append_sorted(std::vector<Diagnostic>& out, std::vector<Diagnostic> local) {
  std::stable_sort(local.begin(), local.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.where.line, a.where.column) < std::tie(b.where.line, b.where.column);
  });
  for (auto& d : local) out.push_back(std::move(d));
}

// What loading a flow file gave, with the positions the cross-flow checks need.
struct FlowResult {
  Flow flow;
  bool ok = false;
  bool has_name = false;
  SourceLocation name_where;
  SourceLocation listener_id_where;
  std::set<std::string> connections_used;
  bool require_secrets = true;  // an unset secret is an error (else a warning)
};

bool any_bad(const Node& n);

// "unknown variable <x>" with a hint: the closest bound name, else the names bound.
std::string unknown_variable(const std::string& name, const mapping::Inputs& inputs, char open, char close) {
  std::string msg = "unknown variable " + std::string(1, open) + name + std::string(1, close);
  const auto names = inputs.names();
  if (auto hint = closest(name, names)) {
    return msg + " (did you mean " + std::string(1, open) + *hint + std::string(1, close) + "?)";
  }
  std::vector<std::string> bound;
  for (const auto& n : names) {
    if (n.rfind("evrouter.", 0) != 0) bound.push_back(n);
  }
  return msg + " (bind it under input_paths" + (bound.empty() ? "" : "; bound: " + join(bound)) +
         "; predefined: evrouter.event, evrouter.payload, evrouter.event-id, evrouter.event-type, "
         "evrouter.flow, "
         "evrouter.delivery-id)";
}

// The node a JSON pointer (from a template error) designates inside `root`, and its key path.
const Node& locate(const Node& root, const std::string& pointer, std::string& path) {
  const Node* n = &root;
  std::size_t pos = 0;
  while (pos < pointer.size() && pointer[pos] == '/') {
    const std::size_t end = std::min(pointer.find('/', pos + 1), pointer.size());
    std::string token = pointer.substr(pos + 1, end - pos - 1);
    for (std::size_t i = 0; (i = token.find('~', i)) != std::string::npos; ++i) {
      token.replace(i, 2, token.compare(i, 2, "~1") == 0 ? "/" : "~");
    }
    pos = end;
    const Node* next = nullptr;
    if (n->kind == Node::Kind::map) {
      for (const auto& [k, v] : n->entries) {
        if (k.text == token) next = &v;
      }
      path = key_path(path, token);
    } else if (n->kind == Node::Kind::sequence) {
      const std::size_t i = std::stoul(token);
      if (i < n->items.size()) next = &n->items[i];
      path = index_path(path, i);
    }
    if (next == nullptr) break;
    n = next;
  }
  return *n;
}

// input_paths: name -> path, or name -> {path: ..., as: number|string}. Binds them into `inputs`.
void parse_input_paths(Reader& r, const Map& m, Destination& d, mapping::Inputs& inputs,
                       std::map<std::string, const Node*>& keys) {
  const Node* v = m.get("input_paths");
  if (!given(v)) return;
  Map im(r, v, m.path("input_paths"));
  if (!im.valid()) return;
  for (const auto& [k, val] : v->entries) {
    if (k.bad || keys.count(k.text) != 0) continue;  // a repeated key is reported by prepare()
    const std::string p = im.path(k.text);
    if (!mapping::Inputs::valid_name(k.text)) {
      r.error(k, p,
              "expected a variable name made of A-Z a-z 0-9 _ - (evrouter.* names are predefined), found '" +
                  k.text + "'");
      continue;
    }
    InputPath in;
    in.name = k.text;
    in.where = r.where(val);
    const Node* path_node = &val;
    std::string path_path = p;
    if (val.kind == Node::Kind::map) {
      Map pm(r, &val, p);
      pm.allow({"path", "as"});
      path_node = pm.get("path");
      path_path = pm.path("path");
      if (const Node* a = pm.get("as"); given(a)) {
        if (auto c = get_choice(r, *a, pm.path("as"), {"value", "number", "string"})) {
          in.as = *c == "number"   ? InputPath::As::number
                  : *c == "string" ? InputPath::As::string
                                   : InputPath::As::value;
        }
      }
      if (!given(path_node)) {
        pm.missing("path", val, "a path into the event such as $.detail.id");
        continue;
      }
    } else if (!given(path_node)) {
      r.error(val, p, "expected a path into the event such as $.detail.id, found an empty value");
      continue;
    }
    auto text =
        get_string(r, *path_node, path_path, "a path such as $.detail.id, or {path: ..., as: number}");
    if (!text) continue;
    try {
      inputs.bind(in.name, mapping::Path::parse(*text), mapping::Inputs::As::value);
    } catch (const mapping::MappingError& e) {
      r.error(*path_node, path_path, e.what());
      continue;
    }
    in.path = *text;
    keys.emplace(in.name, &k);
    d.input_paths.push_back(std::move(in));
  }
}

// input_template: a YAML value (mapping, sequence, scalar), or a string holding a JSON object or array.
void parse_input_template(Reader& r, const Node& n, const std::string& path, Destination& d,
                          mapping::Inputs& inputs) {
  if (any_bad(n)) return;
  nlohmann::ordered_json tmpl;
  bool from_text = false;
  if (n.kind == Node::Kind::scalar && !n.text.empty()) {
    const auto first = n.text.find_first_not_of(" \t\r\n");
    from_text = first != std::string::npos && (n.text[first] == '{' || n.text[first] == '[');
  }
  if (from_text) {
    try {
      tmpl = nlohmann::ordered_json::parse(n.text);
    } catch (const nlohmann::json::parse_error& e) {
      std::string msg = e.what();
      const auto colon = msg.find("] ");
      if (colon != std::string::npos) msg = msg.substr(colon + 2);
      r.error(n, path,
              "expected a template (a mapping, or a JSON object or array in a string), found invalid JSON: " +
                  msg + " (placeholders go inside quotes: \"<name>\" keeps the value's type)");
      return;
    }
  } else {
    tmpl = to_ordered_json(n);
  }
  try {
    (void)mapping::Template::compile(tmpl, inputs);
  } catch (const mapping::MappingError& e) {
    std::string at = path;
    const Node& where = from_text ? n : locate(n, e.pointer(), at);
    if (from_text && !e.pointer().empty()) at += " (at " + e.pointer() + ")";
    r.error(where, at, e.unknown().empty() ? e.what() : unknown_variable(e.unknown(), inputs, '<', '>'));
    return;
  }
  d.input_template = std::move(tmpl);
}

// A path or header value: every {name} must be bound.
bool check_variables(Reader& r, const Node& n, const std::string& path, const std::string& text,
                     mapping::Inputs& inputs, mapping::Text::Encoding encoding) {
  try {
    (void)mapping::Text::compile(text, inputs, encoding);
    return true;
  } catch (const mapping::MappingError& e) {
    r.error(n, path, e.unknown().empty() ? e.what() : unknown_variable(e.unknown(), inputs, '{', '}'));
    return false;
  }
}

// ordering_key: a path into the envelope that selects one value (no wildcard).
void parse_ordering_key(Reader& r, const Map& m, Destination& d) {
  const Node* v = m.get("ordering_key");
  if (!given(v)) return;
  const std::string p = m.path("ordering_key");
  auto text = get_string(r, *v, p, "a path into the event such as $.detail.id");
  if (!text) return;
  try {
    if (mapping::Path::parse(*text).wildcard()) {
      r.error(*v, p, "expected a path that selects one value, found a wildcard in '" + *text + "'");
      return;
    }
  } catch (const mapping::MappingError& e) {
    r.error(*v, p, e.what());
    return;
  }
  d.ordering_key = *text;
}

// batch: {max_events, max_bytes, max_wait}. One request carries many events, so its path and headers must
// be the same for all of them (no {name} variables).
void parse_batch(Reader& r, const Map& m, Destination& d, mapping::Inputs& inputs) {
  const Node* v = m.get("batch");
  if (!given(v)) return;
  Map bm(r, v, m.path("batch"));
  if (!bm.valid()) return;
  bm.allow({"max_events", "max_bytes", "max_wait"});
  Batch b;
  if (const Node* e = bm.get("max_events"); given(e)) {
    if (auto i = get_int(r, *e, bm.path("max_events"), 1, 256)) b.max_events = static_cast<int>(*i);
  }
  if (const Node* e = bm.get("max_bytes"); given(e)) {
    if (auto s = get_size(r, *e, bm.path("max_bytes"))) b.max_bytes = *s;
  }
  if (const Node* e = bm.get("max_wait"); given(e)) {
    if (auto t = get_duration(r, *e, bm.path("max_wait"))) b.max_wait = *t;
  }
  auto varies = [&inputs](const std::string& text, mapping::Text::Encoding encoding) {
    try {
      return !mapping::Text::compile(text, inputs, encoding).constant();
    } catch (const mapping::MappingError&) {
      return false;  // reported where the text is read
    }
  };
  if (varies(d.path, mapping::Text::Encoding::uri)) {
    r.error(*v, m.path("batch"),
            "a batched destination sends many events in one request: its path cannot use {variables} "
            "(found '" +
                d.path + "')");
  }
  for (const auto& [name, value] : d.headers) {
    if (varies(value, mapping::Text::Encoding::header)) {
      r.error(*v, m.path("batch"),
              "a batched destination sends many events in one request: header " + name +
                  " cannot use {variables}");
    }
  }
  d.batch = b;
}

void parse_destination(Reader& r, const Node& n, const std::string& path, Destination& d,
                       const std::map<std::string, Connection>* connections, FlowResult& result) {
  d.where = r.where(n);
  Map m(r, &n, path);
  if (!m.valid()) return;
  m.allow({"connection", "name", "method", "path", "headers", "retry", "input_paths", "input_template",
           "ordering_key", "batch", "signing", "cloudevents", "responses"});
  // Variables first: the template, the path and the header values may use them.
  const std::size_t errors_before = r.errors();
  mapping::Inputs inputs;
  std::map<std::string, const Node*> input_keys;
  parse_input_paths(r, m, d, inputs, input_keys);
  if (const Node* v = m.get("input_template"); given(v)) {
    parse_input_template(r, *v, m.path("input_template"), d, inputs);
  } else if (v != nullptr) {
    r.error(*v, m.path("input_template"),
            "expected a template, found an empty value (leave input_template out to send the payload as "
            "received)");
  }
  RetryPolicy base;
  if (const Node* v = m.get("connection"); given(v)) {
    if (auto c = get_string(r, *v, m.path("connection"), "the name of a connection")) {
      d.connection = *c;
      result.connections_used.insert(*c);
      if (connections != nullptr) {
        auto it = connections->find(*c);
        if (it == connections->end()) {
          std::vector<std::string> names;
          for (const auto& [name, conn] : *connections) names.push_back(name);
          std::string msg = "unknown connection '" + *c + "'";
          if (auto hint = closest(*c, names)) {
            msg += " (did you mean '" + *hint + "'?)";
          } else if (names.empty()) {
            msg += " (no connection is defined)";
          } else {
            msg += " (defined: " + join(names) + ")";
          }
          r.error(*v, m.path("connection"), msg);
        } else {
          base = it->second.retry;
        }
      }
    }
  } else {
    m.missing("connection", n, "the name of a connection defined in the main config");
  }
  if (const Node* v = m.get("name"); given(v)) {
    if (auto s = get_name(r, *v, m.path("name"), "[A-Za-z0-9_.-]+", "a name made of A-Z a-z 0-9 _ . -"))
      d.name = *s;
  }
  if (const Node* v = m.get("method"); given(v)) {
    Node upper = *v;
    std::transform(upper.text.begin(), upper.text.end(), upper.text.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
    if (v->kind == Node::Kind::scalar && upper.text != v->text) {
      // Accept "post" as POST; report with the original spelling otherwise.
      const auto choices = {"GET", "POST", "PUT", "PATCH", "DELETE"};
      if (std::find(choices.begin(), choices.end(), upper.text) != choices.end()) {
        d.method = upper.text;
      } else {
        get_choice(r, *v, m.path("method"), {"GET", "POST", "PUT", "PATCH", "DELETE"});
      }
    } else if (auto s = get_choice(r, *v, m.path("method"), {"GET", "POST", "PUT", "PATCH", "DELETE"})) {
      d.method = *s;
    }
  }
  if (const Node* v = m.get("path"); given(v)) {
    if (auto s = get_string(r, *v, m.path("path"), "a path starting with /")) {
      if (s->empty() || s->front() != '/' || std::any_of(s->begin(), s->end(), [](unsigned char ch) {
            return std::isspace(ch) || std::iscntrl(ch);
          })) {
        r.error(*v, m.path("path"),
                "expected a path starting with / (no spaces), e.g. /orders, found " + found(*v));
      } else if (check_variables(r, *v, m.path("path"), *s, inputs, mapping::Text::Encoding::uri)) {
        d.path = *s;
      }
    }
  }
  if (const Node* v = m.get("headers"); given(v)) {
    Map h(r, v, m.path("headers"));
    if (h.valid()) {
      static const std::set<std::string> reserved = {"host", "content-length", "transfer-encoding",
                                                     "connection", "content-type"};
      for (const auto& [k, val] : v->entries) {
        if (k.bad) continue;
        const std::string p = h.path(k.text);
        if (!matches(k.text, "[!#$%&'*+.^_`|~0-9A-Za-z-]+")) {
          r.error(k, p, "expected an HTTP header name (letters, digits, -), found '" + k.text + "'");
          continue;
        }
        std::string lower = k.text;
        std::transform(lower.begin(), lower.end(), lower.begin(),
                       [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
        if (reserved.count(lower) != 0) {
          r.error(k, p,
                  "header " + k.text + " is set by evrouter" +
                      (lower == "content-type" ? " from the connection's media_type" : "") +
                      " and cannot be configured");
          continue;
        }
        auto s = get_string(r, val, p, "a header value");
        if (!s) continue;
        if (s->find_first_of("\r\n") != std::string::npos) {
          r.error(val, p, "expected a header value on one line, found a line break");
          continue;
        }
        if (!check_variables(r, val, p, *s, inputs, mapping::Text::Encoding::header)) continue;
        d.headers.emplace_back(k.text, *s);
      }
    }
  }
  d.retry.reset();
  if (const Node* v = m.get("retry"); given(v)) {
    RetryPolicy policy = base;
    parse_retry(r, *v, m.path("retry"), policy);
    d.retry = policy;
  }
  parse_ordering_key(r, m, d);
  parse_batch(r, m, d, inputs);
  d.signing.reset();
  if (const Node* v = m.get("signing"); given(v)) {
    Signing signing;
    parse_signing(r, *v, m.path("signing"), signing, result.require_secrets);
    d.signing = std::move(signing);
  }
  if (const Node* v = m.get("cloudevents"); given(v)) {
    if (auto s = get_choice(r, *v, m.path("cloudevents"), {"none", "binary", "structured"})) {
      d.cloudevents = *s == "binary"       ? Destination::CloudEvents::binary
                      : *s == "structured" ? Destination::CloudEvents::structured
                                           : Destination::CloudEvents::none;
      if (d.batch && d.cloudevents == Destination::CloudEvents::binary) {
        r.error(*v, m.path("cloudevents"),
                "a batched destination sends many events in one request: binary mode puts one event's "
                "attributes in the headers; use cloudevents: structured (a JSON array of CloudEvents)");
      }
    }
  }
  d.responses.reset();
  if (const Node* v = m.get("responses"); given(v)) {
    Responses responses;
    parse_responses(r, *v, m.path("responses"), responses);
    d.responses = std::move(responses);
  }
  // After an error, a variable may look unused only because its user was rejected: stay quiet then.
  for (const auto& name : r.errors() == errors_before ? inputs.unused() : std::vector<std::string>{}) {
    auto it = input_keys.find(name);
    if (it != input_keys.end()) {
      r.warning(*it->second, m.path("input_paths") + "." + name,
                "input path '" + name + "' is not used by input_template, path or headers");
    }
  }
}

void parse_branch_destinations(Reader& r, Map& m, const Node& branch_node, Branch& b,
                               const std::map<std::string, Connection>* connections, FlowResult& result) {
  const Node* v = m.get("destinations");
  if (!given(v)) {
    m.missing("destinations", branch_node, "a sequence of destinations");
    return;
  }
  if (v->bad) return;
  if (v->kind != Node::Kind::sequence) {
    r.error(*v, m.path("destinations"), "expected a sequence of destinations, found " + found(*v));
    return;
  }
  if (v->items.empty()) {
    r.error(*v, m.path("destinations"), "expected at least one destination, found an empty sequence");
    return;
  }
  std::map<std::string, int> per_connection;
  std::map<std::string, const Node*> names;
  for (std::size_t i = 0; i < v->items.size(); ++i) {
    const Node& item = v->items[i];
    const std::string p = index_path(m.path("destinations"), i);
    Destination d;
    parse_destination(r, item, p, d, connections, result);
    if (d.name.empty() && !d.connection.empty()) {
      const int n = ++per_connection[d.connection];
      d.name = n == 1 ? d.connection : d.connection + "-" + std::to_string(n);
    }
    if (!d.name.empty()) {
      auto [it, inserted] = names.emplace(d.name, &item);
      if (!inserted) {
        r.error(item, p + ".name",
                "duplicate destination name '" + d.name + "' in this branch (first at line " +
                    std::to_string(it->second->line) + "); give each destination a distinct name");
      }
    }
    b.destinations.push_back(std::move(d));
  }
}

bool any_bad(const Node& n) {
  if (n.bad) return true;
  for (const auto& [k, v] : n.entries) {
    if (k.bad || any_bad(v)) return true;
  }
  for (const auto& item : n.items) {
    if (any_bad(item)) return true;
  }
  return false;
}

void parse_match(Reader& r, const Node& n, const std::string& path, Branch& b) {
  b.match_where = r.where(n);
  if (any_bad(n)) return;  // already reported (e.g. an unset ${VAR} inside the pattern)
  nlohmann::json pattern;
  if (n.kind == Node::Kind::map) {
    pattern = to_json(n);
  } else if (n.kind == Node::Kind::scalar) {
    try {
      pattern = nlohmann::json::parse(n.text);
    } catch (const nlohmann::json::parse_error& e) {
      std::string msg = e.what();
      const auto colon = msg.find("] ");
      if (colon != std::string::npos) msg = msg.substr(colon + 2);
      r.error(
          n, path,
          "expected an EventBridge pattern (a mapping, or a JSON object in a string), found invalid JSON: " +
              msg);
      return;
    }
    if (!pattern.is_object()) {
      r.error(n, path,
              "expected an EventBridge pattern (a mapping, or a JSON object in a string), found " + found(n));
      return;
    }
  } else {
    r.error(n, path,
            "expected an EventBridge pattern (a mapping, or a JSON object in a string), found " + found(n));
    return;
  }
  try {
    (void)pattern::Pattern::compile(pattern);
  } catch (const pattern::PatternError& e) {
    r.error(n, path, e.what());
    return;
  } catch (const std::exception& e) {
    r.error(n, path, std::string("invalid pattern: ") + e.what());
    return;
  }
  b.match = std::move(pattern);
}

// `secret: {...}` or `secrets: [{...}, ...]` in mapping `m` (exactly one of them); appends to `out`.
void parse_secret_list(Reader& r, Map& m, const Node& n, std::vector<SecretRef>& out, bool require_secrets,
                       const std::string& expected) {
  const Node* one = m.get("secret");
  const Node* many = m.get("secrets");
  if (given(one) && given(many)) {
    r.error(*m.key_node("secrets"), m.path("secrets"),
            "use either secret or secrets, not both (put every secret in the secrets list)");
  }
  if (given(one)) {
    if (auto ref = get_secret(r, *one, m.path("secret"))) {
      check_secret(r, *one, m.path("secret"), *ref, require_secrets);
      out.push_back(std::move(*ref));
    }
  }
  if (given(many) && !many->bad) {
    if (many->kind != Node::Kind::sequence) {
      r.error(*many, m.path("secrets"),
              "expected a sequence of secret references, e.g. [{env: A}, {env: B}], found " + found(*many));
    } else if (many->items.empty()) {
      r.error(*many, m.path("secrets"), "expected at least one secret reference, found an empty sequence");
    } else {
      for (std::size_t i = 0; i < many->items.size(); ++i) {
        const std::string p = index_path(m.path("secrets"), i);
        if (auto ref = get_secret(r, many->items[i], p)) {
          check_secret(r, many->items[i], p, *ref, require_secrets);
          out.push_back(std::move(*ref));
        }
      }
    }
  }
  if (!given(one) && !given(many)) m.missing("secret", n, expected);
}

// A secret that must be given under `key` (basic password, bearer token).
void parse_required_secret(Reader& r, Map& m, const Node& n, const char* key, std::vector<SecretRef>& out,
                           bool require_secrets) {
  const Node* v = m.get(key);
  if (!given(v)) {
    m.missing(key, n, "a secret reference {env: NAME} or {file: PATH}");
    return;
  }
  if (auto ref = get_secret(r, *v, m.path(key))) {
    check_secret(r, *v, m.path(key), *ref, require_secrets);
    out.push_back(std::move(*ref));
  }
}

void parse_verify(Reader& r, const Node& n, const std::string& path, Verify& v, bool require_secrets) {
  v.where = r.where(n);
  if (n.bad) return;
  if (n.kind == Node::Kind::scalar && n.text == "none") {
    v.type = Verify::Type::none;
  } else {
    Map m(r, &n, path);
    if (!m.valid()) return;
    const Node* type = m.get("type");
    if (!given(type)) {
      m.missing("type", n, "hmac, standard-webhooks, basic, bearer or none");
      return;
    }
    auto t = get_choice(r, *type, m.path("type"), {"hmac", "standard-webhooks", "basic", "bearer", "none"});
    if (!t) return;
    if (*t == "hmac") {
      v.type = Verify::Type::hmac;
      m.allow({"type", "header", "algorithm", "encoding", "prefix", "secret", "secrets"});
      if (const Node* h = m.get("header"); given(h)) {
        if (auto s = get_name(r, *h, m.path("header"), kHeaderName, "an HTTP header name")) v.header = *s;
      } else {
        m.missing("header", n, "the header carrying the signature, e.g. X-Hub-Signature-256");
      }
      if (const Node* a = m.get("algorithm"); given(a)) {
        if (auto s = get_choice(r, *a, m.path("algorithm"), {"sha256", "sha1"})) {
          v.algorithm = *s == "sha1" ? Verify::Algorithm::sha1 : Verify::Algorithm::sha256;
        }
      }
      if (const Node* e = m.get("encoding"); given(e)) {
        if (auto s = get_choice(r, *e, m.path("encoding"), {"hex", "base64"})) {
          v.encoding = *s == "hex" ? Verify::Encoding::hex : Verify::Encoding::base64;
        }
      }
      if (const Node* p = m.get("prefix"); given(p)) {
        if (auto s = get_name(r, *p, m.path("prefix"), R"([!-~]{1,32})",
                              "up to 32 printable characters without spaces, e.g. sha256=")) {
          v.prefix = *s;
        }
      }
      parse_secret_list(r, m, n, v.secrets, require_secrets,
                        "the signing secret, e.g. {env: GITHUB_WEBHOOK_SECRET}");
    } else if (*t == "standard-webhooks") {
      v.type = Verify::Type::standard_webhooks;
      m.allow({"type", "secret", "secrets", "tolerance"});
      if (const Node* d = m.get("tolerance"); given(d)) {
        if (auto ms = get_duration(r, *d, m.path("tolerance"))) v.tolerance = *ms;
      }
      const std::size_t first = v.secrets.size();
      parse_secret_list(r, m, n, v.secrets, require_secrets,
                        "the signing secret (whsec_...), e.g. {env: WEBHOOK_SECRET}");
      for (std::size_t i = first; i < v.secrets.size(); ++i) {
        const SecretRef& ref = v.secrets[i];
        if (auto value = ref.resolve(); value && !source::standard_webhooks_key(*value)) {
          Node at;
          at.line = ref.where.line;
          at.column = ref.where.column;
          r.error(at, m.path(v.secrets.size() - first > 1 ? "secrets" : "secret"),
                  ref.describe() + " is not a Standard Webhooks secret (whsec_ followed by base64)");
        }
      }
    } else if (*t == "basic") {
      v.type = Verify::Type::basic;
      m.allow({"type", "username", "password"});
      if (const Node* u = m.get("username"); given(u)) {
        if (auto s = get_name(r, *u, m.path("username"), "[^:\\s]{1,128}",
                              "a user name of 1 to 128 characters without ':' or spaces")) {
          v.username = *s;
        }
      } else {
        m.missing("username", n, "a user name");
      }
      parse_required_secret(r, m, n, "password", v.secrets, require_secrets);
    } else if (*t == "bearer") {
      v.type = Verify::Type::bearer;
      m.allow({"type", "token"});
      parse_required_secret(r, m, n, "token", v.secrets, require_secrets);
    } else {
      v.type = Verify::Type::none;
      m.allow({"type"});
    }
  }
  if (v.type == Verify::Type::none) {
    r.warning(
        n, path,
        "verify type none accepts every request that reaches the listener URL; use it only on a private "
        "network or behind a proxy that authenticates producers");
  }
}

void parse_source(Reader& r, const Node* n, const Node& root, Source& s, bool require_secrets,
                  FlowResult& result) {
  if (!given(n)) {
    r.error(root, "source",
            "required key 'source' is missing (expected {type: shopify, secret: {env: NAME}})");
    return;
  }
  s.where = r.where(*n);
  Map m(r, n, "source");
  if (!m.valid()) return;
  if (const Node* v = m.get("type"); given(v)) {
    if (auto t = get_choice(r, *v, m.path("type"), {"shopify", "webhook", "bus"})) s.type = *t;
  }
  if (s.type == "bus") {
    m.allow({"type", "sources"});
    if (const Node* v = m.get("sources"); given(v)) {
      if (auto list = get_string_list(r, *v, m.path("sources"),
                                      "a sequence of sources, e.g. [app.orders, \"app.*\"]")) {
        for (std::size_t i = 0; i < list->size(); ++i) {
          const auto& [name, node] = (*list)[i];
          const std::string p =
              v->kind == Node::Kind::sequence ? index_path(m.path("sources"), i) : m.path("sources");
          if (!matches(name, "[A-Za-z0-9._/:*-]{1,256}")) {
            r.error(*node, p,
                    "expected a source such as app.orders or app.* (" + std::string(kSourceNameText) +
                        ", and * for any run of characters), found " + found(*node));
          } else {
            s.sources.push_back(name);
          }
        }
      }
    }
    return;
  }
  if (s.type == "webhook") {
    m.allow({"type", "listener_id", "verify", "name", "event_type", "type_header", "type_field", "id_header",
             "keep_headers", "topics"});
  } else {
    m.allow({"type", "listener_id", "secret", "secrets", "topics"});
  }
  if (const Node* v = m.get("listener_id"); given(v)) {
    if (auto id = get_name(r, *v, m.path("listener_id"), "[A-Za-z0-9_-]{22,64}",
                           "22 to 64 characters from A-Z a-z 0-9 _ -")) {
      s.listener_id = *id;
      result.listener_id_where = r.where(*v);
    }
  }
  if (s.type == "shopify") {
    parse_secret_list(r, m, *n, s.secrets, require_secrets,
                      "the webhook signing secret, e.g. {env: SHOPIFY_WEBHOOK_SECRET}");
  } else {
    if (const Node* v = m.get("verify"); given(v)) {
      parse_verify(r, *v, m.path("verify"), s.verify, require_secrets);
    } else {
      m.missing(
          "verify", *n,
          "how requests are authenticated: {type: hmac | standard-webhooks | basic | bearer | none, ...}");
    }
    if (const Node* v = m.get("name"); given(v)) {
      if (auto name = get_name(r, *v, m.path("name"), kSourceName, kSourceNameText)) s.name = *name;
    }
    const Node* type_given = nullptr;
    std::string type_key;
    // In file order, so the second one written is the one reported.
    std::vector<const char*> type_keys;
    for (const char* key : {"event_type", "type_header", "type_field"}) {
      if (given(m.get(key))) type_keys.push_back(key);
    }
    std::sort(type_keys.begin(), type_keys.end(), [&m](const char* a, const char* b) {
      return std::pair(m.key_node(a)->line, m.key_node(a)->column) <
             std::pair(m.key_node(b)->line, m.key_node(b)->column);
    });
    for (const char* key : type_keys) {
      const Node* v = m.get(key);
      if (type_given != nullptr) {
        r.error(*m.key_node(key), m.path(key),
                "use one of event_type, type_header or type_field, not both " + type_key + " and " + key);
        continue;
      }
      type_given = v;
      type_key = key;
      std::optional<std::string> value;
      if (std::string_view(key) == "event_type") {
        value = get_name(r, *v, m.path(key), "[^\\x00-\\x1f\\x7f]{1,256}",
                         "an event type of 1 to 256 characters");
        if (value) s.event_type = *value;
      } else if (std::string_view(key) == "type_header") {
        value = get_name(r, *v, m.path(key), kHeaderName, "an HTTP header name, e.g. X-GitHub-Event");
        if (value) s.type_header = *value;
      } else {
        value =
            get_name(r, *v, m.path(key), "[^\\x00-\\x1f\\x7f]{1,128}", "the name of a top-level body field");
        if (value) s.type_field = *value;
      }
    }
    if (const Node* v = m.get("id_header"); given(v)) {
      if (auto h = get_name(r, *v, m.path("id_header"), kHeaderName,
                            "an HTTP header name, e.g. X-GitHub-Delivery")) {
        s.id_header = *h;
      }
    }
    if (const Node* v = m.get("keep_headers"); given(v)) {
      if (auto list = get_string_list(r, *v, m.path("keep_headers"), "a sequence of header names")) {
        static const std::set<std::string> credentials = {"authorization", "proxy-authorization", "cookie"};
        for (std::size_t i = 0; i < list->size(); ++i) {
          const auto& [name, node] = (*list)[i];
          const std::string p = v->kind == Node::Kind::sequence ? index_path(m.path("keep_headers"), i)
                                                                : m.path("keep_headers");
          std::string lower = name;
          std::transform(lower.begin(), lower.end(), lower.begin(),
                         [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
          if (!matches(name, kHeaderName)) {
            r.error(*node, p, "expected an HTTP header name, found " + found(*node));
          } else if (credentials.count(lower) != 0) {
            r.error(*node, p, "header " + name + " carries credentials and is never stored");
          } else {
            s.keep_headers.push_back(name);
          }
        }
      }
    }
  }
  if (const Node* v = m.get("topics"); given(v)) {
    if (auto topics =
            get_string_list(r, *v, m.path("topics"), "a sequence of topics, e.g. [orders/create]")) {
      std::set<std::string> seen;
      for (std::size_t i = 0; i < topics->size(); ++i) {
        const auto& [topic, node] = (*topics)[i];
        const std::string p =
            v->kind == Node::Kind::sequence ? index_path(m.path("topics"), i) : m.path("topics");
        if (!matches(topic, R"([A-Za-z0-9_.:-]+(/[A-Za-z0-9_.:-]+)*)")) {
          r.error(*node, p, "expected a topic such as orders/create, found " + found(*node));
        } else if (!seen.insert(topic).second) {
          r.warning(*node, p, "topic '" + topic + "' is listed twice");
        } else {
          s.topics.push_back(topic);
        }
      }
    }
  }
}

FlowResult parse_flow_file(const fs::path& file, std::vector<Diagnostic>& diagnostics,
                           const std::map<std::string, Connection>* connections, const LoadOptions& options) {
  FlowResult result;
  std::vector<Diagnostic> local;
  Reader r(file.string(), local);
  Flow& flow = result.flow;
  flow.file = file.string();
  auto root = read_yaml(r, file, "a flow: a mapping with name, source and branches");
  if (root) {
    flow.where = r.where(*root);
    Map m(r, &*root, "");
    m.allow({"name", "enabled", "source", "mode", "branches", "default"});
    if (const Node* v = m.get("name"); given(v)) {
      if (auto s = get_name(r, *v, "name", "[A-Za-z0-9_.-]+", "a flow name made of A-Z a-z 0-9 _ . -")) {
        flow.name = *s;
        flow.where = r.where(*v);
        result.has_name = true;
        result.name_where = r.where(*v);
      }
    } else {
      m.missing("name", *root, "a flow name made of A-Z a-z 0-9 _ . -");
    }
    if (const Node* v = m.get("enabled"); given(v)) {
      if (auto b = get_bool(r, *v, "enabled")) flow.enabled = *b;
    }
    result.require_secrets = options.require_secrets;
    parse_source(r, m.get("source"), *root, flow.source, options.require_secrets, result);
    if (const Node* v = m.get("mode"); given(v)) {
      if (auto s = get_choice(r, *v, "mode", {"first", "all"})) {
        flow.mode = *s == "first" ? Flow::Mode::first : Flow::Mode::all;
      }
    }

    // Branches, then the optional `default:` as the last one.
    std::vector<const Node*> branch_nodes;  // for positions of warnings
    std::vector<std::string> branch_paths;
    std::vector<bool> has_match;  // a match key was written (even if it was invalid)
    const Node* branches = m.get("branches");
    if (given(branches) && !branches->bad) {
      if (branches->kind != Node::Kind::sequence) {
        r.error(*branches, "branches", "expected a sequence of branches, found " + found(*branches));
      } else {
        for (std::size_t i = 0; i < branches->items.size(); ++i) {
          const Node& bn = branches->items[i];
          const std::string p = index_path("branches", i);
          Branch b;
          b.where = r.where(bn);
          b.name = "branch-" + std::to_string(i);
          Map bm(r, &bn, p);
          has_match.push_back(bm.get("match") != nullptr || bn.bad || !bm.valid());
          if (bm.valid() && bm.present()) {
            bm.allow({"name", "match", "destinations", "default"});
            if (const Node* k = bm.key_node("default")) {
              r.error(*k, bm.path("default"),
                      "a branch cannot be flagged default; write the default branch at the flow's top level: "
                      "default: {destinations: [...]}");
            }
            if (const Node* v = bm.get("name"); given(v)) {
              if (auto s = get_name(r, *v, bm.path("name"), "[A-Za-z0-9_.-]+",
                                    "a branch name made of A-Z a-z 0-9 _ . -")) {
                b.name = *s;
              }
            }
            if (const Node* v = bm.get("match"); given(v)) {
              parse_match(r, *v, bm.path("match"), b);
            } else if (v != nullptr) {
              // "match:" with nothing after it would silently match everything.
              r.error(*v, bm.path("match"),
                      "expected an EventBridge pattern, found an empty value (leave match out to match every "
                      "event)");
            }
            parse_branch_destinations(r, bm, bn, b, connections, result);
          } else if (bm.valid()) {
            r.error(bn, p, "expected a branch mapping with destinations, found an empty value");
          }
          flow.branches.push_back(std::move(b));
          branch_nodes.push_back(&bn);
          branch_paths.push_back(p);
        }
      }
    }
    if (const Node* v = m.get("default"); given(v)) {
      Branch b;
      b.where = r.where(*v);
      b.name = "default";
      b.is_default = true;
      Map dm(r, v, "default");
      if (dm.valid()) {
        dm.allow({"destinations", "match"});
        if (const Node* k = dm.key_node("match")) {
          r.error(
              *k, "default.match",
              "the default branch has no match (it takes every event no other branch took); move this branch "
              "into branches:");
        }
        parse_branch_destinations(r, dm, *v, b, connections, result);
      }
      flow.branches.push_back(std::move(b));
      branch_nodes.push_back(v);
      branch_paths.emplace_back("default");
      has_match.push_back(false);
    }
    if (flow.branches.empty() && !(given(branches) && branches->bad)) {
      const Node& at = given(branches) ? *branches : *root;
      r.error(at, "branches",
              "expected at least one branch (branches: [{match: ..., destinations: [...]}] or default: "
              "{destinations: "
              "[...]})");
    }
    // Branch names are lane ids: unique within the flow.
    std::map<std::string, std::size_t> names;
    for (std::size_t i = 0; i < flow.branches.size(); ++i) {
      auto [it, inserted] = names.emplace(flow.branches[i].name, i);
      if (!inserted) {
        r.error(
            *branch_nodes[i], branch_paths[i],
            "duplicate branch name '" + flow.branches[i].name + "' (also " + branch_paths[it->second] + ")");
      }
    }
    // With mode all, a branch without match takes every event, so the default branch is never taken.
    if (flow.mode == Flow::Mode::all && !flow.branches.empty() && flow.branches.back().is_default) {
      for (std::size_t i = 0; i + 1 < flow.branches.size(); ++i) {
        if (has_match[i]) continue;
        r.warning(*branch_nodes.back(), branch_paths.back(),
                  "the default branch is never taken: branch '" + flow.branches[i].name + "' (" +
                      branch_paths[i] + ") has no match and takes every event (mode: all)");
        break;
      }
    }
    // With mode first, nothing after a branch without match is ever reached.
    if (flow.mode == Flow::Mode::first) {
      for (std::size_t i = 0; i + 1 < flow.branches.size(); ++i) {
        if (has_match[i]) continue;
        for (std::size_t j = i + 1; j < flow.branches.size(); ++j) {
          r.warning(*branch_nodes[j], branch_paths[j],
                    "branch '" + flow.branches[j].name + "' is unreachable: branch '" +
                        flow.branches[i].name + "' (" + branch_paths[i] +
                        ") has no match and takes every event (mode: first)");
        }
        break;
      }
    }
  }
  result.ok = r.errors() == 0;
  append_sorted(diagnostics, std::move(local));
  return result;
}

// Every flow file, in order. Files are independent (each has its own YAML document, reader and
// diagnostics), so a large set is parsed on a few threads: YAML parsing is most of a start's CPU, and a
// start with 1,000 flows is then about as fast as the cores allow. Results and diagnostics keep the files'
// order whatever thread parsed them.
std::vector<FlowResult> parse_flow_files(const std::vector<fs::path>& files,
                                         std::vector<Diagnostic>& diagnostics,
                                         const std::map<std::string, Connection>* connections,
                                         const LoadOptions& options) {
  constexpr std::size_t kFilesPerThread = 64;
  const std::size_t threads = std::min<std::size_t>(
      {std::max(1U, std::thread::hardware_concurrency()), 8, files.size() / kFilesPerThread});
  std::vector<FlowResult> flows(files.size());
  std::vector<std::vector<Diagnostic>> found(files.size());
  std::atomic<std::size_t> next{0};
  std::vector<std::exception_ptr> failures(files.size());
  auto work = [&] {
    for (std::size_t i = next++; i < files.size(); i = next++) {
      try {
        flows[i] = parse_flow_file(files[i], found[i], connections, options);
      } catch (...) {
        failures[i] = std::current_exception();  // rethrown on the calling thread, as without threads
      }
    }
  };
  std::vector<std::thread> helpers;
  helpers.reserve(threads > 1 ? threads - 1 : 0);
  try {
    for (std::size_t t = 1; t < threads; ++t) helpers.emplace_back(work);
  } catch (const std::system_error&) {
    // No more threads: this one parses what is left.
  }
  work();
  for (auto& h : helpers) h.join();
  for (auto& e : failures) {
    if (e) std::rethrow_exception(e);
  }
  for (auto& d : found)
    diagnostics.insert(diagnostics.end(), std::make_move_iterator(d.begin()),
                       std::make_move_iterator(d.end()));
  return flows;
}

}  // namespace

std::size_t LoadResult::errors() const {
  return static_cast<std::size_t>(
      std::count_if(diagnostics.begin(), diagnostics.end(),
                    [](const Diagnostic& d) { return d.severity == Severity::error; }));
}

std::size_t LoadResult::warnings() const {
  return diagnostics.size() - errors();
}

std::vector<fs::path> expand_flow_path(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw std::runtime_error("no such file or directory: " + path.string());
  if (!fs::is_directory(path, ec)) return {path};
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(path, ec)) {
    const auto ext = entry.path().extension();
    if ((ext == ".yaml" || ext == ".yml") && entry.is_regular_file(ec)) files.push_back(entry.path());
  }
  if (ec) throw std::runtime_error("cannot list directory " + path.string() + ": " + ec.message());
  std::sort(files.begin(), files.end());
  return files;
}

std::optional<Flow> load_flow(const fs::path& flow_file, std::vector<Diagnostic>& diagnostics,
                              const std::map<std::string, Connection>* connections,
                              const LoadOptions& options) {
  FlowResult r = parse_flow_file(flow_file, diagnostics, connections, options);
  if (!r.ok) return std::nullopt;
  return std::move(r.flow);
}

LoadResult load(const fs::path& config_file, const LoadOptions& options) {
  LoadResult result;
  std::vector<Diagnostic> local;
  Reader r(config_file.string(), local);
  Config config;
  config.file = config_file.string();

  // Where each `flows:` entry was written, to report missing paths there.
  std::vector<std::pair<std::string, Node>> flow_entries;
  auto root = read_yaml(r, config_file, "a mapping with server, store, log, flows and connections");
  if (root) {
    Map m(r, &*root, "");
    m.allow({"server", "store", "log", "admin", "publish", "reload", "schemas", "flows", "connections"});
    parse_server(r, m.get("server"), config.server);
    parse_store(r, m.get("store"), config.store);
    parse_log(r, m.get("log"), config.log);
    parse_admin(r, m.get("admin"), config.admin);
    parse_publish(r, m.get("publish"), config.publish, options.require_secrets);
    parse_reload(r, m.get("reload"), config.reload);
    parse_schemas(r, m.get("schemas"), config.schemas);
    if (const Node* v = m.get("connections"); given(v)) {
      Map cm(r, v, "connections");
      if (cm.valid()) {
        for (const auto& [k, val] : v->entries) {
          if (k.bad) continue;
          const std::string p = cm.path(k.text);
          if (!matches(k.text, "[A-Za-z0-9_.-]+")) {
            r.error(k, p, "expected a connection name made of A-Z a-z 0-9 _ . -, found '" + k.text + "'");
          }
          Connection c;
          c.name = k.text;
          parse_connection(r, val, p, c, options.require_secrets);
          c.where = r.where(k);
          config.connections[k.text] = std::move(c);
        }
      }
    }
    if (const Node* v = m.get("flows"); given(v)) {
      if (auto list = get_string_list(r, *v, "flows", "a sequence of flow files or directories")) {
        for (std::size_t i = 0; i < list->size(); ++i) {
          const std::string p =
              v->kind == Node::Kind::sequence ? index_path("flows", i) : std::string("flows");
          config.flow_paths.push_back((*list)[i].first);
          flow_entries.emplace_back(p, *(*list)[i].second);
        }
      }
    }
  }

  // The flow files.
  std::vector<fs::path> files;
  if (options.flow_files) {
    files = *options.flow_files;
  } else {
    for (const auto& [path, node] : flow_entries) {
      try {
        auto expanded = expand_flow_path(node.text);
        if (expanded.empty())
          r.warning(node, path, "directory '" + node.text + "' has no *.yaml or *.yml file");
        for (auto& f : expanded) files.push_back(std::move(f));
      } catch (const std::exception& e) {
        r.error(node, path,
                std::string("expected a flow file or a directory of flow files, found ") + e.what() +
                    " (relative paths are resolved against the current directory)");
      }
    }
    if (root && flow_entries.empty() && r.errors() == 0) {
      r.warning(*root, "flows", "no flow is configured: evrouter will accept no webhook");
    }
  }
  append_sorted(result.diagnostics, std::move(local));

  std::vector<FlowResult> flows =
      parse_flow_files(files, result.diagnostics, root ? &config.connections : nullptr, options);

  // Across flows: unique names and listener ids.
  std::map<std::string, SourceLocation> names, listener_ids;
  for (const auto& f : flows) {
    if (f.has_name) {
      auto [it, inserted] = names.emplace(f.flow.name, f.name_where);
      if (!inserted) {
        result.diagnostics.push_back({Severity::error, f.name_where, "name",
                                      "duplicate flow name '" + f.flow.name + "' (also in " +
                                          it->second.file + ":" + std::to_string(it->second.line) + ")"});
      }
    }
    if (f.flow.source.listener_id) {
      auto [it, inserted] = listener_ids.emplace(*f.flow.source.listener_id, f.listener_id_where);
      if (!inserted) {
        result.diagnostics.push_back({Severity::error, f.listener_id_where, "source.listener_id",
                                      "duplicate listener id '" + *f.flow.source.listener_id + "' (also in " +
                                          it->second.file + ":" + std::to_string(it->second.line) + ")"});
      }
    }
  }

  // Connections no flow uses (only meaningful when every flow was loaded without error).
  const bool all_flows_ok = std::all_of(flows.begin(), flows.end(), [](const FlowResult& f) { return f.ok; });
  if (root && !options.flow_files && all_flows_ok) {
    std::set<std::string> used;
    for (const auto& f : flows) used.insert(f.connections_used.begin(), f.connections_used.end());
    for (const auto& [name, c] : config.connections) {
      if (used.count(name) == 0) {
        result.diagnostics.push_back({Severity::warning, c.where, "connections." + name,
                                      "connection '" + name + "' is not used by any flow"});
      }
    }
  }

  // Bus flows receive what publish keys send: without a key nothing reaches them.
  if (root && config.publish.keys.empty()) {
    for (const auto& f : flows) {
      if (f.ok && f.flow.source.type == "bus") {
        result.diagnostics.push_back({Severity::warning, f.flow.source.where, "source",
                                      "flow '" + f.flow.name +
                                          "' takes published events, but no publish key is configured "
                                          "(publish.keys in " +
                                          config.file + ")"});
      }
    }
  }

  for (auto& f : flows) config.flows.push_back(std::move(f.flow));
  if (result.errors() == 0) result.config = std::move(config);
  return result;
}

}  // namespace evr::config
