// filebuilder: extra CA certificates (UploaderOptions::ca_file), read once and
// added to the OpenSSL trust store of every uploader's TLS connections.
#pragma once

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace filebuilder::detail {

struct X509Deleter {
  void operator()(X509* certificate) const noexcept { X509_free(certificate); }
};
using X509Pointer = std::unique_ptr<X509, X509Deleter>;

/// Every certificate of a PEM file (other PEM blocks are skipped). Throws
/// std::runtime_error when the file cannot be read or holds none.
[[nodiscard]] inline std::vector<X509Pointer> read_pem_certificates(const std::string& path) {
  struct BioDeleter {
    void operator()(BIO* bio) const noexcept { BIO_free(bio); }
  };
  const std::unique_ptr<BIO, BioDeleter> bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) {
    ERR_clear_error();
    throw std::runtime_error("ca_file: cannot read '" + path + "'");
  }
  std::vector<X509Pointer> certificates;
  while (X509* certificate = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr))
    certificates.emplace_back(certificate);
  ERR_clear_error();  // the end of the file is reported as an error
  if (certificates.empty())
    throw std::runtime_error("ca_file: no PEM certificate in '" + path + "'");
  return certificates;
}

/// Adds `certificates` to `store`, so that they are trusted besides what it
/// holds. A certificate already there is fine (a store may be shared between
/// connections). False when OpenSSL refused one.
[[nodiscard]] inline bool add_certificates(X509_STORE* store,
                                           const std::vector<X509Pointer>& certificates) noexcept {
  if (store == nullptr) return false;
  for (const X509Pointer& certificate : certificates) {
    if (X509_STORE_add_cert(store, certificate.get()) != 1) {
      const unsigned long error = ERR_peek_last_error();
      if (ERR_GET_REASON(error) != X509_R_CERT_ALREADY_IN_HASH_TABLE) {
        ERR_clear_error();
        return false;
      }
    }
  }
  ERR_clear_error();
  return true;
}

}  // namespace filebuilder::detail
