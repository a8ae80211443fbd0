// filebuilder: SHA-256 over a body or a string (OpenSSL; component filebuilder::crypto).
#pragma once

#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "filebuilder/concepts.hpp"

namespace filebuilder {

namespace detail {

struct EvpContextDeleter {
  void operator()(EVP_MD_CTX* context) const noexcept { EVP_MD_CTX_free(context); }
};

inline std::string to_hex(const unsigned char* bytes, std::size_t size) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string hex(size * 2, '0');
  for (std::size_t i = 0; i < size; ++i) {
    hex[2 * i] = digits[bytes[i] >> 4];
    hex[2 * i + 1] = digits[bytes[i] & 0xF];
  }
  return hex;
}

}  // namespace detail

/// Incremental SHA-256.
class Sha256 {
 public:
  Sha256() : context_(EVP_MD_CTX_new()) {
    if (context_) EVP_DigestInit_ex(context_.get(), EVP_sha256(), nullptr);
  }
  void update(std::string_view bytes) {
    if (context_) EVP_DigestUpdate(context_.get(), bytes.data(), bytes.size());
  }
  /// Lowercase hex of the digest; empty if OpenSSL failed.
  [[nodiscard]] std::string hex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    if (!context_ || EVP_DigestFinal_ex(context_.get(), digest, &size) != 1) return {};
    return detail::to_hex(digest, size);
  }

 private:
  std::unique_ptr<EVP_MD_CTX, detail::EvpContextDeleter> context_;
};

[[nodiscard]] inline std::string sha256_hex(std::string_view bytes) {
  Sha256 hash;
  hash.update(bytes);
  return hash.hex();
}

/// SHA-256 of a whole body, read from offset 0; empty if the body cannot be read.
[[nodiscard]] inline std::string sha256_hex(BodyReader& body) {
  Sha256 hash;
  std::array<char, 64 * 1024> buffer;
  for (std::uint64_t offset = 0; offset < body.size();) {
    Result<std::size_t> read = body.read_at(offset, buffer);
    if (!read.ok() || read.value_unsafe() == 0) return {};
    hash.update(std::string_view(buffer.data(), read.value_unsafe()));
    offset += read.value_unsafe();
  }
  return hash.hex();
}

}  // namespace filebuilder
