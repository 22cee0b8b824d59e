#include "store/jetstream_codec.h"

#include "evrouter/common/json_text.h"
#include "evrouter/common/utf8.h"

namespace evr::store::jetstream {

std::string token(std::string_view name) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  out.reserve(name.size());
  for (unsigned char c : name) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-') {
      out += static_cast<char>(c);
    } else {
      out += '_';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out.empty() ? std::string("_") : out;
}

std::string untoken(std::string_view t) {
  if (t == "_") return {};
  std::string out;
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '_' && i + 2 < t.size()) {
      auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'A' + 10; };
      out += static_cast<char>(nibble(t[i + 1]) * 16 + nibble(t[i + 2]));
      i += 2;
    } else {
      out += t[i];
    }
  }
  return out;
}

std::string status_text(natsStatus s, jsErrCode code) {
  std::string text = natsStatus_GetText(s);
  if (const char* last = nats_GetLastError(nullptr); last && *last) text += std::string(": ") + last;
  if (code != 0) text += " (JetStream error " + std::to_string(static_cast<int>(code)) + ")";
  return text;
}

nlohmann::json envelope_json(const event::Event& e) {
  nlohmann::json headers = nlohmann::json::array();
  for (const auto& [k, v] : e.headers) headers.push_back({k, v});
  return {{"id", e.id},
          {"flow", e.flow},
          {"listener_id", e.listener_id},
          {"source", e.source},
          {"type", e.type},
          {"time_ms", e.time_ms},
          {"occurred_ms", e.occurred_ms},
          {"shop", e.shop_domain},
          {"webhook_id", e.webhook_id},
          {"dedup_key", e.dedup_key},
          {"correlation_id", e.correlation_id},
          {"headers", std::move(headers)},
          {"resources", e.resources}};
}

std::string envelope_text(const event::Event& e) {
  using json_text::append_json_string;
  bool plain = utf8::valid(e.correlation_id) && utf8::valid(e.dedup_key) && utf8::valid(e.flow) &&
               utf8::valid(e.id) && utf8::valid(e.listener_id) && utf8::valid(e.shop_domain) &&
               utf8::valid(e.source) && utf8::valid(e.type) && utf8::valid(e.webhook_id);
  for (const auto& [k, v] : e.headers) plain = plain && utf8::valid(k) && utf8::valid(v);
  for (const auto& r : e.resources) plain = plain && utf8::valid(r);
  if (!plain) return envelope_json(e).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);

  std::size_t size = 192 + e.correlation_id.size() + e.dedup_key.size() + e.flow.size() + e.id.size() +
                     e.listener_id.size() + e.shop_domain.size() + e.source.size() + e.type.size() +
                     e.webhook_id.size();
  for (const auto& [k, v] : e.headers) size += k.size() + v.size() + 8;
  for (const auto& r : e.resources) size += r.size() + 3;
  std::string out;
  out.reserve(size);
  // The members in name order, as nlohmann's object (a std::map) writes them.
  const auto text = [&out](const char* name, std::string_view value) {
    out += name;
    append_json_string(value, out);
  };
  text("{\"correlation_id\":", e.correlation_id);
  text(",\"dedup_key\":", e.dedup_key);
  text(",\"flow\":", e.flow);
  out += ",\"headers\":[";
  for (std::size_t i = 0; i < e.headers.size(); ++i) {
    out += i == 0 ? "[" : ",[";
    append_json_string(e.headers[i].first, out);
    out += ',';
    append_json_string(e.headers[i].second, out);
    out += ']';
  }
  out += ']';
  text(",\"id\":", e.id);
  text(",\"listener_id\":", e.listener_id);
  out += ",\"occurred_ms\":";
  out += std::to_string(e.occurred_ms);
  out += ",\"resources\":";
  out += string_array_text(e.resources);
  text(",\"shop\":", e.shop_domain);
  text(",\"source\":", e.source);
  out += ",\"time_ms\":";
  out += std::to_string(e.time_ms);
  text(",\"type\":", e.type);
  text(",\"webhook_id\":", e.webhook_id);
  out += '}';
  return out;
}

std::string string_array_text(const std::vector<std::string>& items) {
  for (const auto& item : items) {
    if (!utf8::valid(item))
      return nlohmann::json(items).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    json_text::append_json_string(items[i], out);
  }
  out += ']';
  return out;
}

event::EventPtr event_from(const nlohmann::json& j, const char* data, int len) {
  auto e = std::make_shared<event::Event>();
  e->id = j.value("id", "");
  e->flow = j.value("flow", "");
  e->listener_id = j.value("listener_id", "");
  e->source = j.value("source", "");
  e->type = j.value("type", "");
  e->time_ms = j.value("time_ms", int64_t{0});
  e->occurred_ms = j.value("occurred_ms", int64_t{0});
  e->shop_domain = j.value("shop", "");
  e->webhook_id = j.value("webhook_id", "");
  e->dedup_key = j.value("dedup_key", "");
  e->correlation_id = j.value("correlation_id", "");
  if (auto h = j.find("headers"); h != j.end() && h->is_array()) {
    for (const auto& pair : *h) {
      if (pair.is_array() && pair.size() == 2 && pair[0].is_string() && pair[1].is_string())
        e->headers.emplace_back(pair[0].get<std::string>(), pair[1].get<std::string>());
    }
  }
  if (auto r = j.find("resources"); r != j.end() && r->is_array()) {
    for (const auto& v : *r) {
      if (v.is_string()) e->resources.push_back(v.get<std::string>());
    }
  }
  if (data && len > 0) e->payload.assign(data, static_cast<std::size_t>(len));
  return e;
}

nlohmann::json attempt_json(const Attempt& a) {
  return {{"number", a.number},         {"at_ms", a.at_ms}, {"status", a.status},
          {"latency_ms", a.latency_ms}, {"error", a.error}, {"response", a.response}};
}

Attempt attempt_from(const nlohmann::json& j) {
  Attempt a;
  if (!j.is_object()) return a;
  a.number = j.value("number", 0);
  a.at_ms = j.value("at_ms", int64_t{0});
  a.status = j.value("status", 0);
  a.latency_ms = j.value("latency_ms", int64_t{0});
  a.error = j.value("error", "");
  a.response = j.value("response", "");
  return a;
}

std::string header(natsMsg* m, const char* name) {
  const char* v = nullptr;
  if (m && natsMsgHeader_Get(m, name, &v) == NATS_OK && v) return v;
  return {};
}

std::string publish(jsCtx* js, int64_t timeout_ms, const std::string& subject, const std::string& msg_id,
                    std::span<const std::pair<const char*, const std::string*>> headers, const char* data,
                    int len, uint64_t* seq, bool* duplicate) {
  natsMsg* m = nullptr;
  natsStatus s = natsMsg_Create(&m, subject.c_str(), nullptr, data, len);
  for (const auto& [name, value] : headers) {
    if (s == NATS_OK && !value->empty()) s = natsMsgHeader_Set(m, name, value->c_str());
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = timeout_ms;
  if (!msg_id.empty()) po.MsgId = msg_id.c_str();
  jsPubAck* pa = nullptr;
  jsErrCode code{};
  if (s == NATS_OK) s = js_PublishMsg(&pa, js, m, &po, &code);
  natsMsg_Destroy(m);
  if (s != NATS_OK) return status_text(s, code);
  if (seq) *seq = pa->Sequence;
  if (duplicate) *duplicate = pa->Duplicate;
  jsPubAck_Destroy(pa);
  return {};
}

}  // namespace evr::store::jetstream
