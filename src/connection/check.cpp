#include "evrouter/connection/check.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <memory>
#include <optional>

#include "connection/connection.h"
#include "evrouter/http/client.h"

namespace evr::connection {
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

std::chrono::microseconds since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return out;
}

std::string name_text(const X509_NAME* name) {
  BIO* bio = BIO_new(BIO_s_mem());
  X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
  return bio_text(bio);
}

std::string time_text(const ASN1_TIME* t) {
  BIO* bio = BIO_new(BIO_s_mem());
  ASN1_TIME_print(bio, t);
  return bio_text(bio);
}

Certificate describe(SSL* ssl, X509* cert) {
  Certificate c;
  c.subject = name_text(X509_get_subject_name(cert));
  c.issuer = name_text(X509_get_issuer_name(cert));
  c.not_before = time_text(X509_get0_notBefore(cert));
  c.not_after = time_text(X509_get0_notAfter(cert));
  int days = 0, seconds = 0;
  if (ASN1_TIME_diff(&days, &seconds, nullptr, X509_get0_notAfter(cert))) c.days_left = days;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
      if (n->type == GEN_DNS) {
        const auto* s = n->d.dNSName;
        c.names.push_back("DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                               static_cast<std::size_t>(ASN1_STRING_length(s))));
      } else if (n->type == GEN_IPADD) {
        const auto* s = n->d.iPAddress;
        const unsigned char* p = ASN1_STRING_get0_data(s);
        if (ASN1_STRING_length(s) == 4) {
          c.names.push_back("IP:" + net::ip::address_v4({p[0], p[1], p[2], p[3]}).to_string());
        } else if (ASN1_STRING_length(s) == 16) {
          net::ip::address_v6::bytes_type b;
          std::copy(p, p + 16, b.begin());
          c.names.push_back("IP:" + net::ip::address_v6(b).to_string());
        }
      }
    }
    GENERAL_NAMES_free(names);
  }
  c.protocol = SSL_get_version(ssl);
  c.cipher = SSL_get_cipher_name(ssl);
  return c;
}

// Runs the loop until `done` or the deadline; false on timeout (pending work is cancelled by the caller).
bool run_until(net::io_context& ioc, const bool& done, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!done && Clock::now() < deadline) {
    ioc.run_one_until(deadline);
  }
  return done;
}

std::string ms(std::chrono::milliseconds d) {
  return std::to_string(d.count()) + " ms";
}

}  // namespace

