// filebuilder: BeastUploader, the Boost.Beast Uploader (target filebuilder::beast).
//
// The same guarantees as CurlUploader, without libcurl: header-only
// (Boost.Beast and Boost.Asio, TLS through OpenSSL), so a Lambda zip ships
// fewer shared libraries. Every job of one upload() call runs concurrently on
// one io_context, driven by the calling thread; keep-alive connections are
// pooled per scheme, host and port (at most max_host_connections each) and
// reused across batches.
//
// What is sent: HTTP/1.1 PUT with Content-Length, no Content-Type, no Expect,
// the body streamed from BodyReader::read_at in 64 KiB pieces, never joined.
// A name is resolved once per connection; unless the host is allow-listed,
// every resolved address must be public (EndpointPolicy::is_public_address)
// or the job is refused, and only the checked addresses are connected to, so
// no second lookup can rebind the name. Redirects are never followed, no
// proxy is used, TLS verifies the peer and its host name (SNI set), trusting
// the system's CAs (or ca_bundle) plus ca_file. The verdicts (what is retried,
// the backoff, the messages) are upload/retry.hpp's, shared with CurlUploader.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "filebuilder/concepts.hpp"
#include "filebuilder/error.hpp"
#include "filebuilder/upload/ca.hpp"
#include "filebuilder/upload/options.hpp"
#include "filebuilder/upload/policy.hpp"
#include "filebuilder/upload/retry.hpp"

namespace filebuilder {

/// BeastUploader takes the options every uploader takes (upload/options.hpp).
using BeastUploaderOptions = UploaderOptions;

namespace detail {
class BeastState;
}

class BeastUploader {
 public:
  /// Throws std::runtime_error when options.ca_file or options.ca_bundle
  /// cannot be read or hold no certificate, or an options.resolve entry is
  /// malformed. A moved-from uploader may only be destroyed or assigned to.
  explicit BeastUploader(UploaderOptions options = {});
  ~BeastUploader();
  BeastUploader(BeastUploader&&) noexcept;
  BeastUploader& operator=(BeastUploader&&) noexcept;
  BeastUploader(const BeastUploader&) = delete;
  BeastUploader& operator=(const BeastUploader&) = delete;

  /// Runs every job concurrently and returns when each has its final status.
  /// Each job's result fields are reset first. Not for concurrent calls.
  void upload(std::span<UploadJob> jobs);

  [[nodiscard]] const UploaderOptions& options() const noexcept;

 private:
  std::unique_ptr<detail::BeastState> state_;
};

static_assert(Uploader<BeastUploader>);

// ---------------------------------------------------------------------------
// Implementation

namespace detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;

using BeastPlainStream = beast::tcp_stream;
using BeastTlsStream = beast::ssl_stream<beast::tcp_stream>;

/// One keep-alive connection, plain or TLS.
struct BeastConnection {
  BeastConnection(asio::io_context& io) : stream(std::in_place_type<BeastPlainStream>, io) {}
  BeastConnection(asio::io_context& io, asio::ssl::context& tls)
      : stream(std::in_place_type<BeastTlsStream>, io, tls) {}

  [[nodiscard]] beast::tcp_stream& tcp() noexcept {
    return std::visit([](auto& s) -> beast::tcp_stream& { return beast::get_lowest_layer(s); },
                      stream);
  }
  void close() noexcept {
    beast::error_code ignored;
    tcp().socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    tcp().socket().close(ignored);
  }

  std::variant<BeastPlainStream, BeastTlsStream> stream;
  beast::flat_buffer buffer;  // bytes read past a response stay for the next
  std::vector<char> piece;    // the body piece being written
};

struct BeastTransfer;

/// The connections of one scheme, host and port.
struct BeastHostPool {
  std::vector<std::unique_ptr<BeastConnection>> idle;
  std::size_t open = 0;                // connections that exist: idle, in use or opening
  std::deque<BeastTransfer*> waiting;  // transfers that wait for a connection
};

/// The state of one job across its attempts.
struct BeastTransfer {
  explicit BeastTransfer(asio::io_context& io) : timer(io) {}

