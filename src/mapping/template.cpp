#include "evrouter/mapping/template.h"

#include "mapping/placeholder.h"

namespace evr::mapping {
namespace {

std::string escape_pointer_token(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string dump(const nlohmann::ordered_json& v) {
  return v.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace

Template Template::compile(const nlohmann::ordered_json& tmpl, Inputs& inputs) {
  Template t;
  t.compile(tmpl, "", inputs);
  return t;
}

void Template::literal(std::string_view json_text) {
  if (pieces_.empty() || pieces_.back().kind != Piece::Kind::literal) pieces_.emplace_back();
  pieces_.back().literal += json_text;
}

void Template::compile(const nlohmann::ordered_json& node, const std::string& pointer, Inputs& inputs) {
  if (node.is_object()) {
    literal("{");
    bool first = true;
    for (const auto& [key, value] : node.items()) {
      if (!first) literal(",");
      first = false;
      std::string k;
      detail::append_json_string(key, k);
      literal(k + ":");
      compile(value, pointer + "/" + escape_pointer_token(key), inputs);
    }
    literal("}");
    return;
  }
  if (node.is_array()) {
    literal("[");
    for (std::size_t i = 0; i < node.size(); ++i) {
      if (i > 0) literal(",");
      compile(node[i], pointer + "/" + std::to_string(i), inputs);
    }
    literal("]");
    return;
  }
  if (!node.is_string()) {
    literal(dump(node));
    return;
  }
  const auto& text = node.get_ref<const std::string&>();
  std::vector<Part> parts;
  bool any_slot = false;
  detail::scan(
      text, '<', '>',
      [&](std::string_view lit) {
        if (!parts.empty() && !parts.back().is_slot) {
          parts.back().text += lit;
        } else {
          parts.push_back({std::string(lit), 0, false});
        }
      },
      [&](std::string_view name) {
        auto slot = inputs.use(name);
        if (!slot) {
          std::string known;
          for (const auto& n : inputs.names()) known += (known.empty() ? "" : ", ") + n;
          throw MappingError("unknown variable <" + std::string(name) +
                                 "> (bind it under input_paths; variables: " + known + ")",
                             pointer, std::string(name));
        }
        parts.push_back({{}, *slot, true});
        any_slot = true;
      });
  if (!any_slot) {
    literal(dump(node));
  } else if (parts.size() == 1) {
    Piece p;
    p.kind = Piece::Kind::value;
    p.slot = parts.front().slot;
    pieces_.push_back(std::move(p));
  } else {
    Piece p;
    p.kind = Piece::Kind::text;
    p.parts = std::move(parts);
    pieces_.push_back(std::move(p));
  }
}

void Template::render(const Values& values, std::string& out) const {
  std::string text;
  for (const auto& p : pieces_) {
    switch (p.kind) {
      case Piece::Kind::literal:
        out += p.literal;
        break;
      case Piece::Kind::value:
        out += values[p.slot].dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        break;
      case Piece::Kind::text:
        text.clear();
        for (const auto& part : p.parts) {
          if (part.is_slot) {
            append_text(values[part.slot], text);
          } else {
            text += part.text;
          }
        }
        detail::append_json_string(text, out);
        break;
    }
  }
}

}  // namespace evr::mapping
