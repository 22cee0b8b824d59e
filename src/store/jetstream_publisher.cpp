#include "store/jetstream_publisher.h"

#include <stdexcept>

#include "store/jetstream_codec.h"

namespace evr::store::jetstream {

void AsyncPublisher::open(natsConnection* nc, int64_t timeout_ms) {
  timeout_ms_ = timeout_ms;
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = timeout_ms;
  jo.PublishAsync.AckHandler = &AsyncPublisher::on_ack;
  jo.PublishAsync.AckHandlerClosure = this;
  if (natsStatus s = natsConnection_JetStream(&js_, nc, &jo); s != NATS_OK)
    throw std::runtime_error("store: JetStream context: " + status_text(s));
}

void AsyncPublisher::close() {
  if (!js_) return;
  wait();
  jsCtx_Destroy(js_);
  js_ = nullptr;
}

bool AsyncPublisher::publish(const std::string& subject, const std::string& msg_id,
                             std::span<const std::pair<const char*, const std::string*>> headers,
                             std::string_view body, Ack& ack) {
  if (!js_) {
    ack.error = "the store is closed";
    return false;
  }
  natsMsg* m = nullptr;
  natsStatus s = natsMsg_Create(&m, subject.c_str(), nullptr, body.data(), static_cast<int>(body.size()));
  for (const auto& [name, value] : headers) {
    if (s == NATS_OK && !value->empty()) s = natsMsgHeader_Set(m, name, value->c_str());
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = timeout_ms_;  // unanswered by then: on_ack is called with a timeout
  if (!msg_id.empty()) po.MsgId = msg_id.c_str();
  if (s == NATS_OK) {
    natsMsg* const key = m;
    {
      std::lock_guard lk(mu_);
      awaiting_[key] = &ack;  // before sending: the answer may come before the call returns
    }
    s = js_PublishMsgAsync(js_, &m, &po);  // on success the client owns the message (and clears m)
    if (s != NATS_OK) {
      std::lock_guard lk(mu_);
      awaiting_.erase(key);
    }
  }
  natsMsg_Destroy(m);
  if (s != NATS_OK) {
    ack.error = status_text(s);
    return false;
  }
  return true;
}

void AsyncPublisher::on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
  auto* self = static_cast<AsyncPublisher*>(closure);
  {
    std::lock_guard lk(self->mu_);
    if (auto it = self->awaiting_.find(msg); it != self->awaiting_.end()) {
      Ack& ack = *it->second;
      ack.answered = true;
      if (pa) {
        ack.seq = pa->Sequence;
        ack.duplicate = pa->Duplicate;
      } else if (pae) {
        ack.error = status_text(pae->Err, pae->ErrCode);
        if (pae->ErrText && *pae->ErrText && ack.error.find(pae->ErrText) == std::string::npos)
          ack.error += std::string(": ") + pae->ErrText;
      } else {
        ack.error = "no acknowledgement";
      }
      self->awaiting_.erase(it);
    }
  }
  natsMsg_Destroy(msg);  // the handler's to destroy (nats.h, jsPubAckHandler)
}

bool AsyncPublisher::answered(const Ack& ack) {
  std::lock_guard lk(mu_);
  return ack.answered || !ack.error.empty();
}

void AsyncPublisher::wait() {
  if (!js_) return;
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = timeout_ms_ + 1000;  // each message times out on its own after timeout_ms
  if (js_PublishAsyncComplete(js_, &po) != NATS_OK) {
    // Take back what is still unanswered: no handler runs for those any more.
    natsMsgList pending{};
    if (js_PublishAsyncGetPendingList(&pending, js_) == NATS_OK) natsMsgList_Destroy(&pending);
  }
  std::lock_guard lk(mu_);
  for (auto& [_, ack] : awaiting_) {
    if (ack->error.empty()) ack->error = "timeout waiting for JetStream's acknowledgement";
  }
  awaiting_.clear();
}

}  // namespace evr::store::jetstream
