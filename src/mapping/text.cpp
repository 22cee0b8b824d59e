#include "evrouter/mapping/text.h"

#include <cctype>

#include "mapping/placeholder.h"

namespace evr::mapping {

void append_uri_encoded(std::string_view value, std::string& out) {
  static constexpr char hex[] = "0123456789ABCDEF";
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 0xF];
    }
  }
}

Text Text::compile(std::string_view text, Inputs& inputs, Encoding encoding) {
  Text t;
  t.encoding_ = encoding;
  detail::scan(
      text, '{', '}',
      [&](std::string_view lit) {
        t.parts_.push_back({std::string(lit), 0, false});
      },
      [&](std::string_view name) {
        auto slot = inputs.use(name);
        if (!slot) {
          std::string known;
          for (const auto& n : inputs.names()) known += (known.empty() ? "" : ", ") + n;
          throw MappingError("unknown variable {" + std::string(name) +
                                 "} (bind it under input_paths; variables: " + known + ")",
                             {}, std::string(name));
        }
        t.parts_.push_back({std::string(name), *slot, true});
        ++t.slots_;
      });
  return t;
}

const std::string* Text::render(const Values& values, std::string& out) const {
  const std::string* missing = nullptr;
  std::string value;
  for (const auto& p : parts_) {
    if (!p.is_slot) {
      out += p.text;
      continue;
    }
    value.clear();
    append_text(values[p.slot], value);
    if (value.empty() && missing == nullptr) missing = &p.text;
    if (encoding_ == Encoding::uri) {
      append_uri_encoded(value, out);
    } else {
      for (char c : value) {
        const auto u = static_cast<unsigned char>(c);
        out += (u < 0x20 || u == 0x7F) ? ' ' : c;
      }
    }
  }
  return missing;
}

}  // namespace evr::mapping
