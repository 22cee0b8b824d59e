#pragma once
// A worker: one thread, one event loop, one SO_REUSEPORT acceptor; the kernel spreads connections.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <thread>
#include <unordered_set>

namespace evr::listener {

class Session;

struct Worker {
  // Declared first so it outlives the io_context, whose destructor may destroy sessions.
  std::unordered_set<Session*> sessions;  // touched only on this worker's thread
  boost::asio::io_context ioc{1};
  boost::asio::ip::tcp::acceptor acceptor{ioc};
  std::thread thread;
};

}  // namespace evr::listener
