#include "evrouter/config/compare.h"

namespace evr::config {
namespace {

void clear(SecretRef& s) {
  s.where = {};
}

Connection positionless(Connection c) {
  c.where = {};
  if (c.auth.secret) clear(*c.auth.secret);
  c.signing.where = {};
  for (auto& s : c.signing.secrets) clear(s);
  return c;
}

Destination positionless(Destination d) {
  d.where = {};
  for (auto& i : d.input_paths) i.where = {};
  if (d.signing) {
    d.signing->where = {};
    for (auto& s : d.signing->secrets) clear(s);
  }
  return d;
}

Flow positionless(Flow f) {
  f.where = {};
  f.file.clear();
  f.source.where = {};
  for (auto& s : f.source.secrets) clear(s);
  f.source.verify.where = {};
  for (auto& s : f.source.verify.secrets) clear(s);
  for (auto& b : f.branches) {
    b.where = {};
    b.match_where = {};
    for (auto& d : b.destinations) d = positionless(std::move(d));
  }
  return f;
}

}  // namespace

bool same_settings(const Connection& a, const Connection& b) {
  return positionless(a) == positionless(b);
}

bool same_settings(const Destination& a, const Destination& b) {
  return positionless(a) == positionless(b);
}

bool same_settings(const Flow& a, const Flow& b) {
  return positionless(a) == positionless(b);
}

}  // namespace evr::config
