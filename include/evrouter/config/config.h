#pragma once
// The configuration model: what config/evrouter.yaml and flows/*.yaml say, after validation.
// See docs/configuration.md for the documented schema; config/loader.h turns files into these types.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "evrouter/config/diagnostic.h"
#include "evrouter/config/duration.h"
#include "evrouter/config/secret.h"

namespace evr::config {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Auth {
  enum class Type { none, basic, bearer, api_key, oauth2 };
  enum class ClientAuth { basic, form };  // oauth2: how the client authenticates at token_url
  Type type = Type::none;
  std::string username;              // basic
  std::optional<SecretRef> secret;   // basic: password; bearer: token; api_key: key; oauth2: client_secret
  std::string header = "X-API-Key";  // api_key: header that carries the key
  std::string token_url;             // oauth2 (client credentials grant)
  std::string client_id;             // oauth2
  std::string scope;                 // oauth2, optional
  std::string audience;              // oauth2, optional
  ClientAuth client_auth = ClientAuth::basic;  // oauth2

  bool operator==(const Auth&) const = default;
};

struct RetryPolicy {
  int max_attempts = 10;
  Millis max_age = std::chrono::hours(24);
  Millis backoff_base = std::chrono::seconds(1);
  Millis backoff_cap = std::chrono::minutes(10);
  double jitter = 0.2;  // fraction of the delay, 0..1

  bool operator==(const RetryPolicy&) const = default;
};

struct RateLimit {
  double per_second = 0;  // 0 = unlimited
  double burst = 1;       // bucket size, >= 1

  bool operator==(const RateLimit&) const = default;
};

// Outbound request signing (docs/configuration.md, "signing").
struct Signing {
  enum class Type { none, standard_webhooks };
  Type type = Type::none;
  std::vector<SecretRef> secrets;  // standard-webhooks: whsec_ secrets; one signature each (rotation)
  SourceLocation where;

  bool operator==(const Signing&) const = default;
};

// Which HTTP statuses count as success, retry or fail. Entries are status codes ("409") or classes
// ("4xx"), normalised to that text by the loader; a code wins over a class, and a status no entry names
// keeps the built-in verdict (2xx success; 408, 425, 429, 5xx retry; others fail). docs/configuration.md.
struct Responses {
  std::vector<std::string> success, retry, fail;

  bool operator==(const Responses&) const = default;
};

// Circuit breaker of a connection: opens after `failures` consecutive retryable failures (0 = off), probes
// again after `cooldown` (doubling while probes fail, up to 10x).
struct BreakerPolicy {
  int failures = 5;
  Millis cooldown = std::chrono::seconds(30);

  bool operator==(const BreakerPolicy&) const = default;
};

// Adaptive concurrency (AIMD on round-trip time): when enabled, Connection::concurrency is the maximum.
struct AdaptiveConcurrency {
  bool enabled = false;
  int initial = 4;  // starting limit, <= concurrency

  bool operator==(const AdaptiveConcurrency&) const = default;
};

struct Connection {
  std::string name;
  std::string base_uri;  // http://host[:port][/base] or https://...
  Auth auth;
  std::string media_type = "application/json";
  Millis connect_timeout = std::chrono::seconds(5);
  Millis request_timeout = std::chrono::seconds(30);
  RateLimit rate_limit;
  int concurrency = 8;  // max requests in flight, >= 1
  AdaptiveConcurrency adaptive;
  BreakerPolicy breaker;
  Responses responses;  // default for destinations on this connection
  RetryPolicy retry;
  std::string ca_file;     // optional extra CA bundle (PEM) to trust for https
  bool tls_verify = true;  // never false in production; documented as for tests only
  Signing signing;         // default for the connection's destinations
  SourceLocation where;

  bool operator==(const Connection&) const = default;
};

// A variable of a destination's mapping: a name bound to a path into the event envelope (docs/mappings.md).
struct InputPath {
  enum class As { value, number, string };  // conversion of the selected value
  std::string name;
  std::string path;  // JSONPath subset, e.g. $.detail.id
  As as = As::value;
  SourceLocation where;
  bool operator==(const InputPath&) const = default;
};

// Batching on a destination (docs/configuration.md): up to max_events deliveries in one request whose body is
// a JSON array of their bodies, sent when max_events or max_bytes is reached or the oldest waited max_wait.
struct Batch {
  int max_events = 100;                        // 1..256 (the lane's in-memory window)
  uint64_t max_bytes = uint64_t{1024} * 1024;  // request body, brackets and commas included
  Millis max_wait = std::chrono::milliseconds(200);

