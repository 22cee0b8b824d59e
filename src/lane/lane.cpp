#include "lane/lane.h"

#include <strings.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <random>

#include "connection/connection.h"
#include "evrouter/common/log.h"
#include "evrouter/common/utf8.h"
#include "evrouter/destination/cloudevents.h"
#include "evrouter/destination/retry.h"
#include "evrouter/event/event.h"
#include "evrouter/http/client.h"
#include "evrouter/tail/hub.h"
#include "lane/batch.h"

namespace evr::lane {

namespace {

// The request of one attempt. False (with `error`) when the destination's mapping cannot render it.
bool build_request(const Spec& spec, const connection::Connection& conn, const store::Delivery& d,
                   int attempt, http::Request& req, std::string& error) {
  const event::Event& e = *d.event;
  mapping::Mapping::Request mapped;
  if (spec.mapping && !spec.mapping->render(e, d.id, mapped, error)) return false;
  req.method = spec.destination.method;
  req.target = conn.endpoint().base_path + (spec.mapping ? mapped.path : spec.destination.path);
  req.headers.reserve(8 + spec.destination.headers.size());
  req.headers.emplace_back("Content-Type", conn.config().media_type);
  for (const auto& h : conn.auth_headers()) req.headers.push_back(h);
  req.headers.emplace_back("X-Evrouter-Event-Id", e.id);
  req.headers.emplace_back("X-Evrouter-Delivery-Id", std::to_string(d.id));
  req.headers.emplace_back("X-Evrouter-Attempt", std::to_string(attempt));
  req.headers.emplace_back("X-Evrouter-Event-Type", e.type);
  req.headers.emplace_back("X-Evrouter-Flow", spec.flow);
  if (d.replay) req.headers.emplace_back("X-Evrouter-Replay", "true");
  if (!e.correlation_id.empty()) req.headers.emplace_back("X-Correlation-Id", e.correlation_id);
  if (spec.mapping) {
    for (auto& h : mapped.headers) req.headers.push_back(std::move(h));
  } else {
    for (const auto& h : spec.destination.headers) req.headers.push_back(h);
  }
  if (mapped.body) {
    req.body = std::move(*mapped.body);
  } else {
    req.body = e.payload;
  }
  // What goes on the wire last (docs/outbound.md): CloudEvents framing, then the signature of the final body.
  destination::apply_cloudevents(spec.destination.cloudevents, e, conn.config().media_type, req);
  const destination::Signer* signer = spec.signer ? spec.signer->get() : conn.signer();
  if (signer) signer->sign(req.headers, destination::message_id(e, d.id), event::now_ms() / 1000, req.body);
  return true;
}

// A uniform draw in [0, 1) for the retry backoff's jitter. One generator per thread, seeded once: seeding
// one per lane from std::random_device was ~6 % of the CPU of a 1,000-flow start.
double jitter() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0, 1)(rng);
}

const char* kind_name(store::Outcome::Kind k) {
  switch (k) {
    case store::Outcome::Kind::delivered:
      return "delivered";
    case store::Outcome::Kind::retry:
      return "retry";
    case store::Outcome::Kind::dead:
      return "dead";
  }
  return "retry";
}

}  // namespace

Lane::Lane(Spec spec, connection::Connection& connection, store::Store& store, boost::asio::io_context& ioc,
           const bool& stopping)
    : spec_(std::move(spec)),
      connection_(&connection),
      store_(store),
      ioc_(ioc),
      stopping_(stopping),
      metrics_(spec_.flow, spec_.id),
      flush_timer_(ioc) {}

void Lane::reconfigure(Spec spec, connection::Connection& connection) {
  spec_ = std::move(spec);
  if (&connection == connection_) return;
  connection_->forget(this);
  connection_ = &connection;
  if (!ready_.empty()) connection_->want(this);
}

void Lane::offer(store::Delivery delivery) {
  if (delivery.blocked) {
    // An earlier delivery of its key is pending: the store unblocks this one when that one is final, and
    // the lane fetches it then (look_again).
    blocked_on_disk_ = true;
    if (fetching_) blocked_during_fetch_ = true;
    return;
  }
  if (more_on_disk_ || ready_.size() >= kWindow) {
    more_on_disk_ = true;  // it waits on disk; the next fetch brings it in order
    // A fetch under way read the store before this delivery was committed: its answer must not clear
    // more_on_disk_, or this delivery would wait until the next restart.
    if (fetching_) deferred_during_fetch_ = true;
    return;
  }
  if (!held_.insert(delivery.id).second) return;
  ready_.push_back(std::move(delivery));
  on_ready();
}

