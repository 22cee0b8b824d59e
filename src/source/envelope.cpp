#include "source/envelope.h"

#include "evrouter/common/utf8.h"

namespace evr::source {

std::optional<Refusal> check_envelope_text(const event::Event& e) {
  // Lengths first, whatever the source: a header may be up to the whole 16 KiB header limit.
  if (e.type.size() > kMaxTypeLength)
    return Refusal{400, "invalid_type", "the event type is over 256 characters", {}};
  if (e.webhook_id.size() > kMaxIdLength || e.dedup_key.size() > kMaxIdLength)
    return Refusal{400, "invalid_id", "the webhook id is over 128 characters", {}};
  if (e.shop_domain.size() > kMaxDomainLength)
    return Refusal{400, "invalid_header", "the shop domain is over 255 characters", {}};
  auto refuse = [](const std::string& what) {
    return Refusal{400, "invalid_header", what + " is not valid UTF-8", {}};
  };
  for (const auto& [name, value] : e.headers) {
    if (!utf8::valid(value)) return refuse("header " + name);
  }
  // Fields that may come from a header not kept in e.headers (the body's are valid JSON strings).
  const std::pair<const char*, const std::string*> fields[] = {{"the event type", &e.type},
                                                               {"the webhook id", &e.webhook_id},
                                                               {"the deduplication id", &e.dedup_key},
                                                               {"the shop domain", &e.shop_domain},
                                                               {"the correlation id", &e.correlation_id}};
  for (const auto& [what, value] : fields) {
    if (!utf8::valid(*value)) return refuse(what);
  }
  for (const char c : e.type) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f)
      return Refusal{400, "invalid_type", "the event type holds a control character", {}};
  }
  return std::nullopt;
}

}  // namespace evr::source