  UploadJob* job = nullptr;
  std::string host;       // as written; IPv6 without brackets (the TLS name, SNI)
  std::string authority;  // the Host header: the URL's host and given port, as written
  std::string target;     // path and query, as written ("/" when empty)
  std::string service;    // the port, for the resolver
  std::uint16_t port = 0;
  bool tls = false;
  bool host_allowed = false;
  BeastHostPool* pool = nullptr;

  std::unique_ptr<BeastConnection> connection;
  bool reused = false;  // the connection served an earlier request
  std::chrono::steady_clock::time_point deadline{};
  std::uint64_t offset = 0;
  std::string header;  // the request's header, sent with the first piece of the body
  bool wrote = false;  // some of the request was sent on this connection
  std::optional<http::response_parser<http::string_body>> parser;
  std::optional<std::string> write_error;  // the body could not all be sent
  AttemptResult result;
  asio::steady_timer timer;  // the wait before a retry
  bool done = false;
};

/// A pinned resolution ("HOST:PORT:ADDRESS[,ADDRESS...]").
struct BeastPin {
  std::string host;
  std::uint16_t port = 0;
  std::vector<asio::ip::address> addresses;
};

[[nodiscard]] inline BeastPin parse_pin(std::string_view entry) {
  const auto bad = [&] {
    return std::runtime_error("resolve: malformed entry '" + std::string(entry) + "'");
  };
  BeastPin pin;
  std::string_view rest = entry;
  if (!rest.empty() && rest.front() == '[') {
    const std::size_t close = rest.find(']');
    if (close == std::string_view::npos) throw bad();
    pin.host = std::string(rest.substr(1, close - 1));
    rest.remove_prefix(close + 1);
    if (rest.empty() || rest.front() != ':') throw bad();
    rest.remove_prefix(1);
  } else {
    const std::size_t colon = rest.find(':');
    if (colon == std::string_view::npos || colon == 0) throw bad();
    pin.host = std::string(rest.substr(0, colon));
    rest.remove_prefix(colon + 1);
  }
  const std::size_t colon = rest.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 5) throw bad();
  unsigned port = 0;
  for (const char c : rest.substr(0, colon)) {
    if (c < '0' || c > '9') throw bad();
    port = port * 10 + static_cast<unsigned>(c - '0');
  }
  if (port == 0 || port > 65535) throw bad();
  pin.port = static_cast<std::uint16_t>(port);
  rest.remove_prefix(colon + 1);
  while (!rest.empty()) {
    const std::size_t comma = rest.find(',');
    std::string_view text = rest.substr(0, comma);
    if (text.size() >= 2 && text.front() == '[' && text.back() == ']')
      text = text.substr(1, text.size() - 2);
    beast::error_code error;
    const asio::ip::address address = asio::ip::make_address(std::string(text), error);
    if (error) throw bad();
    pin.addresses.push_back(address);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (pin.addresses.empty()) throw bad();
  return pin;
}

/// The seconds of a Retry-After header, 0 when absent or not a number of seconds.
[[nodiscard]] inline std::chrono::seconds retry_after_seconds(std::string_view value) noexcept {
  if (value.empty() || value.size() > 9) return std::chrono::seconds{0};
  std::int64_t seconds = 0;
  for (const char c : value) {
    if (c < '0' || c > '9') return std::chrono::seconds{0};
    seconds = seconds * 10 + (c - '0');
  }
  return std::chrono::seconds{seconds};
}

class BeastState {
 public:
  using SteadyClock = std::chrono::steady_clock;
  static constexpr std::size_t body_piece = 64 * 1024;
  static constexpr std::uint64_t response_limit = 1024 * 1024;  // an error page, not a file