void Lane::tick(int64_t now_ms) {
  metrics_.ready.set(static_cast<int64_t>(ready_.size()));
  metrics_.in_flight.set(static_cast<int64_t>(in_flight_));
  // Batching: a batch whose max_wait ended while nothing else woke the lane.
  if (spec_.destination.batch && !stopping_ && !queued && has_ready()) connection_->want(this);
  if (fetching_ || stopping_ || ready_.size() > kWindow / 2) return;
  if (more_on_disk_ || (next_due_ms_ != 0 && now_ms >= next_due_ms_)) fetch(now_ms);
}

void Lane::fetch(int64_t now_ms) {
  fetching_ = true;
  ++fetches_;
  next_due_ms_ = 0;
  const std::size_t limit = kWindow - ready_.size();
  store_.fetch_due(spec_.id, now_ms, limit, held_, [this, limit](store::Due due) {
    boost::asio::post(ioc_, [this, limit, due = std::move(due)]() mutable {
      fetching_ = false;
      more_on_disk_ = due.deliveries.size() >= limit || deferred_during_fetch_;
      deferred_during_fetch_ = false;
      blocked_on_disk_ = due.blocked || blocked_during_fetch_;
      blocked_during_fetch_ = false;
      capped_ = due.capped;
      if (due.next_due_ms)
        next_due_ms_ = next_due_ms_ ? std::min(next_due_ms_, *due.next_due_ms) : *due.next_due_ms;
      for (auto& d : due.deliveries) {
        if (finished_during_fetch_.count(d.id) == 0 && held_.insert(d.id).second)
          ready_.push_back(std::move(d));
      }
      finished_during_fetch_.clear();
      if (!ready_.empty()) on_ready();
      // Deliveries that waited on disk (offered while the window was full, or during this fetch) are read
      // now if there is room: nothing else would fetch them before the next tick (100 ms) when the window
      // is empty, and a lane at a steady rate would stall that long each time its window overflowed.
      if (more_on_disk_ && !stopping_ && !fetching_ && ready_.size() <= kWindow / 2) fetch(event::now_ms());
    });
  });
}

void Lane::on_ready() {
  if (stopping_ || ready_.empty()) return;
  if (spec_.destination.batch) {
    int64_t deadline = 0;
    const bool due = batch_due(
        *spec_.destination.batch, ready_, event::now_ms(),
        [this](const store::Delivery& d) { return keys_.open(d); }, deadline);
    if (!due) {
      if (deadline != 0) arm_flush(deadline);
      return;
    }
  }
  connection_->want(this);
}

bool Lane::has_ready() const {
  if (ready_.empty()) return false;
  auto open = [this](const store::Delivery& d) { return keys_.open(d); };
  if (spec_.destination.batch) {
    int64_t deadline = 0;
    return batch_due(*spec_.destination.batch, ready_, event::now_ms(), open, deadline);
  }
  return keys_.empty() || std::any_of(ready_.begin(), ready_.end(), open);
}

void Lane::arm_flush(int64_t deadline_ms) {
  if (flush_at_ms_ != 0 && flush_at_ms_ <= deadline_ms) return;
  flush_at_ms_ = deadline_ms;
  const int64_t wait = std::max<int64_t>(0, deadline_ms - event::now_ms()) + 1;
  flush_timer_.expires_after(std::chrono::milliseconds(wait));
  flush_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // re-armed, or the lane is going away: touch nothing
    flush_at_ms_ = 0;
    on_ready();
  });
}

void Lane::look_again() {
  more_on_disk_ = true;
  if (fetching_) {
    deferred_during_fetch_ = true;
    return;
  }
  if (!stopping_ && ready_.size() <= kWindow / 2) fetch(event::now_ms());
}

bool Lane::send_one() {
  if (spec_.destination.batch) return send_batch();
  http::Request req;
  store::Delivery d;
  for (;;) {
    if (ready_.empty() || stopping_) return false;
    // Ordered lanes: the first ready delivery whose key has nothing in flight.
    auto it = keys_.empty() ? ready_.begin()
                            : std::find_if(ready_.begin(), ready_.end(),
                                           [this](const store::Delivery& r) { return keys_.open(r); });
    if (it == ready_.end()) return false;
    d = std::move(*it);
    ready_.erase(it);
    keys_.start(d);
    std::string error;
    if (build_request(spec_, *connection_, d, d.attempts + 1, req, error)) break;
    reject(d, std::move(error));
    req = {};
  }
  ++in_flight_;
  LaneMetrics::first_attempt(d, event::now_ms());
  connection_->send(std::move(req), [this, d = std::move(d)](const http::Result& result) mutable {
    --in_flight_;
    const store::Delivery done = std::move(d);  // freed (with its event) when the outcome is handled
    return on_result(done, result);
  });
  // A backlog on disk: refill as soon as half the window is gone rather than at the next tick, or one lane
  // could never send more than kWindow deliveries per tick (2,560/s) whatever its rate limit.
  if (more_on_disk_ && !fetching_ && ready_.size() <= kWindow / 2) fetch(event::now_ms());
  return true;
}

