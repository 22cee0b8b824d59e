#pragma once
// The TLS context of a server that terminates TLS itself (server.tls, admin.tls): TLS 1.2 or 1.3 and
// later, the certificate chain and its key, a session cache for clients that resume.

#include <boost/asio/ssl/context.hpp>
#include <memory>

#include "evrouter/config/config.h"

namespace evr::http {

// Reads the files now. Throws std::runtime_error naming the file and OpenSSL's reason when one does not
// load or the key is not the certificate's.
std::shared_ptr<boost::asio::ssl::context> server_tls_context(const config::ServerTls& tls);

}  // namespace evr::http
