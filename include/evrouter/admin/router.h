#pragma once
// Routing for the admin API: requests as plain values, routes as "METHOD /path/{param}" templates, answers
// as JSON. Independent of the HTTP server so handlers can be tested without a socket.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace evr::admin {

struct Request {
  std::string method;                         // "GET", "POST", ...
  std::string path;                           // decoded path, no query
  std::map<std::string, std::string> query;   // decoded query parameters (last one wins)
  std::map<std::string, std::string> params;  // filled by the router from {name} segments
  std::string body;

  // A query parameter, or `fallback` when absent.
  std::string q(const std::string& name, const std::string& fallback = "") const;
};

// The body of a response that goes on until either side ends it: server-sent events (text/event-stream).
// Its calls run on the admin server's loop.
class EventStream {
 public:
  virtual ~EventStream() = default;
  // Once the headers are sent. `wake` (callable from any thread) asks the server to call next() soon.
  virtual void start(std::function<void()> wake) = 0;
  // Appends the frames ready to send to `out`; false when the stream is over (what `out` holds is still
  // sent first).
  virtual bool next(std::string& out) = 0;
};

struct Response {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::shared_ptr<EventStream> stream;  // set: a 200 event stream instead of `body`
  // Set: the answer is what this returns, computed on the admin server's worker thread instead of its
  // loop, for work that can take seconds (a window replay, a bulk dead-letter operation, a store search, a
  // connection test): the loop keeps answering /metrics, the dashboard and the other calls meanwhile.
  // Deferred work runs one at a time, in the order asked. The fields above are then unused.
  std::function<Response()> deferred;

  static Response json(unsigned status, std::string body);
  static Response defer(std::function<Response()> work);
  // {"error": code, "message": message}
  static Response error(unsigned status, std::string_view code, std::string_view message);
};

using Handler = std::function<Response(const Request&)>;

class Router {
 public:
  // `path` segments written {name} match any one segment and are passed in Request::params.
  void add(std::string method, std::string path, Handler handler);
  // 404 when no path matches, 405 (with Allow) when the path exists for other methods. Every answer of a
  // route carries `X-Evrouter-Instance` (when set) and `X-Evrouter-Scope`: `instance` for the routes marked
  // below (what this process alone saw or holds), `cluster` for the others (what every instance sharing the
  // store answers the same; docs/scaling.md).
  Response route(Request& request) const;
  // route(), with deferred work (Response::deferred) run here, on the calling thread: for callers
  // without a server (tests).
  Response route_now(Request& request) const;

  // The instance that answers (Daemon::instance_id()).
  void set_instance(std::string id) { instance_ = std::move(id); }
  // Marks the routes whose path is `prefix` or starts with `prefix` + "/" as answered per instance.
  void per_instance(const std::string& prefix);

  struct Route {
    std::string method;
    std::string path;
  };
  // Every route, for the OpenAPI check and GET /v1.
  std::vector<Route> routes() const;

 private:
  struct Entry {
    std::string method;
    std::string path;
    std::vector<std::string> segments;
    Handler handler;
    bool per_instance = false;
  };
  std::vector<Entry> entries_;
  std::string instance_;
};

// Splits "/a/b?x=1&y=%20" into a decoded path and query map. Returns false on a malformed escape.
bool parse_target(std::string_view target, std::string& path, std::map<std::string, std::string>& query);

}  // namespace evr::admin
