#pragma once
// "Test connection": checks that a configured connection can be reached and used, phase by phase — DNS,
// TCP connect, TLS handshake (with the certificate's details), and optionally a probe request carrying the
// connection's auth — timing each one and giving a verdict. Blocking (it runs its own io_context): for the
// CLI and the admin thread, never for an event loop.

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "evrouter/config/config.h"

namespace evr::connection {

struct CheckOptions {
  std::optional<std::string> probe_path;  // relative to base_uri; none = no probe request
  std::string probe_method = "GET";
};

struct CheckPhase {
  std::string name;  // dns, connect, tls, probe
  bool ok = false;
  std::chrono::microseconds took{0};
  std::string detail;  // what was found, or why it failed
};

struct Certificate {
  std::string subject, issuer;
  std::vector<std::string> names;  // subjectAltName entries (DNS:..., IP:...)
  std::string not_before, not_after;
  int days_left = 0;
  std::string protocol, cipher;  // of the session
};

struct CheckReport {
  std::string connection;
  std::string base_uri;
  std::vector<CheckPhase> phases;  // in order; stops at the first failed phase
  std::optional<Certificate> certificate;
  std::optional<int> probe_status;
  bool ok = false;
  std::string verdict;  // one sentence
};

// Never throws for network failures (they are the report); throws std::runtime_error when the connection
// cannot be used at all (invalid base_uri, a secret not set).
CheckReport check(const config::Connection& connection, const CheckOptions& options);

nlohmann::json to_json(const CheckReport& report);

}  // namespace evr::connection
