#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "evrouter/metrics/metrics.h"

namespace evr::metrics {
namespace {

bool valid_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

void append_escaped(std::string& out, const std::string& v, bool label_value) {
  for (const char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && label_value) {
      out += "\\\"";
    } else {
      out.push_back(c);
    }
  }
}

void append_number(std::string& out, double v) {
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  char buf[32];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.9g", v);
  }
  out += buf;
}

// name{a="x",b="y"[,extra="..."]} value\n
void append_sample(std::string& out, const std::string& name, const Labels& labels, const char* extra_key,
                   const std::string& extra_value, double value) {
  out += name;
  if (!labels.empty() || extra_key != nullptr) {
    out.push_back('{');
    bool first = true;
    for (const auto& [k, v] : labels) {
      if (!first) out.push_back(',');
      first = false;
      out += k;
      out += "=\"";
      append_escaped(out, v, true);
      out.push_back('"');
    }
    if (extra_key != nullptr) {
      if (!first) out.push_back(',');
      out += extra_key;
      out += "=\"";
      out += extra_value;
      out.push_back('"');
    }
    out.push_back('}');
  }
  out.push_back(' ');
  append_number(out, value);
  out.push_back('\n');
}

}  // namespace

Histogram::Histogram(const std::vector<double>& bounds)
    : bounds_(bounds), buckets_(std::make_unique<std::atomic<uint64_t>[]>(bounds.size() + 1)) {
  if (!std::is_sorted(bounds_.begin(), bounds_.end()))
    throw std::invalid_argument("histogram bounds must be sorted");
  for (std::size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) {
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);
  buckets_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  if (v > 0) sum_micro_.fetch_add(static_cast<uint64_t>(std::llround(v * 1e6)), std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t acc = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    acc += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = acc;
  }
  s.count = acc;
  s.sum = static_cast<double>(sum_micro_.load(std::memory_order_relaxed)) / 1e6;
  return s;
}

double Histogram::quantile(double q) const {
  const auto s = snapshot();
  if (s.count == 0) return 0;
  const double rank = q * static_cast<double>(s.count);
  for (std::size_t i = 0; i < s.cumulative.size(); ++i) {
    if (static_cast<double>(s.cumulative[i]) >= rank) {
      if (i == bounds_.size()) return bounds_.empty() ? 0 : bounds_.back();  // beyond the last bound
      const double lo = i == 0 ? 0 : bounds_[i - 1];
      const double below = i == 0 ? 0 : static_cast<double>(s.cumulative[i - 1]);
      const double in_bucket = static_cast<double>(s.cumulative[i]) - below;
      if (in_bucket <= 0) return bounds_[i];
      return lo + (bounds_[i] - lo) * (rank - below) / in_bucket;
    }
  }
  return bounds_.empty() ? 0 : bounds_.back();
}

const std::vector<double>& latency_buckets() {
  static const std::vector<double> b{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                     0.25,   0.5,   1,      2.5,   5,    10,    30,   60};
  return b;
}

const std::vector<double>& size_buckets() {
  static const std::vector<double> b{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000};
  return b;
}

Registry::Family& Registry::family(std::string_view name, Type type, std::string_view help) {
  if (auto it = families_.find(name); it != families_.end()) {
    if (it->second.type != type)
      throw std::invalid_argument("metric " + std::string(name) + " has another type");
    return it->second;
  }
  if (!valid_name(name)) throw std::invalid_argument("invalid metric name: " + std::string(name));
  return families_.try_emplace(std::string(name), Family{type, std::string(help), {}, {}}).first->second;
}

namespace {

std::size_t hash_labels(const Labels& labels) {
  std::size_t h = labels.size();
  const auto mix = [&h](const std::string& s) {
    h ^= std::hash<std::string>{}(s) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  };
  for (const auto& [k, v] : labels) {
    mix(k);
    mix(v);
  }
  return h;
}

}  // namespace