bool Lane::send_batch() {
  const config::Batch& b = *spec_.destination.batch;
  const int64_t now = event::now_ms();
  auto open = [this](const store::Delivery& d) { return keys_.open(d); };
  int64_t deadline = 0;
  if (stopping_) return false;
  if (!batch_due(b, ready_, now, open, deadline)) {
    if (deadline != 0) arm_flush(deadline);
    return false;
  }
  // Members in window order, a key at most once (its first delivery starts the key), up to max_events
  // and max_bytes (a first body larger than max_bytes goes alone).
  std::vector<store::Delivery> members;
  std::vector<std::string> bodies;
  http::Request first;
  uint64_t bytes = 2;
  for (auto it = ready_.begin();
       it != ready_.end() && members.size() < static_cast<std::size_t>(b.max_events);) {
    if (!open(*it)) {
      ++it;
      continue;
    }
    http::Request req;
    std::string error;
    if (!build_request(spec_, *connection_, *it, it->attempts + 1, req, error)) {
      store::Delivery d = std::move(*it);
      it = ready_.erase(it);
      keys_.start(d);
      reject(d, std::move(error));
      continue;
    }
    const uint64_t add = req.body.size() + (members.empty() ? 0 : 1);
    if (!members.empty() && bytes + add > b.max_bytes) break;
    bytes += add;
    bodies.push_back(std::move(req.body));
    if (members.empty()) first = std::move(req);
    keys_.start(*it);
    members.push_back(std::move(*it));
    it = ready_.erase(it);
  }
  if (members.empty()) return false;
  http::Request req = compose_batch(std::move(first), bodies, members);
  if (spec_.destination.cloudevents == config::Destination::CloudEvents::structured) {
    // An array of structured CloudEvents: the CloudEvents JSON batch format.
    for (auto& [name, value] : req.headers) {
      if (::strcasecmp(name.c_str(), "Content-Type") == 0) value = "application/cloudevents-batch+json";
    }
  }
  // Signed over the whole batch body (what build_request signed was one member's).
  const destination::Signer* signer = spec_.signer ? spec_.signer->get() : connection_->signer();
  if (signer) {
    std::erase_if(req.headers,
                  [](const auto& h) { return ::strncasecmp(h.first.c_str(), "webhook-", 8) == 0; });
    signer->sign(req.headers,
                 "batch-" + std::to_string(members.front().id) + "-" + std::to_string(members.size()),
                 event::now_ms() / 1000, req.body);
  }
  ++in_flight_;
  for (const auto& m : members) LaneMetrics::first_attempt(m, now);
  connection_->send(std::move(req), [this, members = std::move(members)](const http::Result& result) mutable {
    --in_flight_;
    // The one outcome applies to every member, each recorded as its own attempt; the connection's breaker
    // and adaptive limit see one request.
    auto feedback = connection::Feedback::cancelled;
    for (const auto& d : members) feedback = on_result(d, result);
    return feedback;
  });
  if (!ready_.empty()) on_ready();
  return true;
}

