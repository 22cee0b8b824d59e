#pragma once
// PEM files for TLS servers: checked when the configuration is read (so a bad file is a file:line error,
// not a failed start), with OpenSSL's reason on failure.

#include <string>

namespace evr::tls_files {

// The file holds at least one PEM certificate.
bool readable_certificate(const std::string& path, std::string& problem);
// The file holds an unencrypted PEM private key.
bool readable_private_key(const std::string& path, std::string& problem);
// The key in `key_path` belongs to the first certificate in `cert_path`.
bool key_matches(const std::string& cert_path, const std::string& key_path, std::string& problem);

}  // namespace evr::tls_files
