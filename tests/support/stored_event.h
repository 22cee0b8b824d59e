#pragma once
// The event of an accepted Shopify orders/create webhook as the store tests commit it: flow "f", listener
// "L1", deduplicated by its webhook id, stamped now. A test sets whatever else it is about.

#include <memory>
#include <string>

#include "evrouter/event/event.h"

namespace evr::test {

inline std::shared_ptr<event::Event> stored_event(const std::string& webhook_id,
                                                  std::string payload = R"({"id":1})") {
  auto e = std::make_shared<event::Event>();
  e->time_ms = event::now_ms();
  e->id = event::new_event_id(e->time_ms);
  e->flow = "f";
  e->listener_id = "L1";
  e->source = "shopify";
  e->type = "orders/create";
  e->dedup_key = webhook_id;
  e->webhook_id = webhook_id;
  e->correlation_id = e->id;
  e->headers = {{"X-Shopify-Topic", "orders/create"}};
  e->payload = std::move(payload);
  return e;
}

}  // namespace evr::test