CheckReport check(const config::Connection& connection, const CheckOptions& options) {
  CheckReport report;
  report.connection = connection.name;
  report.base_uri = connection.base_uri;
  auto endpoint = http::Endpoint::parse(connection.base_uri);
  if (!endpoint) throw std::runtime_error("connection " + connection.name + ": invalid base_uri");
  net::io_context ioc{1};
  // Kept busy for the whole check: the loop is run a step at a time, and must not stop in between.
  auto busy = net::make_work_guard(ioc);
  // The probe's client and auth headers; throws when the connection's secret is not set.
  Prepared prepared;
  if (options.probe_path) prepared = prepare(connection, ioc);

  auto fail = [&](CheckPhase phase, std::string verdict) {
    phase.ok = false;
    report.phases.push_back(std::move(phase));
    report.verdict = std::move(verdict);
    return report;
  };

  // DNS.
  CheckPhase dns{"dns", false, {}, {}};
  auto start = Clock::now();
  tcp::resolver resolver(ioc);
  tcp::resolver::results_type addresses;
  bool resolved = false;
  beast::error_code ec;
  resolver.async_resolve(endpoint->host, std::to_string(endpoint->port),
                         [&](beast::error_code e, tcp::resolver::results_type r) {
                           ec = e;
                           addresses = std::move(r);
                           resolved = true;
                         });
  if (!run_until(ioc, resolved, connection.connect_timeout)) {
    resolver.cancel();
    dns.took = since(start);
    dns.detail = "no answer within " + ms(connection.connect_timeout);
    return fail(dns, "cannot resolve " + endpoint->host);
  }
  dns.took = since(start);
  if (ec) {
    dns.detail = ec.message();
    return fail(dns, "cannot resolve " + endpoint->host + ": " + ec.message());
  }
  for (const auto& a : addresses) {
    if (!dns.detail.empty()) dns.detail += ", ";
    dns.detail += a.endpoint().address().to_string();
  }
  dns.ok = true;
  report.phases.push_back(dns);

  // TCP connect.
  CheckPhase connect{"connect", false, {}, {}};
  start = Clock::now();
  beast::tcp_stream stream(ioc);
  bool connected = false;
  tcp::endpoint peer;
  stream.expires_after(connection.connect_timeout);
  stream.async_connect(addresses, [&](beast::error_code e, const tcp::endpoint& p) {
    ec = e;
    peer = p;
    connected = true;
  });
  run_until(ioc, connected, connection.connect_timeout + std::chrono::seconds(1));
  connect.took = since(start);
  if (!connected || ec) {
    connect.detail = !connected || ec == beast::error::timeout
                         ? "no answer within " + ms(connection.connect_timeout)
                         : ec.message();
    return fail(connect, "cannot connect to " + endpoint->host + ":" + std::to_string(endpoint->port) + ": " +
                             connect.detail);
  }
  connect.ok = true;
  connect.detail = peer.address().to_string() + ":" + std::to_string(peer.port());
  report.phases.push_back(connect);

  // TLS: the handshake completes whatever the certificate is, so its details can be shown; the
  // verification result (chain and host name) decides the phase.
  if (endpoint->tls) {
    CheckPhase tls{"tls", false, {}, {}};
    start = Clock::now();
    ssl::context ctx(ssl::context::tls_client);
    ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                    ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    ctx.set_default_verify_paths();
    if (!connection.ca_file.empty()) {
      ctx.load_verify_file(connection.ca_file, ec);
      if (ec) {
        tls.detail = "cannot load ca_file " + connection.ca_file + ": " + ec.message();
        return fail(tls, tls.detail);
      }
    }
    ctx.set_verify_mode(ssl::verify_none);
    ssl::stream<beast::tcp_stream> tls_stream(std::move(stream), ctx);
    SSL* s = tls_stream.native_handle();
    beast::error_code literal_ec;
    (void)net::ip::make_address(endpoint->host, literal_ec);
    if (literal_ec) SSL_set_tlsext_host_name(s, endpoint->host.c_str());
    bool shaken = false;
    beast::get_lowest_layer(tls_stream).expires_after(connection.connect_timeout);
    tls_stream.async_handshake(ssl::stream_base::client, [&](beast::error_code e) {
      ec = e;
      shaken = true;
    });
    run_until(ioc, shaken, connection.connect_timeout + std::chrono::seconds(1));
    tls.took = since(start);
    if (!shaken || ec) {
      tls.detail = !shaken || ec == beast::error::timeout
                       ? "no handshake within " + ms(connection.connect_timeout)
                       : ec.message();
      return fail(tls, "TLS handshake failed: " + tls.detail);
    }
    X509* cert = SSL_get1_peer_certificate(s);
    if (!cert) return fail(tls, "the server sent no certificate");
    report.certificate = describe(s, cert);
    std::string problem;
    const long verify = SSL_get_verify_result(s);
    if (verify != X509_V_OK) {
      problem = X509_verify_cert_error_string(verify);
    } else if (literal_ec
                   ? X509_check_host(cert, endpoint->host.data(), endpoint->host.size(), 0, nullptr) != 1
                   : X509_check_ip_asc(cert, endpoint->host.c_str(), 0) != 1) {
      problem = "the certificate is not valid for " + endpoint->host;
    }
    X509_free(cert);
    const auto& c = *report.certificate;
    tls.detail = c.protocol + ", " + c.cipher + "; subject " + c.subject + ", issuer " + c.issuer +
                 ", expires " + c.not_after + " (" + std::to_string(c.days_left) + " days)";
    if (!problem.empty()) {
      tls.detail = problem + "; " + tls.detail;
      if (connection.tls_verify) return fail(tls, "certificate not trusted: " + problem);
      tls.detail += " (tls_verify is off: accepted)";
    }
    tls.ok = true;
    report.phases.push_back(tls);
    beast::get_lowest_layer(tls_stream).close();
  } else {
    stream.close();
  }

  // Probe: one request with the connection's auth, through the same client deliveries use.
  if (options.probe_path) {
    CheckPhase probe{"probe", false, {}, {}};
    http::Request req;
    req.method = options.probe_method;
    req.target = endpoint->base_path + *options.probe_path;
    req.headers = prepared.auth_headers;
    bool answered = false;
    http::Result result;
    start = Clock::now();
    prepared.client->send(std::move(req), [&](http::Result r) {
      result = std::move(r);
      answered = true;
    });
    run_until(ioc, answered,
              connection.connect_timeout + connection.request_timeout + std::chrono::seconds(1));
    probe.took = since(start);
    prepared.client->close();
    if (!answered || !result.ok()) {
      probe.detail = answered ? result.error : "no answer";
      return fail(probe, options.probe_method + " " + *options.probe_path + " failed: " + probe.detail);
    }
    const int status = result.response.status;
    report.probe_status = status;
    probe.detail =
        "HTTP " + std::to_string(status) + ", " + std::to_string(result.response.body.size()) + " bytes";
    if (status == 401 || status == 403) {
      return fail(probe, "reachable, but the destination rejected the credentials (HTTP " +
                             std::to_string(status) + ")");
    }
    if (status >= 400) {
      return fail(probe, "reachable, but " + options.probe_method + " " + *options.probe_path +
                             " answered HTTP " + std::to_string(status));
    }
    probe.ok = true;
    report.phases.push_back(probe);
  }

  report.ok = true;
  report.verdict = options.probe_path ? "reachable and answering" : "reachable";
  if (report.certificate && report.certificate->days_left < 14) {
    report.verdict +=
        " (the certificate expires in " + std::to_string(report.certificate->days_left) + " days)";
  }
  return report;
}

nlohmann::json to_json(const CheckReport& report) {
  nlohmann::json j{{"connection", report.connection},
                   {"base_uri", report.base_uri},
                   {"ok", report.ok},
                   {"verdict", report.verdict},
                   {"phases", nlohmann::json::array()}};
  for (const auto& p : report.phases) {
    j["phases"].push_back({{"name", p.name},
                           {"ok", p.ok},
                           {"ms", static_cast<double>(p.took.count()) / 1000.0},
                           {"detail", p.detail}});
  }
  if (report.certificate) {
    const auto& c = *report.certificate;
    j["certificate"] = {{"subject", c.subject},       {"issuer", c.issuer},       {"names", c.names},
                        {"not_before", c.not_before}, {"not_after", c.not_after}, {"days_left", c.days_left},
                        {"protocol", c.protocol},     {"cipher", c.cipher}};
  }
  if (report.probe_status) j["probe_status"] = *report.probe_status;
  return j;
}

}  // namespace evr::connection
