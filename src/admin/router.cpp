#include "evrouter/admin/router.h"

#include <nlohmann/json.hpp>

#include "evrouter/store/store.h"

namespace evr::admin {
namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    const auto j = path.find('/', i);
    const auto end = j == std::string_view::npos ? path.size() : j;
    out.push_back(path.substr(i, end - i));
    i = end;
  }
  return out;
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool decode(std::string_view in, std::string& out, bool plus_is_space) {
  out.clear();
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = hex(in[i + 1]);
      const int lo = hex(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return true;
}

}  // namespace

std::string Request::q(const std::string& name, const std::string& fallback) const {
  const auto it = query.find(name);
  return it == query.end() ? fallback : it->second;
}

Response Response::json(unsigned status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response Response::defer(std::function<Response()> work) {
  Response r;
  r.deferred = std::move(work);
  return r;
}

Response Response::error(unsigned status, std::string_view code, std::string_view message) {
  return json(status, nlohmann::json{{"error", code}, {"message", message}}.dump());
}

void Router::add(std::string method, std::string path, Handler handler) {
  Entry e;
  e.method = std::move(method);
  for (const auto s : split_path(path)) e.segments.emplace_back(s);
  e.path = std::move(path);
  e.handler = std::move(handler);
  entries_.push_back(std::move(e));
}

Response Router::route(Request& request) const {
  const auto segments = split_path(request.path);
  std::string allow;
  for (const auto& e : entries_) {
    if (e.segments.size() != segments.size()) continue;
    std::map<std::string, std::string> params;
    bool ok = true;
    for (std::size_t i = 0; i < segments.size() && ok; ++i) {
      const auto& want = e.segments[i];
      if (want.size() > 2 && want.front() == '{' && want.back() == '}') {
        params[want.substr(1, want.size() - 2)] = std::string(segments[i]);
      } else {
        ok = want == segments[i];
      }
    }
    if (!ok) continue;
    if (e.method != request.method && !(e.method == "GET" && request.method == "HEAD")) {
      if (allow.find(e.method) == std::string::npos) allow += allow.empty() ? e.method : ", " + e.method;
      continue;
    }
    request.params = std::move(params);
    auto answer = [this, per_instance = e.per_instance](const std::function<Response()>& make) {
      Response response;
      try {
        response = make();
      } catch (const store::NotSupported& ex) {
        response = Response::error(501, "not_supported", ex.what());
      } catch (const std::exception& ex) {
        response = Response::error(500, "internal_error", ex.what());
      }
      if (!response.deferred) {
        if (!instance_.empty()) response.headers.emplace_back("X-Evrouter-Instance", instance_);
        response.headers.emplace_back("X-Evrouter-Scope", per_instance ? "instance" : "cluster");
      }
      return response;
    };
    Response response = answer([&] { return e.handler(request); });
    if (response.deferred) {
      // The same error mapping and headers, applied when the work has run (on the server's worker thread;
      // the router outlives the server).
      response.deferred = [answer, work = std::move(response.deferred)] {
        return answer([&] {
          Response r = work();
          r.deferred = nullptr;  // deferred once only
          return r;
        });
      };
    }
    return response;
  }
  if (!allow.empty()) {
    auto r = Response::error(405, "method_not_allowed", "use " + allow);
    r.headers.emplace_back("Allow", allow);
    return r;
  }
  return Response::error(404, "not_found", "no such endpoint: " + request.path);
}

void Router::per_instance(const std::string& prefix) {
  for (auto& e : entries_) {
    if (e.path == prefix || (e.path.size() > prefix.size() && e.path.compare(0, prefix.size(), prefix) == 0 &&
                             e.path[prefix.size()] == '/'))
      e.per_instance = true;
  }
}

std::vector<Router::Route> Router::routes() const {
  std::vector<Route> out;
  out.reserve(entries_.size());
  for (const auto& e : entries_) out.push_back({e.method, e.path});
  return out;
}

bool parse_target(std::string_view target, std::string& path, std::map<std::string, std::string>& query) {
  const auto q = target.find('?');
  if (!decode(target.substr(0, q), path, false)) return false;
  if (q == std::string_view::npos) return true;
  std::string_view rest = target.substr(q + 1);
  std::string key;
  std::string value;
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const auto pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    if (!decode(pair.substr(0, eq), key, true)) return false;
    if (!decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1), value, true))
      return false;
    query[key] = value;
  }
  return true;
}

Response Router::route_now(Request& request) const {
  Response r = route(request);
  return r.deferred ? r.deferred() : r;
}

}  // namespace evr::admin