  explicit BeastState(UploaderOptions options)
      : options_(std::move(options)), tls_(asio::ssl::context::tls_client), retry_(options_) {
    SSL_CTX_set_min_proto_version(tls_.native_handle(), TLS1_2_VERSION);
    tls_.set_verify_mode(asio::ssl::verify_peer);
    beast::error_code error;
    if (options_.ca_bundle.empty()) {
      tls_.set_default_verify_paths(error);
      if (error) throw std::runtime_error("cannot load the system's CA certificates");
    } else {
      tls_.load_verify_file(options_.ca_bundle, error);
      if (error) throw std::runtime_error("ca_bundle: cannot read '" + options_.ca_bundle + "'");
    }
    if (!options_.ca_file.empty()) {
      if (!add_certificates(SSL_CTX_get_cert_store(tls_.native_handle()),
                            read_pem_certificates(options_.ca_file)))
        throw std::runtime_error("ca_file: cannot add the certificates of '" + options_.ca_file +
                                 "'");
    }
    for (const std::string& entry : options_.resolve) pins_.push_back(parse_pin(entry));
  }
  BeastState(const BeastState&) = delete;
  BeastState& operator=(const BeastState&) = delete;

  [[nodiscard]] const UploaderOptions& options() const noexcept { return options_; }

  void upload(std::span<UploadJob> jobs);

 private:
  void start_attempt(BeastTransfer& t);
  void with_connection(BeastTransfer& t);
  void open_connection(BeastTransfer& t);
  void connect(BeastTransfer& t, std::vector<asio::ip::tcp::endpoint> endpoints);
  void send_request(BeastTransfer& t);
  void send_body(BeastTransfer& t);
  void read_response(BeastTransfer& t);
  void on_response(BeastTransfer& t, beast::error_code error);
  void fail(BeastTransfer& t, std::string message);
  void end_attempt(BeastTransfer& t, bool keep_connection);
  void release(BeastTransfer& t, bool keep_connection);
  [[nodiscard]] bool stale(const BeastTransfer& t, beast::error_code error) const;
  void retry_on_new_connection(BeastTransfer& t);

  [[nodiscard]] std::string error_text(beast::error_code error) const {
    if (error == beast::error::timeout) return "timed out";
    return error.message();
  }
  [[nodiscard]] SteadyClock::time_point connect_deadline(const BeastTransfer& t) const {
    return std::min(t.deadline, SteadyClock::now() + options_.connect_timeout);
  }
  template <typename F>
  static void visit(BeastTransfer& t, F&& f) {
    std::visit(std::forward<F>(f), t.connection->stream);
  }

