#include "evrouter/config/loader.h"

#include <arpa/inet.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "evrouter/config/env.h"
#include "evrouter/config/yaml_json.h"
#include "evrouter/http/client.h"
#include "evrouter/pattern/pattern.h"

namespace evr::config {
namespace {

namespace fs = std::filesystem;
using Severity = Diagnostic::Severity;

// ---------------------------------------------------------------------------------------------------
// A YAML document as a small tree that keeps 1-based positions, and remembers which scalars were quoted.

struct Node {
  enum class Kind { null, scalar, sequence, map };
  Kind kind = Kind::null;
  std::string text;   // scalar
  bool plain = true;  // false for quoted or !!str scalars: always strings
  int line = 0;
  int column = 0;
  bool bad = false;  // a problem was already reported here (e.g. env expansion); stay quiet about it
  std::vector<std::pair<Node, Node>> entries;  // map: key, value (in file order, duplicates kept)
  std::vector<Node> items;                     // sequence
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
        n.entries.emplace_back(std::move(key), std::move(value));
      }
      break;
  }
  return n;
}

nlohmann::json to_json(const Node& n) {
  switch (n.kind) {
    case Node::Kind::null:
      return nullptr;
    case Node::Kind::scalar:
      return yaml_scalar_to_json(n.text, n.plain);
    case Node::Kind::sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& item : n.items) out.push_back(to_json(item));
      return out;
    }
    case Node::Kind::map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& [k, v] : n.entries) out[k.text] = to_json(v);
      return out;
    }
  }
  return nullptr;
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

