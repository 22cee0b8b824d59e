#include "lane/lane.h"

#include <boost/asio/post.hpp>

#include "connection/connection.h"
#include "evrouter/common/log.h"
#include "evrouter/destination/retry.h"
#include "evrouter/event/event.h"
#include "evrouter/http/client.h"

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
  if (!e.correlation_id.empty()) req.headers.emplace_back("X-Correlation-Id", e.correlation_id);
  if (spec.mapping) {
    for (auto& h : mapped.headers) req.headers.push_back(std::move(h));
  } else {
    for (const auto& h : spec.destination.headers) req.headers.push_back(h);
  }
  req.body = mapped.body ? std::move(*mapped.body) : e.payload;
  return true;
}

}  // namespace

Lane::Lane(Spec spec, connection::Connection& connection, store::Store& store, boost::asio::io_context& ioc,
           const bool& stopping)
    : spec_(std::move(spec)),
      connection_(&connection),
      store_(store),
      ioc_(ioc),
      stopping_(stopping),
      metrics_(spec_.flow, spec_.id) {}

void Lane::reconfigure(Spec spec, connection::Connection& connection) {
  spec_ = std::move(spec);
  if (&connection == connection_) return;
  connection_->forget(this);
  connection_ = &connection;
  if (!ready_.empty()) connection_->want(this);
}

void Lane::offer(store::Delivery delivery) {
  if (more_on_disk_ || ready_.size() >= kWindow) {
    more_on_disk_ = true;  // it waits on disk; the next fetch brings it in order
    // A fetch under way read the store before this delivery was committed: its answer must not clear
    // more_on_disk_, or this delivery would wait until the next restart.
    if (fetching_) deferred_during_fetch_ = true;
    return;
  }
  if (!held_.insert(delivery.id).second) return;
  ready_.push_back(std::move(delivery));
  connection_->want(this);
}

void Lane::tick(int64_t now_ms) {
  metrics_.ready.set(static_cast<int64_t>(ready_.size()));
  metrics_.in_flight.set(static_cast<int64_t>(in_flight_));
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
      if (due.next_due_ms)
        next_due_ms_ = next_due_ms_ ? std::min(next_due_ms_, *due.next_due_ms) : *due.next_due_ms;
      for (auto& d : due.deliveries) {
        if (held_.insert(d.id).second) ready_.push_back(std::move(d));
      }
      if (!ready_.empty()) connection_->want(this);
    });
  });
}

bool Lane::send_one() {
  http::Request req;
  store::Delivery d;
  for (;;) {
    if (ready_.empty() || stopping_) return false;
    d = std::move(ready_.front());
    ready_.pop_front();
    std::string error;
    if (build_request(spec_, *connection_, d, d.attempts + 1, req, error)) break;
    reject(std::move(d), std::move(error));
    req = {};
  }
  ++in_flight_;
  connection_->send(std::move(req), [this, d = std::move(d)](const http::Result& result) mutable {
    --in_flight_;
    return on_result(std::move(d), result);
  });
  return true;
}

connection::Feedback Lane::on_result(store::Delivery d, const http::Result& result) {
  const int64_t now = event::now_ms();
  if (stopping_ && !result.ok()) {
    // Cancelled by shutdown: no attempt is recorded and the delivery stays pending for the next start.
    held_.erase(d.id);
    return connection::Feedback::cancelled;
  }
  store::Outcome out;
  out.delivery_id = d.id;
  out.attempts = d.attempts + 1;
  out.attempt.number = out.attempts;
  out.attempt.at_ms = now - result.latency.count();
  out.attempt.status = result.ok() ? result.response.status : 0;
  out.attempt.latency_ms = result.latency.count();
  out.attempt.response = result.response.body.substr(0, 1024);

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
    out.attempt.error = result.ok() ? "HTTP " + status : result.error;
    int64_t delay = destination::backoff_ms(spec_.retry, out.attempts,
                                            std::uniform_real_distribution<double>(0, 1)(rng_));
    if (result.ok()) {
      if (auto ra = destination::parse_retry_after(result.response.header("Retry-After"), now)) delay = *ra;
    }
    const bool too_many = out.attempts >= spec_.retry.max_attempts;
    const bool too_old = now + delay - d.created_ms > spec_.retry.max_age.count();
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
  const int64_t id = d.id;
  store_.record(std::move(out), [this, id] { boost::asio::post(ioc_, [this, id] { finish(id); }); });
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

void Lane::reject(store::Delivery d, std::string error) {
  const event::Event& e = *d.event;
  log::warn("delivery dead", {{"lane", spec_.id},
                              {"event_id", e.id},
                              {"correlation_id", e.correlation_id},
                              {"attempts", std::to_string(d.attempts + 1)},
                              {"error", error}});
  metrics_.dead.inc();
  store::Outcome out;
  out.delivery_id = d.id;
  out.kind = store::Outcome::Kind::dead;
  out.attempts = d.attempts + 1;
  out.attempt.number = out.attempts;
  out.attempt.at_ms = event::now_ms();
  out.attempt.error = std::move(error);
  const int64_t id = d.id;
  store_.record(std::move(out), [this, id] { boost::asio::post(ioc_, [this, id] { finish(id); }); });
}

void Lane::finish(int64_t delivery_id) {
  // Only now, with the outcome durable, may a fetch see this delivery again.
  held_.erase(delivery_id);
}

}  // namespace evr::lane
