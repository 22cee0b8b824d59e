// evrouter tail [--flow F] [--pattern JSON] [--kinds event,delivery] [--output text|json]: prints events
// and delivery outcomes as they happen, from the admin API's live tail (GET /v1/tail).
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>

#include "cli/admin_client.h"
#include "cli/commands.h"
#include "evrouter/http/client.h"

namespace evr::cli {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
using json = nlohmann::json;

void tail_usage() {
  std::fputs(
      "usage: evrouter tail [--flow FLOW]... [--pattern JSON|@FILE] [--kinds event,delivery]\n"
      "                     [--output text|json] [--admin-url URL] [--token TOKEN]\n"
      "  Prints events as they are accepted and delivery attempts as they end, until interrupted.\n"
      "  --pattern: an EventBridge event pattern the event must match. --output json: one JSON object\n"
      "  per line (with the whole event). The daemon is found at --admin-url, else EVROUTER_ADMIN_URL,\n"
      "  else http://127.0.0.1:8081; the token is --token, else EVROUTER_ADMIN_TOKEN.\n",
      stderr);
}

// "23:14:29.039" from an RFC 3339 time.
std::string clock_of(const std::string& t) {
  const auto at = t.find('T');
  return at == std::string::npos ? t : t.substr(at + 1, 12);
}

void print_text(const std::string& kind, const json& j) {
  const std::string when = clock_of(j.value("at", ""));
  if (kind == "event") {
    std::string lanes;
    for (const auto& l : j.value("lanes", json::array())) {
      if (!lanes.empty()) lanes += ", ";
      lanes += l.get<std::string>();
    }
    std::printf("%s  %-9s %-22s %s  %s -> %s\n", when.c_str(), "event", j.value("type", "").c_str(),
                j.value("event_id", "").c_str(), j.value("flow", "").c_str(),
                lanes.empty() ? "(no branch matched)" : lanes.c_str());
  } else if (kind == "delivery") {
    std::string result = j.contains("status") ? "HTTP " + std::to_string(j["status"].get<int>()) : "";
    if (j.contains("error")) result += (result.empty() ? "" : " ") + j["error"].get<std::string>();
    std::printf("%s  %-9s %-22s %s  %s  %s, %lld ms, attempt %d\n", when.c_str(),
                j.value("outcome", "").c_str(), j.value("type", "").c_str(), j.value("event_id", "").c_str(),
                j.value("lane", "").c_str(), result.c_str(), static_cast<long long>(j.value("latency_ms", 0)),
                j.value("attempt", 0));
  }
  std::fflush(stdout);
}

int unreachable(const std::string& admin_url, const beast::system_error& e) {
  std::fprintf(stderr,
               "evrouter tail: cannot reach the admin API at %s: %s (is the daemon running with an admin: "
               "section? set --admin-url or EVROUTER_ADMIN_URL)\n",
               admin_url.c_str(), e.code().message().c_str());
  return 1;
}

// Sends the tail request on `stream` (TCP, or TLS over `tcp_stream`, whose deadline bounds each read) and
// prints the frames until the daemon ends the stream.
template <typename Stream>
int follow(Stream& stream, beast::tcp_stream& tcp_stream, const std::string& target, const std::string& token,
           const std::string& admin_url, const std::string& output) {
  beast::flat_buffer buffer;
  const auto endpoint = evr::http::Endpoint::parse(admin_url);
  try {
    bhttp::request<bhttp::empty_body> req(bhttp::verb::get, target, 11);
    req.set(bhttp::field::host, endpoint->host);
    req.set(bhttp::field::accept, "text/event-stream");
    if (!token.empty()) req.set(bhttp::field::authorization, "Bearer " + token);
    bhttp::write(stream, req);
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(1 << 20);
    bhttp::read_header(stream, buffer, parser);
    const unsigned status = parser.get().result_int();
    if (status != 200) {
      beast::error_code ec;
      bhttp::read(stream, buffer, parser, ec);
      std::string message = parser.get().body();
      try {
        message = json::parse(message).value("message", message);
      } catch (const json::exception&) {
      }
      if (status == 401) {
        std::fprintf(stderr,
                     "evrouter tail: the admin API at %s refused the token (%s); set --token or "
                     "EVROUTER_ADMIN_TOKEN\n",
                     admin_url.c_str(), message.c_str());
      } else {
        std::fprintf(stderr, "evrouter tail: HTTP %u from %s: %s\n", status, admin_url.c_str(),
                     message.c_str());
      }
      return 1;
    }
  } catch (const beast::system_error& e) {
    return unreachable(admin_url, e);
  }

  // The body: SSE frames until the connection closes. The server sends a comment every 15 s, so a minute
  // of silence means it is gone.
  std::string pending(static_cast<const char*>(buffer.data().data()), buffer.size());
  char chunk[16 * 1024];
  for (;;) {
    std::size_t end;
    while ((end = pending.find("\n\n")) != std::string::npos) {
      const std::string frame = pending.substr(0, end);
      pending.erase(0, end + 2);
      std::string kind, data;
      std::size_t pos = 0;
      while (pos < frame.size()) {
        auto nl = frame.find('\n', pos);
        if (nl == std::string::npos) nl = frame.size();
        const std::string line = frame.substr(pos, nl - pos);
        pos = nl + 1;
        if (line.rfind("event: ", 0) == 0) kind = line.substr(7);
        if (line.rfind("data: ", 0) == 0) data = line.substr(6);
      }
      if (kind.empty() || data.empty()) continue;
      if (kind == "dropped") {
        std::fprintf(stderr, "evrouter tail: the daemon dropped this watcher: it fell behind\n");
        return 3;
      }
      if (output == "json") {
        std::printf("%s\n", data.c_str());
        std::fflush(stdout);
      } else {
        try {
          print_text(kind, json::parse(data));
        } catch (const json::exception&) {
        }
      }
    }
    beast::error_code ec;
    tcp_stream.expires_after(std::chrono::seconds(60));
    const std::size_t n = stream.read_some(net::buffer(chunk), ec);
    if (ec) {
      if (ec == net::error::eof) {
        std::fprintf(stderr, "evrouter tail: the daemon closed the stream\n");
        return 0;
      }
      std::fprintf(stderr, "evrouter tail: %s\n", ec.message().c_str());
      return 1;
    }
    pending.append(chunk, n);
  }
}

}  // namespace

