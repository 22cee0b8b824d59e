#include "evrouter/mapping/mapping.h"

namespace evr::mapping {

Inputs::As convert_as(config::InputPath::As as) {
  switch (as) {
    case config::InputPath::As::number:
      return Inputs::As::number;
    case config::InputPath::As::string:
      return Inputs::As::string;
    case config::InputPath::As::value:
      break;
  }
  return Inputs::As::value;
}

std::optional<Mapping> Mapping::compile(const config::Destination& d) {
  Mapping m;
  for (const auto& in : d.input_paths) {
    try {
      m.inputs_.bind(in.name, Path::parse(in.path), convert_as(in.as));
    } catch (const MappingError& e) {
      throw MappingError("input_paths." + in.name + ": " + e.what());
    }
  }
  if (d.input_template) {
    try {
      m.body_ = Template::compile(*d.input_template, m.inputs_);
    } catch (const MappingError& e) {
      throw MappingError("input_template" + e.pointer() + ": " + e.what(), e.pointer(), e.unknown());
    }
  }
  try {
    m.path_ = Text::compile(d.path, m.inputs_, Text::Encoding::uri);
  } catch (const MappingError& e) {
    throw MappingError("path: " + std::string(e.what()), {}, e.unknown());
  }
  bool headers_vary = false;
  for (const auto& [name, value] : d.headers) {
    try {
      m.headers_.emplace_back(name, Text::compile(value, m.inputs_, Text::Encoding::header));
      headers_vary = headers_vary || !m.headers_.back().second.constant();
    } catch (const MappingError& e) {
      throw MappingError("headers." + name + ": " + e.what(), {}, e.unknown());
    }
  }
  if (!m.body_ && m.path_.constant() && !headers_vary) return std::nullopt;
  return m;
}

bool Mapping::render(const event::Event& e, int64_t delivery_id, Request& out, std::string& error) const {
  // The envelope is rebuilt from the stored event (same fields the patterns matched at ingest).
  nlohmann::json envelope;
  Values values;
  if (inputs_.any_used()) {
    nlohmann::json detail = nlohmann::json::parse(e.payload, nullptr, false);
    if (detail.is_discarded()) detail = nullptr;  // ingest accepts JSON objects only: not expected
    envelope = event::envelope(e, std::move(detail));
  }
  inputs_.evaluate(envelope, delivery_id, values);

  out.path.clear();
  if (const std::string* missing = path_.render(values, out.path)) {
    error = "mapping: path variable {" + *missing + "} has no value for this event";
    return false;
  }
  out.headers.clear();
  out.headers.reserve(headers_.size());
  for (const auto& [name, text] : headers_) {
    std::string value;
    text.render(values, value);
    out.headers.emplace_back(name, std::move(value));
  }
  out.body.reset();
  if (body_) {
    out.body.emplace();
    out.body->reserve(e.payload.size() / 2);
    body_->render(values, *out.body);
  }
  return true;
}

}  // namespace evr::mapping
