#include "evrouter/schema/redaction.h"

#include <algorithm>
#include <cctype>

namespace evr::schema {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool is_path(std::string_view p) {
  return p.find('.') != std::string_view::npos || p.find("[]") != std::string_view::npos;
}

}  // namespace

const std::vector<std::string>& default_redactions() {
  static const std::vector<std::string> list = {
      // contact details
      "*email*", "*phone*", "fax",
      // names of people
      "name", "first_name", "last_name", "full_name", "customer_name", "billing_name", "shipping_name",
      // address lines and precise location
      "address1", "address2", "street*", "zip", "postal_code", "postcode", "latitude", "longitude",
      // credentials
      "*token*", "*password*", "*secret*", "*api_key*", "apikey", "authorization", "*credential*",
      "*signature*",
      // network identity and payment details
      "*_ip", "ip", "ip_address", "*card_number*", "credit_card_*", "iban", "*ssn*", "birth*"};
  return list;
}

Redaction::Redaction(const std::vector<std::string>& patterns) {
  for (const auto& p : patterns) {
    if (p.empty()) continue;
    if (is_path(p)) {
      paths_.push_back(p);
    } else {
      keys_.push_back(lower(p));
    }
  }
}

bool glob_matches(std::string_view pattern, std::string_view text) {
  // Iterative glob with backtracking to the last '*'.
  std::size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(text[t])));
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && pattern[p] == c) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool Redaction::matches(std::string_view path, std::string_view key) const {
  for (const auto& p : paths_) {
    if (p == path) return true;
  }
  if (key.empty()) return false;
  for (const auto& k : keys_) {
    if (glob_matches(k, key)) return true;
  }
  return false;
}

}  // namespace evr::schema
