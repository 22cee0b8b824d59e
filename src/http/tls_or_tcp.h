#pragma once
// Servers that terminate TLS when configured: a session's reads and writes go to the TLS stream over its
// TCP stream when there is one, else to the TCP stream itself. One generic call site serves both.

#include <boost/asio/ssl/stream.hpp>
#include <optional>

namespace evr::http {

// Calls op(stream) with *tls when it is engaged, else with tcp.
template <typename Tcp, typename Op>
void on_stream(std::optional<boost::asio::ssl::stream<Tcp&>>& tls, Tcp& tcp, Op&& op) {
  if (tls) {
    op(*tls);
  } else {
    op(tcp);
  }
}

}  // namespace evr::http
