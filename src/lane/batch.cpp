#include "lane/batch.h"

#include <strings.h>

#include <algorithm>
#include <array>

namespace evr::lane {

bool per_event_header(const std::string& name) {
  static constexpr std::array<const char*, 6> kPerEvent = {"X-Evrouter-Event-Id", "X-Evrouter-Delivery-Id",
                                                           "X-Evrouter-Attempt",  "X-Evrouter-Event-Type",
                                                           "X-Correlation-Id",    "X-Evrouter-Replay"};
  return std::any_of(kPerEvent.begin(), kPerEvent.end(),
                     [&name](const char* h) { return ::strcasecmp(h, name.c_str()) == 0; });
}

http::Request compose_batch(http::Request first, const std::vector<std::string>& bodies,
                            const std::vector<store::Delivery>& members) {
  http::Request req = std::move(first);
  std::erase_if(req.headers, [](const auto& h) { return per_event_header(h.first); });
  std::string ids;
  for (const auto& d : members) {
    if (!ids.empty()) ids += ',';
    ids += std::to_string(d.id);
  }
  req.headers.emplace_back("X-Evrouter-Batch-Size", std::to_string(members.size()));
  req.headers.emplace_back("X-Evrouter-Delivery-Ids", std::move(ids));
  std::size_t size = 2;
  for (const auto& b : bodies) size += b.size() + 1;
  req.body.clear();
  req.body.reserve(size);
  req.body += '[';
  for (std::size_t i = 0; i < bodies.size(); ++i) {
    if (i != 0) req.body += ',';
    req.body += bodies[i];
  }
  req.body += ']';
  return req;
}

}  // namespace evr::lane