bool matches(const std::string& text, const char* re) {
  return std::regex_match(text, std::regex(re));
}

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
    m.missing("type", n, "none, basic, bearer or api_key");
    return;
  }
  auto t = get_choice(r, *type, m.path("type"), {"none", "basic", "bearer", "api_key"});
  if (!t) {
    m.allow({"type", "username", "password", "token", "header", "key"});
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

void parse_connection(Reader& r, const Node& n, const std::string& path, Connection& c,
                      bool require_secrets) {
  c.where = r.where(n);
  Map m(r, &n, path);
  if (!m.valid()) return;
  m.allow({"base_uri", "auth", "media_type", "connect_timeout", "request_timeout", "rate_limit",
           "concurrency", "retry", "ca_file", "tls_verify"});
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
  if (const Node* v = m.get("concurrency"); given(v)) {
    if (auto i = get_int(r, *v, m.path("concurrency"), 1, 10000)) c.concurrency = static_cast<int>(*i);
  }
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
}

void parse_server(Reader& r, const Node* n, Server& s) {
  Map m(r, n, "server");
  if (!m.valid()) return;
  m.allow({"listen", "port", "public_base_url", "workers", "max_body_bytes", "request_timeout",
           "idle_timeout", "shutdown_grace"});
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
  if (s.public_base_url.empty()) s.public_base_url = "http://localhost:" + std::to_string(s.port);
  if (const Node* v = m.get("workers"); given(v)) {
    if (auto i = get_int(r, *v, m.path("workers"), 0, 1024)) s.workers = static_cast<int>(*i);
  }
  if (const Node* v = m.get("max_body_bytes"); given(v)) {
    if (auto b = get_size(r, *v, m.path("max_body_bytes"))) s.max_body_bytes = *b;
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
  m.allow({"type", "state_dir", "durability", "dedup_window", "commit_max_batch"});
  if (const Node* v = m.get("type"); given(v)) {
    if (auto t = get_choice(r, *v, m.path("type"), {"sqlite"})) s.type = *t;
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

// ---------------------------------------------------------------------------------------------------
// Files.

// Reads and parses a YAML file with exactly one document; reports its problems and returns nullopt.
std::optional<Node> read_yaml(Reader& r, const fs::path& file, const char* expected) {
  std::ifstream f(file, std::ios::binary);
  std::error_code ec;
  if (!f || fs::is_directory(file, ec)) {
    const std::string why = fs::is_directory(file, ec) ? "is a directory" : std::strerror(errno);
    r.error(Node{}, "", "cannot read file (" + why + ")");
    return std::nullopt;
  }
  std::ostringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(text);
  } catch (const YAML::ParserException& e) {
    Node at;
    set_mark(at, e.mark);
    r.error(at, "", "invalid YAML: " + e.msg);
    return std::nullopt;
  } catch (const YAML::Exception& e) {
    r.error(Node{}, "", std::string("invalid YAML: ") + e.what());
    return std::nullopt;
  }
  if (docs.empty() || (docs.size() == 1 && docs[0].IsNull())) {
    Node at;
    at.line = 1;
    at.column = 1;
    r.error(at, "", std::string("the file is empty (expected ") + expected + ")");
    return std::nullopt;
  }
  if (docs.size() > 1) {
    Node at = convert(docs[1]);
    r.error(at, "",
            std::string("expected a single YAML document (") + expected + "), found " +
                std::to_string(docs.size()));
    return std::nullopt;
  }
  Node root = convert(docs[0]);
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
};

void parse_destination(Reader& r, const Node& n, const std::string& path, Destination& d,
                       const std::map<std::string, Connection>* connections, FlowResult& result) {
  d.where = r.where(n);
  Map m(r, &n, path);
  if (!m.valid()) return;
  m.allow({"connection", "name", "method", "path", "headers", "retry"});
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
      } else {
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
  m.allow({"type", "listener_id", "secret", "secrets", "topics"});
  if (const Node* v = m.get("type"); given(v)) {
    if (auto t = get_choice(r, *v, m.path("type"), {"shopify"})) s.type = *t;
  }
  if (const Node* v = m.get("listener_id"); given(v)) {
    if (auto id = get_name(r, *v, m.path("listener_id"), "[A-Za-z0-9_-]{22,64}",
                           "22 to 64 characters from A-Z a-z 0-9 _ -")) {
      s.listener_id = *id;
      result.listener_id_where = r.where(*v);
    }
  }
  const Node* one = m.get("secret");
  const Node* many = m.get("secrets");
  if (given(one) && given(many)) {
    r.error(*m.key_node("secrets"), m.path("secrets"),
            "use either secret or secrets, not both (put every secret in the secrets list)");
  }
  if (given(one)) {
    if (auto ref = get_secret(r, *one, m.path("secret"))) {
      check_secret(r, *one, m.path("secret"), *ref, require_secrets);
      s.secrets.push_back(std::move(*ref));
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
          s.secrets.push_back(std::move(*ref));
        }
      }
    }
  }
  if (!given(one) && !given(many)) {
    m.missing("secret", *n, "the webhook signing secret, e.g. {env: SHOPIFY_WEBHOOK_SECRET}");
  }
  if (const Node* v = m.get("topics"); given(v)) {
    if (auto topics =
            get_string_list(r, *v, m.path("topics"), "a sequence of topics, e.g. [orders/create]")) {
      std::set<std::string> seen;
      for (std::size_t i = 0; i < topics->size(); ++i) {
        const auto& [topic, node] = (*topics)[i];
        const std::string p =
            v->kind == Node::Kind::sequence ? index_path(m.path("topics"), i) : m.path("topics");
        if (!matches(topic, R"([A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*)")) {
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
            bm.allow({"name", "match", "destinations"});
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
      branch_paths.push_back("default");
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
    m.allow({"server", "store", "log", "reload", "flows", "connections"});
    parse_server(r, m.get("server"), config.server);
    parse_store(r, m.get("store"), config.store);
    parse_log(r, m.get("log"), config.log);
    parse_reload(r, m.get("reload"), config.reload);
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

  std::vector<FlowResult> flows;
  for (const auto& file : files) {
    flows.push_back(parse_flow_file(file, result.diagnostics, root ? &config.connections : nullptr, options));
  }

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

  for (auto& f : flows) config.flows.push_back(std::move(f.flow));
  if (result.errors() == 0) result.config = std::move(config);
  return result;
}

}  // namespace evr::config
