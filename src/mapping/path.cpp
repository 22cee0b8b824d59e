#include "evrouter/mapping/path.h"

#include <cctype>
#include <limits>

namespace evr::mapping {
namespace {

bool name_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) || c == '_' || c == '-' || u >= 0x80;  // bytes of UTF-8 letters pass too
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  [[noreturn]] void fail(std::size_t at, const std::string& what) const {
    throw MappingError("invalid path '" + std::string(text_) + "' at character " + std::to_string(at + 1) +
                       ": " + what);
  }

  bool done() const { return pos_ >= text_.size(); }
  char peek(std::size_t ahead = 0) const { return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0'; }
  std::size_t pos() const { return pos_; }
  void advance(std::size_t n = 1) { pos_ += n; }

  std::string name() {
    const std::size_t start = pos_;
    while (!done() && name_char(peek())) ++pos_;
    return std::string(text_.substr(start, pos_ - start));
  }

  std::string quoted() {
    const char quote = peek();
    const std::size_t start = pos_;
    advance();
    std::string out;
    for (;;) {
      if (done()) fail(start, "unterminated quoted name (missing " + std::string(1, quote) + ")");
      const char c = peek();
      if (c == quote) {
        advance();
        return out;
      }
      if (c == '\\') {
        const char next = peek(1);
        if (next != '\\' && next != '\'' && next != '"') {
          fail(pos_, "unknown escape in a quoted name (only \\\\, \\' and \\\" are allowed)");
        }
        out += next;
        advance(2);
        continue;
      }
      out += c;
      advance();
    }
  }

  int64_t integer() {
    const std::size_t start = pos_;
    bool negative = false;
    if (peek() == '-') {
      negative = true;
      advance();
    }
    if (!std::isdigit(static_cast<unsigned char>(peek()))) fail(pos_, "expected an array index");
    int64_t value = 0;
    while (std::isdigit(static_cast<unsigned char>(peek()))) {
      const int digit = peek() - '0';
      if (value > (std::numeric_limits<int64_t>::max() - digit) / 10) fail(start, "array index out of range");
      value = value * 10 + digit;
      advance();
    }
    return negative ? -value : value;
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

}  // namespace

Path Path::parse(std::string_view text) {
  Path path;
  path.text_ = std::string(text);
  Parser p(text);
  if (text.empty()) p.fail(0, "a path starts with $ (the event envelope), e.g. $.detail.id");
  if (p.peek() != '$') {
    p.fail(0, "a path starts with $ (the event envelope), e.g. $.detail.id");
  }
  p.advance();
  while (!p.done()) {
    const char c = p.peek();
    Step step;
    if (c == '.') {
      if (p.peek(1) == '.') p.fail(p.pos(), "recursive descent (..) is not supported");
      p.advance();
      if (p.peek() == '*') {
        p.advance();
        step.kind = Step::Kind::every;
      } else {
        step.name = p.name();
        if (step.name.empty()) {
          if (p.done()) p.fail(p.pos() - 1, "expected a name after '.'");
          p.fail(p.pos(), std::string("unexpected '") + p.peek() +
                              "' in a name (use $['...'] for names with other characters)");
        }
      }
    } else if (c == '[') {
      const std::size_t open = p.pos();
      p.advance();
      const char inner = p.peek();
      if (inner == '?') p.fail(p.pos(), "filter expressions ([?...]) are not supported");
      if (inner == '(') p.fail(p.pos(), "script expressions ([(...)]) are not supported");
      if (inner == '*') {
        p.advance();
        step.kind = Step::Kind::every;
      } else if (inner == '\'' || inner == '"') {
        step.name = p.quoted();
      } else if (inner == ':') {
        p.fail(p.pos(), "array slices ([start:end]) are not supported");
      } else if (inner == '-' || std::isdigit(static_cast<unsigned char>(inner))) {
        step.kind = Step::Kind::index;
        step.index = p.integer();
      } else if (p.done()) {
        p.fail(open, "unterminated '[' (missing ])");
      } else {
        p.fail(p.pos(), "expected an index, '*' or a quoted name inside [...], e.g. [0] or ['key']");
      }
      if (p.peek() == ':') p.fail(p.pos(), "array slices ([start:end]) are not supported");
      if (p.peek() == ',') p.fail(p.pos(), "unions ([a,b]) are not supported");
      if (p.done()) p.fail(open, "unterminated '[' (missing ])");
      if (p.peek() != ']') p.fail(p.pos(), std::string("expected ']', found '") + p.peek() + "'");
      p.advance();
    } else {
      p.fail(p.pos(), std::string("unexpected '") + c + "' (expected .name, [index], ['name'] or [*])");
    }
    if (step.kind == Step::Kind::every) path.wildcard_ = true;
    path.steps_.push_back(std::move(step));
  }
  return path;
}

const nlohmann::json* Path::child(const nlohmann::json& node, const Step& s) {
  if (s.kind == Step::Kind::member) {
    if (!node.is_object()) return nullptr;
    auto it = node.find(s.name);
    return it == node.end() ? nullptr : &*it;
  }
  if (s.kind == Step::Kind::index && node.is_array()) {
    const auto size = static_cast<int64_t>(node.size());
    const int64_t i = s.index < 0 ? size + s.index : s.index;
    if (i >= 0 && i < size) return &node[static_cast<std::size_t>(i)];
  }
  return nullptr;
}

const nlohmann::json* Path::find(const nlohmann::json& doc) const {
  const nlohmann::json* node = &doc;
  for (const auto& s : steps_) {
    node = child(*node, s);  // a wildcard step selects nothing here: wildcard paths go through collect()
    if (node == nullptr) return nullptr;
  }
  return node;
}

nlohmann::json Path::collect(const nlohmann::json& doc) const {
  nlohmann::json out = nlohmann::json::array();
  collect(0, doc, out);
  return out;
}

void Path::collect(std::size_t step, const nlohmann::json& node, nlohmann::json& out) const {
  if (step == steps_.size()) {
    out.push_back(node);
    return;
  }
  const Step& s = steps_[step];
  if (s.kind == Step::Kind::every) {
    if (node.is_array() || node.is_object()) {
      for (const auto& item : node) collect(step + 1, item, out);
    }
    return;
  }
  if (const nlohmann::json* next = child(node, s)) collect(step + 1, *next, out);
}

std::vector<std::string> Path::leading_members() const {
  std::vector<std::string> out;
  for (const auto& step : steps_) {
    if (step.kind != Step::Kind::member) break;
    out.push_back(step.name);
  }
  return out;
}

}  // namespace evr::mapping
