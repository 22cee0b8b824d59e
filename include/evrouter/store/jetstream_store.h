#pragma once
// The NATS JetStream store (docs/scaling.md): events and deliveries as messages in JetStream streams, one
// durable pull consumer per lane, listener ids and flow state in KV buckets. Several evrouter instances
// can share one stream. NATS calls run on the store's own threads, never on the caller's event loop.

#include <memory>

#include "evrouter/config/config.h"
#include "evrouter/store/store.h"

namespace evr::store {

std::unique_ptr<Store> make_jetstream_store(const config::Store& options);

}  // namespace evr::store
