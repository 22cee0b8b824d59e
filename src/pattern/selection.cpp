#include "evrouter/pattern/selection.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "evrouter/common/utf8.h"

namespace evr::pattern {

void Selection::merge(const Selection& other) {
  if (all) return;
  if (other.all) {
    all = true;
    fields.clear();
    return;
  }
  for (const auto& [key, sel] : other.fields) fields[key].merge(sel);
}

namespace {

using json = nlohmann::json;

// Nesting along a selected path handled by recursion; deeper values are handed whole to nlohmann's
// (iterative) parser, so no input can exhaust the stack.
constexpr int kMaxPathDepth = 64;

// A validating JSON scanner (RFC 8259, as strict as nlohmann's parser: UTF-8 checked, control characters
// and lone surrogates refused, numbers beyond double range refused, an optional UTF-8 BOM skipped). It
// skips what is not selected without building anything and hands each kept value's text to nlohmann.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  bool document(const Selection& selection, json& out) {
    if (end_ - p_ >= 3 && static_cast<unsigned char>(p_[0]) == 0xEF) {
      if (static_cast<unsigned char>(p_[1]) != 0xBB || static_cast<unsigned char>(p_[2]) != 0xBF)
        return false;
      p_ += 3;
    }
    skip_ws();
    if (!value(selection.all ? nullptr : &selection, &out, 0)) return false;
    skip_ws();
    return p_ == end_;
  }

 private:
  void skip_ws() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  // One value at p_. `out` null: validate only. `sel` null (with out): keep the value whole.
  bool value(const Selection* sel, json* out, int depth) {
    if (p_ == end_) return false;
    if (out != nullptr && sel != nullptr && depth < kMaxPathDepth) {
      if (*p_ == '{') return object(*sel, *out, depth);
      if (*p_ == '[') return array(*sel, *out, depth);
    }
    const char* start = p_;
    if (!skip_value(static_cast<std::size_t>(depth))) return false;
    if (out != nullptr) {
      *out = json::parse(start, p_, nullptr, false);
      if (out->is_discarded()) return false;
    }
    return true;
  }

  bool object(const Selection& sel, json& out, int depth) {
    ++p_;  // {
    out = json::object();
    skip_ws();
    if (p_ != end_ && *p_ == '}') {
      ++p_;
      return true;
    }
    for (;;) {
      if (p_ == end_ || *p_ != '"') return false;
      const char* key_start = p_;
      bool escaped = false;
      if (!skip_string(escaped)) return false;
      std::string decoded;
      std::string_view key(key_start + 1, static_cast<std::size_t>(p_ - key_start - 2));
      if (escaped) {
        const json k = json::parse(key_start, p_, nullptr, false);
        if (!k.is_string()) return false;
        decoded = k.get<std::string>();
        key = decoded;
      }
      skip_ws();
      if (p_ == end_ || *p_ != ':') return false;
      ++p_;
      skip_ws();
      json* slot = nullptr;
      const Selection* child = nullptr;
      if (const auto it = sel.fields.find(key); it != sel.fields.end()) {
        slot = &out[std::string(key)];
        child = it->second.all ? nullptr : &it->second;
      } else if (const auto dot = key.find('.');
                 dot != std::string::npos &&
                 sel.fields.find(std::string_view(key).substr(0, dot)) != sel.fields.end()) {
        slot = &out[std::string(key)];  // "a.b" spells a selected path with dots: keep it whole
      }
      if (!value(child, slot, depth + 1)) return false;
      skip_ws();
      if (p_ == end_) return false;
      if (*p_ == '}') {
        ++p_;
        return true;
      }
      if (*p_ != ',') return false;
      ++p_;
      skip_ws();
    }
  }

  bool array(const Selection& sel, json& out, int depth) {
    ++p_;  // [
    out = json::array();
    skip_ws();
    if (p_ != end_ && *p_ == ']') {
      ++p_;
      return true;
    }
    for (;;) {
      out.push_back(nullptr);
      if (!value(&sel, &out.back(), depth + 1)) return false;
      skip_ws();
      if (p_ == end_) return false;
      if (*p_ == ']') {
        ++p_;
        return true;
      }
      if (*p_ != ',') return false;
      ++p_;
      skip_ws();
    }
  }

  // Skips one value (nesting up to kMaxNesting in all, counting the `depth` it sits at; iteratively).
  bool skip_value(std::size_t depth) {
    std::vector<char>& open = open_;  // '{' or '['
    open.clear();
    for (;;) {
      if (p_ == end_) return false;
      bool escaped = false;
      switch (*p_) {
        case '{':
        case '[': {
          const char c = *p_++;
          skip_ws();
          const char close = c == '{' ? '}' : ']';
          if (p_ != end_ && *p_ == close) {
            ++p_;
            break;  // empty container: a complete value
          }
          open.push_back(c);
          if (depth + open.size() > kMaxNesting) return false;
          if (c == '{' && !member_key()) return false;
          continue;  // its first value
        }
        case '"':
          if (!skip_string(escaped)) return false;
          break;
        case 't':
          if (!literal("true")) return false;
          break;
        case 'f':
          if (!literal("false")) return false;
          break;
        case 'n':
          if (!literal("null")) return false;
          break;
        default:
          if (!skip_number()) return false;
      }
      // A complete value: close containers or move to the next element.
      for (;;) {
        if (open.empty()) return true;
        skip_ws();
        if (p_ == end_) return false;
        const char close = open.back() == '{' ? '}' : ']';
        if (*p_ == close) {
          ++p_;
          open.pop_back();
          continue;
        }
        if (*p_ != ',') return false;
        ++p_;
        skip_ws();
        if (open.back() == '{' && !member_key()) return false;
        break;
      }
    }
  }

