#include "evrouter/pattern/selection.h"

#include <vector>

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

// nlohmann SAX handler that builds only the selected values. `sel == nullptr` with a target means "keep
// everything below"; a null target means "skip everything below".
class SelectiveBuilder {
 public:
  SelectiveBuilder(const Selection& root, json& out) : root_sel_(root.all ? nullptr : &root), out_(out) {}

  bool null() { return put(nullptr); }
  bool boolean(bool v) { return put(v); }
  bool number_integer(json::number_integer_t v) { return put(v); }
  bool number_unsigned(json::number_unsigned_t v) { return put(v); }
  bool number_float(json::number_float_t v, const json::string_t&) { return put(v); }
  bool string(json::string_t& v) {
    json* slot = next();
    if (slot != nullptr) *slot = std::move(v);
    return true;
  }
  bool binary(json::binary_t&) { return false; }  // not produced by the JSON text parser

  bool start_object(std::size_t) { return open(json::object(), false); }
  bool start_array(std::size_t) { return open(json::array(), true); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(json::string_t& k) {
    Frame& f = stack_.back();
    key_slot_ = nullptr;
    key_sel_ = nullptr;
    if (f.target == nullptr) return true;
    if (f.sel == nullptr) {
      key_slot_ = &(*f.target)[k];
      return true;
    }
    if (const auto it = f.sel->fields.find(k); it != f.sel->fields.end()) {
      key_slot_ = &(*f.target)[k];
      key_sel_ = it->second.all ? nullptr : &it->second;
      return true;
    }
    // A key spelling a selected path with dots ("a.b" when "a" is selected): keep it whole.
    if (const auto dot = k.find('.'); dot != std::string::npos) {
      const std::string_view head(k.data(), dot);
      if (f.sel->fields.find(head) != f.sel->fields.end()) key_slot_ = &(*f.target)[k];
    }
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }

 private:
  struct Frame {
    json* target;          // the container being filled; null when skipped
    const Selection* sel;  // what to keep of its members; null = all
    bool array;
  };

  // Where the next value goes (null: dropped), and sets next_sel_ to what to keep below it.
  json* next() {
    if (stack_.empty()) {
      next_sel_ = root_sel_;
      return &out_;
    }
    Frame& f = stack_.back();
    if (f.array) {
      next_sel_ = f.sel;
      if (f.target == nullptr) return nullptr;
      f.target->push_back(nullptr);
      return &f.target->back();
    }
    next_sel_ = key_sel_;
    return key_slot_;
  }

  template <typename V>
  bool put(V&& v) {
    json* slot = next();
    if (slot != nullptr) *slot = std::forward<V>(v);
    return true;
  }

  bool open(json empty, bool array) {
    json* slot = next();
    if (slot != nullptr) *slot = std::move(empty);
    stack_.push_back(Frame{slot, next_sel_, array});
    return true;
  }

  bool close() {
    stack_.pop_back();
    return true;
  }

  const Selection* root_sel_;
  json& out_;
  std::vector<Frame> stack_;
  json* key_slot_ = nullptr;
  const Selection* key_sel_ = nullptr;
  const Selection* next_sel_ = nullptr;
};

}  // namespace

bool parse_selected(std::string_view text, const Selection& selection, nlohmann::json& out) {
  out = nullptr;
  SelectiveBuilder builder(selection, out);
  return json::sax_parse(text, &builder, json::input_format_t::json, true);
}

}  // namespace evr::pattern