  bool operator==(const Batch&) const = default;
};

struct Destination {
  std::string name;        // defaults to "<connection>" or "<connection>-<n>" when repeated
  std::string connection;  // name of a Connection
  std::string method = "POST";
  std::string path = "/";              // relative URI appended to the connection's base_uri; may use {name}
  Headers headers;                     // values may use {name}
  std::vector<InputPath> input_paths;  // variables for input_template, path and headers
  std::optional<nlohmann::ordered_json> input_template;  // the request body; none = the payload as received
  std::optional<RetryPolicy> retry;                      // overrides the connection's
  std::string ordering_key;        // path into the envelope (e.g. $.detail.id): per-key FIFO; "" = unordered
  std::optional<Batch> batch;      // none: one request per delivery
  std::optional<Signing> signing;  // overrides the connection's (none: unsigned)
  enum class CloudEvents { none, binary, structured };  // CloudEvents HTTP binding mode
  CloudEvents cloudevents = CloudEvents::none;
  std::optional<Responses> responses;  // replaces the connection's
  SourceLocation where;

  bool operator==(const Destination&) const = default;
};

struct Branch {
  std::string name;                     // defaults to "branch-<n>"
  std::optional<nlohmann::json> match;  // EventBridge event pattern; absent = matches every event
  SourceLocation match_where;
  bool is_default = false;  // the flow's `default:` branch: taken only when no other branch matched
  std::vector<Destination> destinations;
  SourceLocation where;

  bool operator==(const Branch&) const = default;
};

// How a generic webhook source authenticates requests (source.verify; see docs/sources.md).
struct Verify {
  enum class Type { hmac, standard_webhooks, basic, bearer, none };
  enum class Algorithm { sha256, sha1 };
  enum class Encoding { hex, base64 };
  Type type = Type::hmac;
  std::string header;                       // hmac: the header carrying the signature
  Algorithm algorithm = Algorithm::sha256;  // hmac
  Encoding encoding = Encoding::hex;        // hmac
  std::string prefix;                       // hmac: e.g. "sha256="
  std::vector<SecretRef> secrets;  // hmac, standard-webhooks: any one verifying is enough; basic: the
                                   // password; bearer: the token
  std::string username;            // basic
  Millis tolerance = std::chrono::minutes(5);  // standard-webhooks: allowed clock difference, both ways
  SourceLocation where;
  bool operator==(const Verify&) const = default;
};

struct Source {
  std::string type = "shopify";            // shopify | webhook | bus
  std::optional<std::string> listener_id;  // pinned listener id; otherwise generated and kept in the store
  std::vector<SecretRef> secrets;   // shopify: several allowed for rotation; any one verifying is enough
  std::vector<std::string> topics;  // event types accepted (shopify, webhook); empty = every one
  // webhook
  Verify verify;
  std::string name = "webhook";           // the envelope's "source"
  std::string event_type;                 // a fixed event type, or:
  std::string type_header;                // the header holding the event type, or:
  std::string type_field;                 // the top-level body field holding it
  std::string id_header;                  // the header holding the producer's event id (deduplication)
  std::vector<std::string> keep_headers;  // request headers copied into the envelope
  // bus
  std::vector<std::string> sources;  // published sources this flow takes (wildcards `*`); empty = all
  SourceLocation where;

  bool operator==(const Source&) const = default;
};

struct Flow {
  enum class Mode { first, all };
  std::string name;
  bool enabled = true;
  Source source;
  Mode mode = Mode::first;
  std::vector<Branch> branches;
  std::string file;
  SourceLocation where;

  bool operator==(const Flow&) const = default;
};

// TLS on the ingest listener itself (docs/configuration.md#server-tls): HTTPS for producers that reach
// evrouter directly (Shopify only calls https:// URLs), without a proxy in front.
struct ServerTls {
  std::string cert_file;            // PEM: the certificate, then its intermediates
  std::string key_file;             // PEM: its private key (unencrypted)
  std::string min_version = "1.2";  // "1.2" or "1.3"

