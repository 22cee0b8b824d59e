#include "evrouter/mapping/inputs.h"

#include <algorithm>
#include <cctype>

namespace evr::mapping {
namespace {

const nlohmann::json kNull;

// A JSON number written as a string ("193.86") as a number; anything else as null.
nlohmann::json to_number(const nlohmann::json& v) {
  if (v.is_number()) return v;
  if (!v.is_string()) return nullptr;
  const auto& s = v.get_ref<const std::string&>();
  auto n = nlohmann::json::parse(s, nullptr, false);
  if (n.is_discarded() || !n.is_number()) return nullptr;
  return n;
}

nlohmann::json to_string(const nlohmann::json& v) {
  if (v.is_string() || v.is_null()) return v;
  std::string s;
  append_text(v, s);
  return s;
}

nlohmann::json convert(const nlohmann::json& v, Inputs::As as) {
  return as == Inputs::As::number ? to_number(v) : to_string(v);
}

}  // namespace

const nlohmann::json& Values::operator[](std::size_t slot) const {
  const nlohmann::json* v = slot < slots_.size() ? slots_[slot] : nullptr;
  return v != nullptr ? *v : kNull;
}

void append_text(const nlohmann::json& value, std::string& out) {
  if (value.is_string()) {
    out += value.get_ref<const std::string&>();
  } else if (!value.is_null()) {
    out += value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
}

Inputs::Inputs() {
  auto predefined = [this](const char* name, const char* path) {
    vars_.push_back(
        {name, path ? std::optional<Path>(Path::parse(path)) : std::nullopt, As::value, true, false});
  };
  predefined("evrouter.event", "$");
  predefined("evrouter.payload", "$.detail");
  predefined("evrouter.event-id", "$.id");
  predefined("evrouter.event-type", "$.detail-type");
  predefined("evrouter.flow", "$.flow");
  predefined("evrouter.delivery-id", nullptr);
}

bool Inputs::valid_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

void Inputs::bind(const std::string& name, Path path, As as) {
  if (!valid_name(name)) {
    throw MappingError("invalid variable name '" + name +
                       "' (expected letters, digits, _ and -; evrouter.* names are predefined)");
  }
  for (const auto& v : vars_) {
    if (v.name == name) throw MappingError("variable '" + name + "' is bound twice");
  }
  vars_.push_back({name, std::move(path), as, false, false});
}

std::optional<std::size_t> Inputs::use(std::string_view name) {
  for (std::size_t i = 0; i < vars_.size(); ++i) {
    if (vars_[i].name == name) {
      vars_[i].used = true;
      return i;
    }
  }
  return std::nullopt;
}

std::vector<std::string> Inputs::names() const {
  std::vector<std::string> out;
  for (const auto& v : vars_) out.push_back(v.name);
  return out;
}

std::vector<std::string> Inputs::unused() const {
  std::vector<std::string> out;
  for (const auto& v : vars_) {
    if (!v.predefined && !v.used) out.push_back(v.name);
  }
  return out;
}

bool Inputs::any_used() const {
  return std::any_of(vars_.begin(), vars_.end(), [](const Variable& v) { return v.used; });
}

void Inputs::evaluate(const nlohmann::json& envelope, int64_t delivery_id, Values& out) const {
  out.slots_.assign(vars_.size(), nullptr);
  out.owned_.clear();
  for (std::size_t i = 0; i < vars_.size(); ++i) {
    const Variable& v = vars_[i];
    if (!v.used) continue;
    if (!v.path) {
      out.slots_[i] = &out.owned_.emplace_back(delivery_id);
      continue;
    }
    if (v.path->wildcard()) {
      nlohmann::json all = v.path->collect(envelope);
      if (v.as != As::value) {
        for (auto& item : all) item = convert(item, v.as);
      }
      out.slots_[i] = &out.owned_.emplace_back(std::move(all));
      continue;
    }
    const nlohmann::json* found = v.path->find(envelope);
    if (found != nullptr && v.as != As::value) found = &out.owned_.emplace_back(convert(*found, v.as));
    out.slots_[i] = found;
  }
}

}  // namespace evr::mapping