// The first series with these labels, or nullptr.
Registry::Series* Registry::find(Family& f, const Labels& labels) {
  const auto [from, to] = f.index.equal_range(hash_labels(labels));
  Series* first = nullptr;
  for (auto it = from; it != to; ++it) {
    Series& s = f.series[it->second];
    if (s.labels == labels && (first == nullptr || &s < first)) first = &s;
  }
  if (first != nullptr) return first;
  for (const auto& [k, v] : labels) {
    if (!valid_name(k) || k.find(':') != std::string::npos)
      throw std::invalid_argument("invalid label name: " + k);
  }
  return nullptr;
}

void Registry::add(Family& f, Series s) {
  f.index.emplace(hash_labels(s.labels), f.series.size());
  f.series.push_back(std::move(s));
}

Counter& Registry::counter(std::string_view name, std::string_view help, Labels labels) {
  std::lock_guard lock(mu_);
  auto& f = family(name, Type::counter, help);
  if (auto* s = find(f, labels)) return *s->counter;
  auto& c = counters_.emplace_back();
  add(f, Series{std::move(labels), &c, nullptr, nullptr, nullptr});
  return c;
}

Gauge& Registry::gauge(std::string_view name, std::string_view help, Labels labels) {
  std::lock_guard lock(mu_);
  auto& f = family(name, Type::gauge, help);
  if (auto* s = find(f, labels); s != nullptr && s->gauge != nullptr) return *s->gauge;
  auto& g = gauges_.emplace_back();
  add(f, Series{std::move(labels), nullptr, &g, nullptr, nullptr});
  return g;
}

Histogram& Registry::histogram(std::string_view name, std::string_view help, Labels labels,
                               const std::vector<double>& bounds) {
  std::lock_guard lock(mu_);
  auto& f = family(name, Type::histogram, help);
  if (auto* s = find(f, labels)) return *s->histogram;
  auto& h = histograms_.emplace_back(bounds);
  add(f, Series{std::move(labels), nullptr, nullptr, &h, nullptr});
  return h;
}

void Registry::gauge_fn(std::string_view name, std::string_view help, Labels labels,
                        std::function<double()> read) {
  std::lock_guard lock(mu_);
  auto& f = family(name, Type::gauge, help);
  if (auto* s = find(f, labels)) {
    s->read = std::move(read);
    s->gauge = nullptr;
    return;
  }
  add(f, Series{std::move(labels), nullptr, nullptr, nullptr, std::move(read)});
}

std::string Registry::render() const {
  std::lock_guard lock(mu_);
  std::string out;
  out.reserve(families_.size() * 256);
  for (const auto& [name, f] : families_) {
    if (f.series.empty()) continue;
    out += "# HELP ";
    out += name;
    out.push_back(' ');
    append_escaped(out, f.help, false);
    out += "\n# TYPE ";
    out += name;
    out += f.type == Type::counter ? " counter\n" : f.type == Type::gauge ? " gauge\n" : " histogram\n";
    for (const auto& s : f.series) {
      if (s.counter != nullptr) {
        append_sample(out, name, s.labels, nullptr, {}, static_cast<double>(s.counter->value()));
      } else if (s.gauge != nullptr) {
        append_sample(out, name, s.labels, nullptr, {}, static_cast<double>(s.gauge->value()));
      } else if (s.read) {
        append_sample(out, name, s.labels, nullptr, {}, s.read());
      } else if (s.histogram != nullptr) {
        const auto snap = s.histogram->snapshot();
        const auto& bounds = s.histogram->bounds();
        std::string le;
        for (std::size_t i = 0; i <= bounds.size(); ++i) {
          le.clear();
          if (i == bounds.size()) {
            le = "+Inf";
          } else {
            append_number(le, bounds[i]);
          }
          append_sample(out, name + "_bucket", s.labels, "le", le, static_cast<double>(snap.cumulative[i]));
        }
        append_sample(out, name + "_sum", s.labels, nullptr, {}, snap.sum);
        append_sample(out, name + "_count", s.labels, nullptr, {}, static_cast<double>(snap.count));
      }
    }
  }
  return out;
}

Registry& Registry::global() {
  static Registry r;
  return r;
}

}  // namespace evr::metrics