  // `"key" :` then whitespace, inside an object being skipped.
  bool member_key() {
    bool escaped = false;
    if (p_ == end_ || *p_ != '"' || !skip_string(escaped)) return false;
    skip_ws();
    if (p_ == end_ || *p_ != ':') return false;
    ++p_;
    skip_ws();
    return true;
  }

  bool literal(std::string_view word) {
    if (static_cast<std::size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word)
      return false;
    p_ += word.size();
    return true;
  }

  static bool hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  }

  bool read_u16(unsigned& v) {
    if (end_ - p_ < 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = p_[i];
      if (!hex(c)) return false;
      v = v * 16 + static_cast<unsigned>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    p_ += 4;
    return true;
  }

  // The high bit of each byte of `w` that is a quote, a backslash, a control character or not ASCII (the
  // bytes skip_string must look at one by one), and perhaps of bytes after such a byte; 0 when there is
  // none. Each test flags its lowest byte exactly: x - 0x01 per byte borrows only through a zero byte
  // (w - 0x20 only through a byte below 0x20), so a byte can be flagged by mistake only above one flagged
  // rightly; ~x clears the bytes that were >= 0x80 already. So the lowest flagged byte is the first one
  // skip_string must look at.
  static uint64_t special_bytes(uint64_t w) {
    constexpr uint64_t ones = 0x0101010101010101ULL;
    constexpr uint64_t highs = 0x8080808080808080ULL;
    const uint64_t quote = w ^ (ones * '"');
    const uint64_t backslash = w ^ (ones * '\\');
    const uint64_t control = (w - ones * 0x20) & ~w;  // bytes below 0x20 (and, harmlessly, >= 0x80)
    return (((quote - ones) & ~quote) | ((backslash - ones) & ~backslash) | control | w) & highs;
  }

  // A string at p_ (opening quote); `escaped` tells whether it holds escapes.
  bool skip_string(bool& escaped) {
    ++p_;
    while (p_ != end_) {
      // Plain ASCII runs, the bulk of a payload's strings, 8 bytes at a time; the word's bytes are in
      // memory order when the machine is little-endian, so the lowest flagged one is where to stop.
      while (end_ - p_ >= 8) {
        uint64_t w = 0;
        std::memcpy(&w, p_, sizeof w);
        if (const uint64_t special = special_bytes(w); special != 0) {
          if constexpr (std::endian::native == std::endian::little) p_ += std::countr_zero(special) / 8;
          break;
        }
        p_ += 8;
      }
      if (p_ == end_) break;
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        escaped = true;
        if (++p_ == end_) return false;
        const char e = *p_++;
        if (e == 'u') {
          unsigned cp = 0;
          if (!read_u16(cp)) return false;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return false;  // a low surrogate alone
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            unsigned low = 0;
            if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
            p_ += 2;
            if (!read_u16(low) || low < 0xDC00 || low > 0xDFFF) return false;
          }
        } else if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' &&
                   e != 't') {
          return false;
        }
        continue;
      }
      if (c < 0x80) {
        ++p_;
        continue;
      }
      // UTF-8: the well-formed sequences of RFC 3629.
      const std::size_t n = utf8::sequence(std::string_view(p_, static_cast<std::size_t>(end_ - p_)));
      if (n == 0) return false;
      p_ += n;
    }
    return false;
  }

  static bool digit(char c) { return c >= '0' && c <= '9'; }

  bool skip_number() {
    const char* start = p_;
    if (*p_ == '-') ++p_;
    if (p_ == end_) return false;
    if (*p_ == '0') {
      ++p_;
    } else if (*p_ >= '1' && *p_ <= '9') {
      while (p_ != end_ && digit(*p_)) ++p_;
    } else {
      return false;
    }
    bool simple = p_ - start < 300;
    if (p_ != end_ && *p_ == '.') {
      ++p_;
      if (p_ == end_ || !digit(*p_)) return false;
      while (p_ != end_ && digit(*p_)) ++p_;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      simple = false;
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || !digit(*p_)) return false;
      while (p_ != end_ && digit(*p_)) ++p_;
    }
    // nlohmann refuses numbers that overflow a double: only possible with an exponent or 300+ digits.
    if (!simple && !std::isfinite(std::strtod(std::string(start, p_).c_str(), nullptr))) return false;
    return true;
  }

  const char* p_;
  const char* end_;
  std::vector<char> open_;  // skip_value's containers
};

}  // namespace

bool parse_selected(std::string_view text, const Selection& selection, nlohmann::json& out) {
  out = nullptr;
  return Scanner(text).document(selection, out);
}

}  // namespace evr::pattern
