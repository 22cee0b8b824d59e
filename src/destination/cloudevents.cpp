#include "evrouter/destination/cloudevents.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

namespace evr::destination {

namespace {

constexpr const char* kSpecVersion = "1.0";

std::string event_time(const event::Event& e) {
  return event::format_time(e.occurred_ms != 0 ? e.occurred_ms : e.time_ms);
}

// "application/json", "application/problem+json", "text/json" (parameters ignored).
bool json_media_type(std::string_view media_type) {
  const auto semi = media_type.find(';');
  std::string_view base = media_type.substr(0, semi);
  while (!base.empty() && base.back() == ' ') base.remove_suffix(1);
  std::string lower(base);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower == "application/json" || lower == "text/json" ||
         (lower.size() > 5 && lower.compare(lower.size() - 5, 5, "+json") == 0);
}

void set_content_type(http::Headers& headers, std::string value) {
  for (auto& [name, v] : headers) {
    if (name.size() == 12 && std::equal(name.begin(), name.end(), "content-type", [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == b;
        })) {
      v = std::move(value);
      return;
    }
  }
  headers.emplace_back("Content-Type", std::move(value));
}

void binary(const event::Event& e, http::Request& req) {
  req.headers.emplace_back("ce-specversion", kSpecVersion);
  req.headers.emplace_back("ce-id", cloudevents_header_value(e.id));
  req.headers.emplace_back("ce-source", cloudevents_header_value(e.source));
  req.headers.emplace_back("ce-type", cloudevents_header_value(e.type));
  req.headers.emplace_back("ce-time", event_time(e));
  if (!e.resources.empty()) req.headers.emplace_back("ce-subject", cloudevents_header_value(e.resources[0]));
}

void structured(const event::Event& e, const std::string& media_type, http::Request& req) {
  nlohmann::ordered_json head;
  head["specversion"] = kSpecVersion;
  head["id"] = e.id;
  head["source"] = e.source;
  head["type"] = e.type;
  head["time"] = event_time(e);
  if (!e.resources.empty()) head["subject"] = e.resources[0];
  head["datacontenttype"] = media_type;
  std::string out = head.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  out.pop_back();  // the closing brace: `data` follows
  out.reserve(out.size() + req.body.size() + 10);
  out += ",\"data\":";
  if (json_media_type(media_type) && nlohmann::json::accept(req.body)) {
    out += req.body;  // the JSON text exactly as it was
  } else {
    out += nlohmann::json(req.body).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  out += '}';
  req.body = std::move(out);
  set_content_type(req.headers, "application/cloudevents+json");
}

}  // namespace

std::string cloudevents_header_value(std::string_view value) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u > 0x20 && u < 0x7f && c != '"' && c != '%') {
      out += c;
    } else {
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 15];
    }
  }
  return out;
}

void apply_cloudevents(config::Destination::CloudEvents mode, const event::Event& event,
                       const std::string& media_type, http::Request& request) {
  switch (mode) {
    case config::Destination::CloudEvents::binary:
      return binary(event, request);
    case config::Destination::CloudEvents::structured:
      return structured(event, media_type, request);
    case config::Destination::CloudEvents::none:
      return;
  }
}

}  // namespace evr::destination