connection::Feedback Lane::on_result(const store::Delivery& d, const http::Result& result) {
  const int64_t now = event::now_ms();
  if (stopping_ && !result.ok()) {
    // Cancelled by shutdown: no attempt is recorded and the delivery stays pending for the next start.
    finish(d.id);
    return connection::Feedback::cancelled;
  }
  store::Outcome out;
  out.delivery_id = d.id;
  out.ordered = d.ordering_key.has_value();
  out.attempts = d.attempts + 1;
  out.attempt.number = out.attempts;
  out.attempt.at_ms = now - result.latency.count();
  out.attempt.status = result.ok() ? result.response.status : 0;
  out.attempt.latency_ms = result.latency.count();
  // Kept with the attempt and shown as JSON: valid UTF-8, at most 1 KiB.
  out.attempt.response = utf8::scrub(result.response.body, 1024);

  metrics_.attempt(out.attempt.status, std::chrono::duration<double>(result.latency).count());
  const auto verdict = spec_.classify(result);
  const std::string status = std::to_string(out.attempt.status);
  const event::Event& e = *d.event;
  if (verdict == destination::Verdict::success) {
    out.kind = store::Outcome::Kind::delivered;
    metrics_.delivered.inc();
    log::debug(
        "delivered",
        {{"lane", spec_.id}, {"event_id", e.id}, {"correlation_id", e.correlation_id}, {"status", status}});
  } else {
    out.attempt.error = result.ok() ? "HTTP " + status : utf8::scrub(result.error, 1024);
    // After a dead-letter replay the retry policy starts over (attempts and age count from the replay).
    const int tries = out.attempts - d.attempts_before_replay;
    const int64_t since_ms = d.replayed_ms != 0 ? d.replayed_ms : d.created_ms;
    int64_t delay = destination::backoff_ms(spec_.retry, tries, jitter());
    if (result.ok()) {
      if (auto ra = destination::parse_retry_after(result.response.header("Retry-After"), now)) delay = *ra;
    }
    const bool too_many = tries >= spec_.retry.max_attempts;
    const bool too_old = now + delay - since_ms > spec_.retry.max_age.count();
    if (verdict == destination::Verdict::fail || too_many || too_old) {
      out.kind = store::Outcome::Kind::dead;
      metrics_.dead.inc();
      if (verdict != destination::Verdict::fail) {
        out.attempt.error += too_many ? " (max attempts reached)" : " (max age reached)";
      }
      log::warn("delivery dead", {{"lane", spec_.id},
                                  {"event_id", e.id},
                                  {"correlation_id", e.correlation_id},
                                  {"attempts", std::to_string(out.attempts)},
                                  {"error", out.attempt.error}});
    } else {
      out.kind = store::Outcome::Kind::retry;
      metrics_.retried.inc();
      out.next_attempt_ms = now + delay;
      next_due_ms_ = next_due_ms_ ? std::min(next_due_ms_, out.next_attempt_ms) : out.next_attempt_ms;
      log::info("delivery will retry", {{"lane", spec_.id},
                                        {"event_id", e.id},
                                        {"correlation_id", e.correlation_id},
                                        {"attempt", std::to_string(out.attempts)},
                                        {"error", out.attempt.error},
                                        {"retry_in_ms", std::to_string(delay)}});
    }
  }
  tail::publish_delivery(d.event, spec_.id, kind_name(out.kind), out.attempts, out.attempt.status,
                         out.attempt.latency_ms, out.attempt.error, d.replay);
  const int64_t id = d.id;
  const int64_t retry_at = out.kind == store::Outcome::Kind::retry ? out.next_attempt_ms : 0;
  store_.record(std::move(out), [this, id, retry_at] {
    boost::asio::post(ioc_, [this, id, retry_at] { finish(id, retry_at); });
  });
  switch (verdict) {
    case destination::Verdict::success:
      return connection::Feedback::success;
    case destination::Verdict::retry:
      return connection::Feedback::retry;
    case destination::Verdict::fail:
      break;
  }
  return connection::Feedback::fail;
}

void Lane::reject(const store::Delivery& d, std::string error) {
  const event::Event& e = *d.event;
  log::warn("delivery dead", {{"lane", spec_.id},
                              {"event_id", e.id},
                              {"correlation_id", e.correlation_id},
                              {"attempts", std::to_string(d.attempts + 1)},
                              {"error", error}});
  metrics_.dead.inc();
  store::Outcome out;
  out.delivery_id = d.id;
  out.ordered = d.ordering_key.has_value();
  out.kind = store::Outcome::Kind::dead;
  out.attempts = d.attempts + 1;
  out.attempt.number = out.attempts;
  out.attempt.at_ms = event::now_ms();
  out.attempt.error = std::move(error);
  tail::publish_delivery(d.event, spec_.id, "dead", out.attempts, 0, 0, out.attempt.error, d.replay);
  const int64_t id = d.id;
  store_.record(std::move(out), [this, id] { boost::asio::post(ioc_, [this, id] { finish(id); }); });
}

void Lane::finish(int64_t delivery_id, int64_t retry_at_ms) {
  // Only now, with the outcome durable, may a fetch see this delivery again: a fetch issued from now on.
  held_.erase(delivery_id);
  if (fetching_) finished_during_fetch_.insert(delivery_id);
  if (retry_at_ms != 0) next_due_ms_ = next_due_ms_ ? std::min(next_due_ms_, retry_at_ms) : retry_at_ms;
  // A place under the cap is free: read the deliveries that waited for one.
  if (capped_ && !fetching_ && !stopping_ && ready_.size() <= kWindow / 2) fetch(event::now_ms());
  if (keys_.finish(delivery_id)) {
    // Its key is free: a ready delivery of it may go, and the key's next one on disk may be unblocked.
    if (!ready_.empty()) on_ready();
    if (blocked_on_disk_) look_again();
  }
}

}  // namespace evr::lane
