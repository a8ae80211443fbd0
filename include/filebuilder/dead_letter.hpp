// filebuilder: a dead-letter directory, so that rejected input is never lost.
//
// One JSON file per rejected record, `<utc-timestamp>-<record-id-sanitised>.json`:
//   {"record":"...","error":"bad_base64","message":"...","source":"lambda","data":"<base64 of the
//   raw record>"}
// A permanent upload refusal also keeps the assembled body beside it as `.bin`.
// Files are created 0600 in a 0700 directory.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <string>
#include <string_view>

#include "filebuilder/base64.hpp"
#include "filebuilder/concepts.hpp"
#include "filebuilder/detail/json_escape.hpp"
#include "filebuilder/detail/utc_time.hpp"
#include "filebuilder/error.hpp"

namespace filebuilder {

struct DeadLetter {
  std::string_view record;  // the record's id as logged
  ErrorCode error = ErrorCode::ok;
  std::string_view message;
  std::string_view source;       // "lambda", "firehose", "ndjson", ...
  std::string_view data;         // the raw record bytes (written as base64)
  std::string_view data_base64;  // or the raw record already in base64 (envelope data)
};

class DeadLetterBox {
 public:
  /// Creates `dir` (0700) if needed. Check ok() before use.
  explicit DeadLetterBox(std::filesystem::path dir) : dir_(std::move(dir)) {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    ok_ = !ec && ::chmod(dir_.c_str(), 0700) == 0;
  }

  [[nodiscard]] bool ok() const noexcept { return ok_; }
  [[nodiscard]] const std::filesystem::path& dir() const noexcept { return dir_; }

  /// Writes one dead letter (and `body` as .bin when given). Returns the path
  /// of the .json file, or an empty path when it could not be written.
  std::filesystem::path write(const DeadLetter& letter, BodyReader* body = nullptr) {
    std::string json = "{\"record\":";
    detail::append_json_string(json, letter.record);
    json += ",\"error\":";
    detail::append_json_string(json, error_code_name(letter.error));
    json += ",\"message\":";
    detail::append_json_string(json, letter.message);
    json += ",\"source\":";
    detail::append_json_string(json, letter.source);
    json += ",\"data\":\"";
    if (!letter.data_base64.empty())
      json += letter.data_base64;  // base64 alphabet only: no escaping needed
    else
      base64::encode_append(letter.data, json);
    json += "\"}\n";

    // 20261125T100000.123Z-<id>: sorts by time, and no ':' (unwelcome in some file systems).
    const std::string stem = detail::utc_timestamp("%Y%m%dT%H%M%S") + "-" + sanitise(letter.record);
    for (unsigned attempt = 0; attempt < 1000; ++attempt) {
      const std::string name = attempt == 0 ? stem : stem + "." + std::to_string(attempt);
      const std::filesystem::path path = dir_ / (name + ".json");
      const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd < 0) {
        if (errno == EEXIST) continue;
        return {};
      }
      const bool written = write_all(fd, json);
      ::close(fd);
      if (!written) return {};
      if (body != nullptr) write_body(dir_ / (name + ".bin"), *body);
      return path;
    }
    return {};
  }

 private:
  static bool write_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::write(fd, bytes.data(), bytes.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  static bool write_body(const std::filesystem::path& path, BodyReader& body) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    std::array<char, 64 * 1024> buffer;
    bool ok = true;
    for (std::uint64_t offset = 0; ok && offset < body.size();) {
      Result<std::size_t> read = body.read_at(offset, buffer);
      ok = read.ok() && read.value_unsafe() > 0 &&
           write_all(fd, std::string_view(buffer.data(), read.value_unsafe()));
      if (ok) offset += read.value_unsafe();
    }
    ::close(fd);
    return ok;
  }

  static std::string sanitise(std::string_view id) {
    std::string out;
    for (char c : id.substr(0, 120)) {
      const bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
      out += safe ? c : '_';
    }
    return out.empty() ? "record" : out;
  }

  std::filesystem::path dir_;
  bool ok_ = false;
};

}  // namespace filebuilder