  UploaderOptions options_;
  asio::io_context io_;
  asio::ssl::context tls_;
  RetryPolicy retry_;
  std::vector<BeastPin> pins_;
  std::map<std::string, BeastHostPool, std::less<>> pools_;  // "scheme://host:port"
  SteadyClock::time_point began_{};
  std::size_t unfinished_ = 0;
};

inline void BeastState::upload(std::span<UploadJob> jobs) {
  began_ = SteadyClock::now();
  std::deque<BeastTransfer> transfers;  // stable addresses: handlers hold them
  unfinished_ = 0;
  for (UploadJob& job : jobs) {
    BeastTransfer& t = transfers.emplace_back(io_);
    t.job = &job;
    const std::optional<Url> url = admit_job(job, options_.policy);
    if (!url) {
      t.done = true;
      continue;
    }
    t.host.assign(url->host);
    t.tls = url->scheme.size() == 5;  // "https", any case (parse_url checked it)
    t.port = url->port;
    t.service = std::to_string(url->port);
    const bool ipv6 = url->host.find(':') != std::string_view::npos;
    t.authority = ipv6 ? "[" + t.host + "]" : t.host;
    if (url->port_given) t.authority += ":" + t.service;
    t.target = url->path_and_query.empty() ? std::string("/") : std::string(url->path_and_query);
    if (t.target.front() == '?') t.target.insert(0, 1, '/');
    t.host_allowed = options_.policy.host_allowed(url->host, url->port);
    std::string key = (t.tls ? "https://" : "http://") + t.authority + ":" + t.service;
    t.pool = &pools_[std::move(key)];
    ++unfinished_;
  }
  try {
    io_.restart();  // the last run() ran out of work, which stops the context
    for (BeastTransfer& t : transfers)
      if (!t.done) start_attempt(t);
    io_.run();
  } catch (...) {
    // A handler threw (out of memory): drop every connection in use, let the
    // aborted operations finish, and leave the jobs not settled as retryable.
    for (BeastTransfer& t : transfers) {
      if (!t.done) {
        t.job->status = UploadStatus::retryable;
        t.job->error = ErrorCode::upload_failed;
        t.job->message = "upload interrupted";
      }
      t.done = true;
      t.timer.cancel();
      if (t.connection) t.connection->close();
    }
    io_.restart();
    while (true) {
      try {
        io_.run();
        break;
      } catch (...) {
      }
    }
    pools_.clear();  // the counts no longer hold: start afresh
    throw;
  }
}

inline void BeastState::start_attempt(BeastTransfer& t) {
  if (t.pool->idle.empty() &&
      t.pool->open >= static_cast<std::size_t>(std::max(1L, options_.max_host_connections))) {
    t.pool->waiting.push_back(&t);
    return;
  }
  with_connection(t);
}

// Starts t's attempt now: on an idle connection of its pool, else on a new one.
inline void BeastState::with_connection(BeastTransfer& t) {
  ++t.job->attempts;
  t.deadline = SteadyClock::now() + options_.total_timeout;
  t.result = {};
  if (!t.pool->idle.empty()) {
    t.connection = std::move(t.pool->idle.back());
    t.pool->idle.pop_back();
    t.reused = true;
    send_request(t);
    return;
  }
  ++t.pool->open;
  open_connection(t);
}

inline void BeastState::open_connection(BeastTransfer& t) {
  t.reused = false;
  t.connection =
      t.tls ? std::make_unique<BeastConnection>(io_, tls_) : std::make_unique<BeastConnection>(io_);
  for (const BeastPin& pin : pins_) {
    if (pin.port == t.port && same_host(pin.host, t.host)) {
      std::vector<asio::ip::tcp::endpoint> endpoints;
      for (const asio::ip::address& address : pin.addresses)
        endpoints.emplace_back(address, t.port);
      connect(t, std::move(endpoints));
      return;
    }
  }
  beast::error_code not_literal;
  const asio::ip::address literal = asio::ip::make_address(t.host, not_literal);
  if (!not_literal) {  // an IP literal: nothing to look up
    connect(t, {asio::ip::tcp::endpoint(literal, t.port)});
    return;
  }
  // A resolver per lookup: getaddrinfo runs on Asio's resolver thread.
  auto resolver = std::make_shared<asio::ip::tcp::resolver>(io_);
  resolver->async_resolve(
      t.host, t.service, asio::ip::tcp::resolver::numeric_service,
      [this, &t, resolver](beast::error_code error, asio::ip::tcp::resolver::results_type found) {
        if (t.done) return;
        if (error) {
          fail(t, "cannot resolve " + t.host + ": " + error.message());
          return;
        }
        std::vector<asio::ip::tcp::endpoint> endpoints;
        for (const auto& entry : found) endpoints.push_back(entry.endpoint());
        connect(t, std::move(endpoints));
      });
}

inline void BeastState::connect(BeastTransfer& t, std::vector<asio::ip::tcp::endpoint> endpoints) {
  if (!t.host_allowed) {
    // Every address must be allowed, not only the one that would answer first.
    for (const asio::ip::tcp::endpoint& endpoint : endpoints) {
      if (!EndpointPolicy::is_public_address(endpoint.data())) {
        t.result.refused_address = endpoint.address().to_string();
        fail(t, "connecting to " + *t.result.refused_address + " is not allowed");
        return;
      }
    }
  }
  if (endpoints.empty()) {
    fail(t, "cannot resolve " + t.host + ": no address");
    return;
  }
  t.connection->tcp().expires_at(connect_deadline(t));
  t.connection->tcp().async_connect(
      endpoints, [this, &t](beast::error_code error, const asio::ip::tcp::endpoint&) {
        if (t.done) return;
        if (error) {
          fail(t, "cannot connect to " + t.authority + ": " + error_text(error));
          return;
        }
        // Without it, Nagle holds the end of each request until the server's
        // delayed ACK: about 40 ms per PUT.
        beast::error_code ignored;
        t.connection->tcp().socket().set_option(asio::ip::tcp::no_delay(true), ignored);
        if (!t.tls) {
          send_request(t);
          return;
        }
        auto& stream = std::get<BeastTlsStream>(t.connection->stream);
        // SNI for names only (RFC 6066 has no IP literals); the certificate
        // must name the host either way.
        if (!classify_host(t.host).is_literal &&
            SSL_set_tlsext_host_name(stream.native_handle(), t.host.c_str()) != 1) {
          fail(t, "cannot set the TLS server name");
          return;
        }
        stream.set_verify_mode(asio::ssl::verify_peer);
        stream.set_verify_callback(asio::ssl::host_name_verification(t.host));
        t.connection->tcp().expires_at(connect_deadline(t));
        stream.async_handshake(asio::ssl::stream_base::client, [this, &t](beast::error_code e) {
          if (t.done) return;
          if (e) {
            fail(t, "TLS handshake with " + t.authority + " failed: " + error_text(e));
            return;
          }
          send_request(t);
        });
      });
}

inline void BeastState::send_request(BeastTransfer& t) {
  t.offset = 0;
  t.wrote = false;
  t.write_error.reset();
  t.parser.reset();
  // The header by hand: parse_url let no space, control character or
  // backslash into the target or the host, so both go as written.
  t.header.assign("PUT ");
  t.header += t.target;
  t.header += " HTTP/1.1\r\nHost: ";
  t.header += t.authority;
  t.header += "\r\nUser-Agent: filebuilder\r\nContent-Length: ";
  t.header += std::to_string(t.job->body->size());
  t.header += "\r\n\r\n";
  send_body(t);
}

// Writes the next piece of the body, the first one together with the header:
// one write, so that a small request leaves in one segment.
inline void BeastState::send_body(BeastTransfer& t) {
  const std::uint64_t total = t.job->body->size();
  if (t.wrote && t.offset >= total) {
    read_response(t);
    return;
  }
  // The connection's buffer: its previous piece's write has completed.
  std::vector<char>& piece = t.connection->piece;
  if (piece.size() != body_piece) piece.resize(body_piece);
  std::size_t copied = 0;
  if (t.offset < total) {
    ErrorCode error = ErrorCode::ok;
    try {
      error =
          t.job->body->read_at(t.offset, std::span<char>(piece.data(), piece.size())).get(copied);
    } catch (...) {
      t.result.read_error = "body read failed: exception";
    }
    if (!t.result.read_error && error != ErrorCode::ok)
      t.result.read_error = "body read failed: " + std::string(error_code_name(error));
    if (!t.result.read_error && (copied == 0 || copied > piece.size()))
      t.result.read_error = "body read failed: short body";
    if (t.result.read_error) {
      end_attempt(t, false);
      return;
    }
    t.offset += copied;
  }
  const std::array<asio::const_buffer, 2> buffers{
      t.wrote ? asio::const_buffer() : asio::buffer(t.header), asio::buffer(piece.data(), copied)};
  t.connection->tcp().expires_at(t.deadline);
  visit(t, [this, &t, buffers](auto& stream) {
    asio::async_write(stream, buffers, [this, &t](beast::error_code e, std::size_t) {
      if (t.done) return;
      if (e) {
        if (stale(t, e)) return retry_on_new_connection(t);
        t.write_error = error_text(e);
        return read_response(t);  // a refusal may have come first
      }
      t.wrote = true;
      send_body(t);
    });
  });
}

inline void BeastState::read_response(BeastTransfer& t) {
  auto& parser = t.parser.emplace();
  parser.body_limit(response_limit);
  t.connection->tcp().expires_at(t.deadline);
  visit(t, [this, &t](auto& stream) {
    http::async_read(stream, t.connection->buffer, *t.parser,
                     [this, &t](beast::error_code error, std::size_t) {
                       if (t.done) return;
                       on_response(t, error);
                     });
  });
}

inline void BeastState::on_response(BeastTransfer& t, beast::error_code error) {
  http::response_parser<http::string_body>& parser = *t.parser;
  if (error && !parser.is_header_done()) {
    if (!t.write_error && stale(t, error)) return retry_on_new_connection(t);
    fail(t, t.write_error ? "cannot send the body: " + *t.write_error
                          : "no response from " + t.authority + ": " + error_text(error));
    return;
  }
  const auto& response = parser.get();
  t.result.http_status = static_cast<long>(response.result_int());
  const auto retry_after = response[http::field::retry_after];
  t.result.retry_after =
      retry_after_seconds(std::string_view(retry_after.data(), retry_after.size()));
  // The response was read in full after the whole request was sent: only
  // then is the connection fit for another request.
  const bool complete = !error && !t.write_error;
  t.result.exchanged = complete;
  if (!complete) {
    t.result.transport_error = t.write_error ? "cannot send the body: " + *t.write_error
                                             : "response cut short: " + error_text(error);
  }
  end_attempt(t, complete && response.keep_alive());
}

// A reused connection that the server had already closed (its keep-alive
// timeout) fails on the first write, or before any byte of a response: that
// is not an attempt of the job's, and the request goes again on a new
// connection.
inline bool BeastState::stale(const BeastTransfer& t, beast::error_code error) const {
  if (!t.reused || (t.parser && t.parser->got_some())) return false;
  if (!t.parser && t.wrote) return false;  // failed in the middle of the body
  return error == http::error::end_of_stream || error == asio::error::eof ||
         error == asio::error::connection_reset || error == asio::error::broken_pipe ||
         error == asio::error::connection_aborted || error == asio::ssl::error::stream_truncated;
}

inline void BeastState::retry_on_new_connection(BeastTransfer& t) {
  t.connection->close();
  t.connection.reset();
  open_connection(t);  // the pool's count is unchanged: this replaces the stale one
}

inline void BeastState::fail(BeastTransfer& t, std::string message) {
  t.result.exchanged = false;
  t.result.transport_error = std::move(message);
  end_attempt(t, false);
}

inline void BeastState::end_attempt(BeastTransfer& t, bool keep_connection) {
  release(t, keep_connection);
  std::chrono::milliseconds delay{0};
  if (retry_.settle(*t.job, std::move(t.result), delay)) {
    t.done = true;
    t.job->elapsed = SteadyClock::now() - began_;
    --unfinished_;
    return;
  }
  t.timer.expires_after(delay);
  t.timer.async_wait([this, &t](beast::error_code error) {
    if (error || t.done) return;
    start_attempt(t);
  });
}

// Gives t's connection back to its pool, or closes it, and hands a waiting
// transfer of the pool the connection or its slot.
inline void BeastState::release(BeastTransfer& t, bool keep_connection) {
  BeastHostPool& pool = *t.pool;
  if (keep_connection) {
    pool.idle.push_back(std::move(t.connection));
  } else {
    t.connection->close();
    t.connection.reset();
    --pool.open;
  }
  if (!pool.waiting.empty()) {
    BeastTransfer& next = *pool.waiting.front();
    pool.waiting.pop_front();
    with_connection(next);
  }
}

}  // namespace detail

inline BeastUploader::BeastUploader(UploaderOptions options)
    : state_(std::make_unique<detail::BeastState>(std::move(options))) {}
inline BeastUploader::~BeastUploader() = default;
inline BeastUploader::BeastUploader(BeastUploader&&) noexcept = default;
inline BeastUploader& BeastUploader::operator=(BeastUploader&&) noexcept = default;

inline void BeastUploader::upload(std::span<UploadJob> jobs) {
  state_->upload(jobs);
}

inline const UploaderOptions& BeastUploader::options() const noexcept {
  return state_->options();
}

}  // namespace filebuilder