int tail(const Args& args) {
  AdminTarget admin = admin_target_from_env();
  std::string& admin_url = admin.url;
  std::string& token = admin.token;
  std::string flows, pattern, kinds, output = "text";
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "evrouter tail: %s needs a value\n", a.c_str());
        return false;
      }
      out = args[++i];
      return true;
    };
    std::string v;
    if (a == "--flow") {
      if (!value(v)) return 2;
      flows += (flows.empty() ? "" : ",") + v;
    } else if (a == "--pattern") {
      if (!value(pattern)) return 2;
    } else if (a == "--kinds") {
      if (!value(kinds)) return 2;
    } else if (a == "--output" || a == "-o") {
      if (!value(output)) return 2;
    } else if (a == "--admin-url") {
      if (!value(admin_url)) return 2;
    } else if (a == "--token") {
      if (!value(token)) return 2;
    } else if (a == "--help" || a == "-h") {
      tail_usage();
      return 0;
    } else {
      std::fprintf(stderr, "evrouter tail: unknown argument '%s'\n", a.c_str());
      tail_usage();
      return 2;
    }
  }
  if (output != "text" && output != "json") {
    std::fprintf(stderr, "evrouter tail: --output is text or json\n");
    return 2;
  }
  if (!pattern.empty() && pattern[0] == '@') {
    std::ifstream in(pattern.substr(1));
    if (!in) {
      std::fprintf(stderr, "evrouter tail: cannot read %s\n", pattern.c_str() + 1);
      return 2;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    pattern = ss.str();
  }
  const auto endpoint = evr::http::Endpoint::parse(admin_url);
  if (!endpoint) {
    std::fprintf(stderr, "evrouter tail: --admin-url must be an http:// or https:// URL (got '%s')\n",
                 admin_url.c_str());
    return 2;
  }

  std::string target = endpoint->base_path + "/v1/tail?payload=" + (output == "json" ? "true" : "false");
  if (!flows.empty()) target += "&flow=" + url_encode(flows);
  if (!kinds.empty()) target += "&kinds=" + url_encode(kinds);
  if (!pattern.empty()) target += "&pattern=" + url_encode(pattern);

  net::io_context ioc;
  beast::tcp_stream tcp_stream(ioc);
  std::unique_ptr<net::ssl::context> tls_context;           // https:// admin URLs
  std::optional<net::ssl::stream<beast::tcp_stream&>> tls;  // over tcp_stream
  if (endpoint->tls) {
    std::string error;
    tls_context = admin_tls_context(error);
    if (!tls_context) {
      std::fprintf(stderr, "evrouter tail: %s\n", error.c_str());
      return 2;
    }
    tls.emplace(tcp_stream, *tls_context);
    if (!prepare_admin_tls(tls->native_handle(), endpoint->host)) {
      std::fprintf(stderr, "evrouter tail: cannot set up TLS for %s\n", endpoint->host.c_str());
      return 2;
    }
  }
  try {
    tcp::resolver resolver(ioc);
    tcp_stream.expires_after(std::chrono::seconds(5));
    tcp_stream.connect(resolver.resolve(endpoint->host, std::to_string(endpoint->port)));
    if (tls) tls->handshake(net::ssl::stream_base::client);
  } catch (const beast::system_error& e) {
    return unreachable(admin_url, e);
  }
  // The request and the stream of frames, on the TCP stream or on the TLS one over it.
  auto watch = [&](auto& stream) { return follow(stream, tcp_stream, target, token, admin_url, output); };
  return tls ? watch(*tls) : watch(tcp_stream);
}

}  // namespace evr::cli
