#include "evrouter/common/tls_files.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace evr::tls_files {
namespace {

struct Close {
  void operator()(std::FILE* f) const { std::fclose(f); }
  void operator()(X509* c) const { X509_free(c); }
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

// OpenSSL's reason for the last failure, else `fallback`; clears the error queue either way.
std::string reason(const char* fallback) {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return fallback;
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

std::unique_ptr<std::FILE, Close> open(const std::string& path, std::string& problem) {
  std::unique_ptr<std::FILE, Close> f(std::fopen(path.c_str(), "rb"));
  if (!f) problem = std::strerror(errno);
  return f;
}

std::unique_ptr<X509, Close> certificate(const std::string& path, std::string& problem) {
  auto f = open(path, problem);
  if (!f) return nullptr;
  std::unique_ptr<X509, Close> c(PEM_read_X509(f.get(), nullptr, nullptr, nullptr));
  if (!c) problem = "no PEM certificate: " + reason("unreadable");
  return c;
}

std::unique_ptr<EVP_PKEY, Close> private_key(const std::string& path, std::string& problem) {
  auto f = open(path, problem);
  if (!f) return nullptr;
  // An empty passphrase: an encrypted key fails here rather than prompting on the terminal.
  std::unique_ptr<EVP_PKEY, Close> k(PEM_read_PrivateKey(f.get(), nullptr, nullptr, const_cast<char*>("")));
  if (!k) problem = "no unencrypted PEM private key: " + reason("unreadable");
  return k;
}

}  // namespace

bool readable_certificate(const std::string& path, std::string& problem) {
  return certificate(path, problem) != nullptr;
}

bool readable_private_key(const std::string& path, std::string& problem) {
  return private_key(path, problem) != nullptr;
}

bool key_matches(const std::string& cert_path, const std::string& key_path, std::string& problem) {
  auto c = certificate(cert_path, problem);
  auto k = c ? private_key(key_path, problem) : nullptr;
  if (!c || !k) return false;
  if (X509_check_private_key(c.get(), k.get()) != 1) {
    problem = reason("key values mismatch");
    return false;
  }
  return true;
}

}  // namespace evr::tls_files
