#pragma once
// A worker: one thread, one event loop, one SO_REUSEPORT acceptor; the kernel spreads connections.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstddef>
#include <functional>
#include <thread>
#include <unordered_set>

#include "http/accept_errors.h"

namespace evr::listener {

class Session;

struct Worker {
  // Declared before the io_context so they outlive it: its destructor may destroy sessions, and a session's
  // destructor reads them.
  std::unordered_set<Session*> sessions;  // touched only on this worker's thread
  std::size_t max_sessions = 1;
  // At its share of server.max_connections, with no accept outstanding: the next of its sessions to close
  // resumes accepting (session_closed). After a failed accept, the accept_pause timer resumes it instead.
  bool full = false;
  std::function<void()> session_closed;  // on this worker's thread
  boost::asio::io_context ioc{1};
  boost::asio::ip::tcp::acceptor acceptor{ioc};
  boost::asio::steady_timer accept_pause{ioc};
  // Records the published-event counts that wait on this thread (listener/ingest_metrics.h).
  boost::asio::steady_timer published_counts{ioc};
  bool published_counts_armed = false;
  http::AcceptErrors accept_errors{"ingest"};
  std::thread thread;
};

}  // namespace evr::listener
