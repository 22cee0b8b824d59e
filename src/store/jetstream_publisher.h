#pragma once
// Pipelined publishing to JetStream: a batch of messages is sent before any acknowledgement is awaited,
// then all of them are awaited at once, so a batch costs one round trip instead of one per message.
// Private to the JetStream store. One publisher per thread that publishes this way: each has its own
// JetStream context, so waiting for one's acknowledgements never waits for another's.

#include <nats/nats.h>

#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace evr::store::jetstream {

class AsyncPublisher {
 public:
  // What JetStream answered for one message.
  struct Ack {
    bool answered = false;
    bool duplicate = false;  // the stream already held a message with its id (within its duplicate window)
    uint64_t seq = 0;        // its sequence in the stream (a duplicate: the first one's)
    std::string error;       // empty on success
  };

  AsyncPublisher() = default;
  ~AsyncPublisher() { close(); }
  AsyncPublisher(const AsyncPublisher&) = delete;
  AsyncPublisher& operator=(const AsyncPublisher&) = delete;

  // Its JetStream context on `nc` (which must outlive it). Throws when it cannot be created.
  void open(natsConnection* nc, int64_t timeout_ms);
  void close();

  // Sends one message; `ack` receives JetStream's answer and must stay where it is until wait() returns.
  // Headers with an empty value are left out; a non-empty `msg_id` lets the stream drop a repeat. False
  // (with ack.error) when it could not be sent.
  bool publish(const std::string& subject, const std::string& msg_id,
               std::span<const std::pair<const char*, const std::string*>> headers, std::string_view body,
               Ack& ack);
  // Returns once every message sent since the last wait was answered or timed out (timeout_ms after it
  // was sent); one left unanswered gets an error, and an answer arriving later is dropped.
  void wait();
  // Without waiting: whether `ack` is final (answered, timed out, or failed to send). Once it is, the
  // publisher no longer touches it.
  bool answered(const Ack& ack);

 private:
  static void on_ack(jsCtx* js, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure);

  jsCtx* js_ = nullptr;
  int64_t timeout_ms_ = 5000;
  std::mutex mu_;  // awaiting_: the publishing thread and the NATS client's
  std::unordered_map<natsMsg*, Ack*> awaiting_;
};

}  // namespace evr::store::jetstream
