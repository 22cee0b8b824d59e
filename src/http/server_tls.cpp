#include "http/server_tls.h"

#include <openssl/ssl.h>

#include <stdexcept>

namespace evr::http {

namespace ssl = boost::asio::ssl;

std::shared_ptr<ssl::context> server_tls_context(const config::ServerTls& t) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression |
                   ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(ctx->native_handle(),
                                t.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
  // Clients that resume a session skip the certificate exchange (cheaper reconnects).
  SSL_CTX_set_session_cache_mode(ctx->native_handle(), SSL_SESS_CACHE_SERVER);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(t.cert_file, ec);
  if (ec) throw std::runtime_error("tls.cert_file: cannot use " + t.cert_file + ": " + ec.message());
  ctx->use_private_key_file(t.key_file, ssl::context::pem, ec);
  if (ec) throw std::runtime_error("tls.key_file: cannot use " + t.key_file + ": " + ec.message());
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1)
    throw std::runtime_error("tls: the key in " + t.key_file + " is not the key of " + t.cert_file);
  return ctx;
}

}  // namespace evr::http