  bool operator==(const ServerTls&) const = default;
};

struct Server {
  std::string listen = "0.0.0.0";
  uint16_t port = 8080;
  std::string public_base_url;  // default http://localhost:<port>
  int workers = 0;              // 0 = one per core
  uint64_t max_body_bytes = uint64_t{1024} * 1024;
  // Request bodies held in memory at once by every connection together (from the headers until the answer
  // is written); a request that would pass it is answered 503 at once (docs/configuration.md#server).
  uint64_t max_body_memory = uint64_t{256} * 1024 * 1024;
  // Open client connections at most, shared evenly by the workers; past it a worker stops accepting (the
  // kernel's backlog holds new connections) until one of its connections closes.
  int max_connections = 10000;
  Millis request_timeout = std::chrono::seconds(10);  // whole request read (slow clients)
  Millis idle_timeout = std::chrono::seconds(60);     // keep-alive idle
  Millis shutdown_grace = std::chrono::seconds(10);
  std::optional<ServerTls> tls;  // none: plain HTTP

  bool operator==(const Server&) const = default;
};

struct Store {
  enum class Durability { fsync, os, none };
  std::string type = "sqlite";
  std::string state_dir = "./state";
  Durability durability = Durability::fsync;
  Millis dedup_window = std::chrono::hours(48);
  int commit_max_batch = 2048;
  // sqlite: how long events are kept after they were received (0 = forever). Events with a delivery still
  // pending or dead are kept whatever their age (docs/configuration.md#retention).
  Millis retention = std::chrono::hours(24 * 7);
  // type jetstream (docs/scaling.md): the NATS servers, the stream name (also the subject prefix and the
  // prefix of the other streams and KV buckets), the replicas of each, and the timeout of connects and
  // of every NATS request (publish acknowledgements, consumer and KV calls).
  std::vector<std::string> servers = {"nats://127.0.0.1:4222"};
  std::string stream = "evrouter";
  int replicas = 1;
  Millis timeout = std::chrono::seconds(5);
  // How long a delivery handed to an instance stays its own without news (then JetStream hands it to
  // another): the time a crashed instance's deliveries wait. Instances alive extend it every ack_wait/3.
  Millis ack_wait = std::chrono::seconds(30);

  bool operator==(const Store&) const = default;
};

// The admin API (REST + /metrics + dashboard) on its own port; on when the config has an `admin:` section.
struct Admin {
  bool enabled = false;
  std::string listen = "127.0.0.1";
  uint16_t port = 8081;
  std::optional<SecretRef> token;  // bearer token; unset = loopback only, no auth
  int max_connections = 64;        // open connections at most; past it new ones wait until one closes
  std::optional<ServerTls> tls;    // none: plain HTTP
  SourceLocation where;
  bool operator==(const Admin&) const = default;
};

struct Log {
  std::string level = "info";   // trace, debug, info, warn, error
  std::string format = "text";  // text | json

  bool operator==(const Log&) const = default;
};

// How the running daemon picks up configuration changes (besides SIGHUP, which always reloads).
struct Reload {
  bool watch = false;  // reload when the config file or a flow file changes (inotify)
  Millis debounce = std::chrono::milliseconds(500);  // wait for changes to settle this long

  bool operator==(const Reload&) const = default;
};

// The event-bus publish API (POST /v1/events; see docs/publish-api.md).
struct PublishKey {
  std::string name;
  SecretRef key;
  std::vector<std::string> sources;  // sources this key may publish (wildcards `*`)
  SourceLocation where;
  bool operator==(const PublishKey&) const = default;
};

struct Publish {
  int max_entries = 100;         // entries per request
  std::vector<PublishKey> keys;  // none = the publish API is off (404)
  bool operator==(const Publish&) const = default;
};

// Schema discovery (docs/admin-api.md#schema-discovery): payload schemas inferred per source and type.
struct Schemas {
  bool enabled = true;
  std::vector<std::string> redact;  // extra key patterns whose samples are hidden (added to the defaults)
  bool redact_defaults = true;      // also hide the built-in list (schema::default_redactions())
  int max_fields = 2000;            // field paths kept per schema
  int max_schemas = 1000;           // source/type pairs kept
  int max_array_items = 20;         // elements of each array examined
  double sample_rate = 1.0;         // share of accepted events examined (0..1)
  int max_rate = 10;                // events examined per second per source and type; 0 = every one
  int queue = 10000;                // events waiting for inference; more are dropped (never slows ingest)
  Millis flush_interval = std::chrono::seconds(5);  // how often changed schemas are written to the store

  bool operator==(const Schemas&) const = default;
};

struct Config {
  std::string file;
  Server server;
  Store store;
  Log log;
  Admin admin;
  Publish publish;
  Reload reload;
  Schemas schemas;
  std::map<std::string, Connection> connections;
  std::vector<std::string> flow_paths;  // files or directories (every *.yaml / *.yml inside)
  std::vector<Flow> flows;
};

}  // namespace evr::config
