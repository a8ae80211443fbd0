// filebuilder-lambda: the client of the AWS Lambda Runtime API over
// Boost.Beast, for the binary without libcurl (FILEBUILDER_LAMBDA_HTTP_BEAST,
// target filebuilder_lambda_beast). The same interface, behaviour and errors
// as the libcurl client (runtime_api.hpp): plain HTTP/1.1 to
// AWS_LAMBDA_RUNTIME_API, one keep-alive connection from one invocation to
// the next, synchronous (the runtime does one thing at a time). The paths,
// headers, replies and error texts are runtime_protocol.hpp's.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "runtime_protocol.hpp"

namespace filebuilder::lambda {

/// The posts (respond, fail_invocation, fail_init) are RuntimePosts'.
class RuntimeApi : public RuntimePosts<RuntimeApi> {
 public:
  /// `address` is AWS_LAMBDA_RUNTIME_API ("127.0.0.1:9001"). Nothing is
  /// connected yet (a bad address shows in the first request's error), as
  /// with the libcurl client.
  explicit RuntimeApi(std::string_view address)
      : authority_(address), url_base_("http://" + std::string(address)) {
    split_authority();
  }
  RuntimeApi(const RuntimeApi&) = delete;
  RuntimeApi& operator=(const RuntimeApi&) = delete;

  /// Waits for the next invocation (no timeout: Lambda freezes the process
  /// meanwhile). False, with the reason in `error`, when the API cannot be
  /// reached, answers other than 200, or names no request id: the runtime
  /// should then exit.
  bool next(Invocation& out, std::string& error) {
    out.clear();
    const std::string target = std::string(runtime::base_path) + std::string(runtime::next_path);
    namespace http = boost::beast::http;
    http::request<http::empty_body> request{http::verb::get, target, 11};
    long status = 0;
    if (!exchange(request, &out, out.event, status, error)) return false;
    return runtime::check_next_reply(status, out, error);
  }

 private:
  friend class RuntimePosts<RuntimeApi>;  // respond, fail_invocation, fail_init: over post()

  // The stream holds a reference to the io_context: declared first, destroyed last.
  boost::asio::io_context io_;

  using Stream = boost::beast::tcp_stream;
  using Parser = boost::beast::http::response_parser<boost::beast::http::string_body>;

  // Beast 1.74 spells string views its own way.
  static boost::beast::string_view field_name(std::string_view text) noexcept {
    return {text.data(), text.size()};
  }

  bool post(const std::string& path, std::string_view body, const std::string_view* error_type,
            std::string& error) {
    namespace http = boost::beast::http;
    const std::string target = std::string(runtime::base_path) + path;
    http::request<http::string_body> request{http::verb::post, target, 11};
    request.set(http::field::content_type, "application/json");
    if (error_type != nullptr)
      request.set(field_name(runtime::error_type_header), std::string(*error_type));
    request.body().assign(body);
    request.prepare_payload();  // Content-Length, never chunked: the API wants a length
    std::string answer;
    long status = 0;
    if (!exchange(request, nullptr, answer, status, error)) return false;
    return runtime::check_post_reply(path, status, answer, error);
  }

  /// Sends `request` and reads the whole reply: its status, its body into
  /// `body` (whose buffer is reused), and for invocation/next its headers into
  /// `invocation`. False, with the reason in `error`, when no complete reply
  /// came; the connection is then dropped, and the next request makes a new one.
  template <typename Request>
  bool exchange(Request& request, Invocation* invocation, std::string& body, long& status,
                std::string& error) {
    namespace http = boost::beast::http;
    request.set(http::field::host, authority_);
    request.set(http::field::user_agent, field_name(runtime::user_agent));
    const std::string url = url_base_ + std::string(request.target());
    for (int attempt = 0;; ++attempt) {
      const bool reused = stream_.has_value();
      if (!reused && !connect(url, error)) return false;
      boost::beast::error_code code;
      bool got_some = false;
      const char* what = "cannot send the request";
      http::write(*stream_, request, code);
      if (!code) {
        what = "no complete reply";
        read_reply(invocation, body, status, got_some, code);
      }
      if (!code) return true;
      close();
      // A connection kept from an earlier request may have been closed by the
      // API meanwhile; a request that failed on it before any byte of a reply
      // goes once more on a new connection, as libcurl does.
      if (reused && !got_some && attempt == 0) continue;
      error = std::string(what) + ": " + code.message() + " (" + url + ")";
      return false;
    }
  }

  void read_reply(Invocation* invocation, std::string& body, long& status, bool& got_some,
                  boost::beast::error_code& code) {
    namespace http = boost::beast::http;
    std::optional<Parser> parser;
    do {  // an interim 1xx reply is followed by the real one
      parser.emplace();
      // The API's own reply; events are bounded by Lambda's payload limit.
      parser->body_limit(std::numeric_limits<std::uint64_t>::max());
      http::read_header(*stream_, buffer_, *parser, code);
      got_some = got_some || parser->got_some();
      if (code) return;
    } while (parser->get().result_int() / 100 == 1);
    // The body lands in the caller's buffer, sized once for it and simdjson's
    // padding (the reader's own reserve then changes nothing).
    std::string& target = parser->get().body();
    body.clear();
    target = std::move(body);
    if (const auto length = parser->content_length(); length)
      runtime::reserve_padded(target, *length);
    http::read(*stream_, buffer_, *parser, code);
    body = std::move(target);
    if (code) return;
    status = static_cast<long>(parser->get().result_int());
    if (invocation != nullptr) {
      for (const auto& field : parser->get()) {
        const auto name = field.name_string();
        const auto value = field.value();
        runtime::read_next_header(*invocation, std::string_view(name.data(), name.size()),
                                  std::string_view(value.data(), value.size()));
      }
    }
    if (!parser->keep_alive()) close();
  }

  bool connect(const std::string& url, std::string& error) {
    namespace asio = boost::asio;
    boost::beast::error_code code;
    asio::ip::tcp::resolver resolver(io_);
    // AWS_LAMBDA_RUNTIME_API is an address in practice: getaddrinfo returns at once.
    const auto found = resolver.resolve(host_, port_, code);
    if (code) {
      error = "cannot resolve " + host_ + ": " + code.message() + " (" + url + ")";
      return false;
    }
    Stream& stream = stream_.emplace(io_);
    // A timeout needs the asynchronous connect; everything after it is
    // synchronous and waits as long as it takes (Lambda freezes the process
    // between invocations).
    stream.expires_after(std::chrono::milliseconds(runtime::connect_timeout_ms));
    stream.async_connect(found, [&code](boost::beast::error_code e, const auto&) { code = e; });
    io_.restart();
    io_.run();
    stream.expires_never();
    if (code) {
      stream_.reset();
      error = "cannot connect to " + authority_ + ": " +
              (code == boost::beast::error::timeout ? std::string("timed out") : code.message()) +
              " (" + url + ")";
      return false;
    }
    // The request goes in one write; no Nagle wait behind a previous segment.
    stream.socket().set_option(asio::ip::tcp::no_delay(true), code);
    stream.socket().set_option(asio::socket_base::keep_alive(true), code);
    buffer_.clear();
    return true;
  }

  void close() noexcept {
    if (!stream_) return;
    boost::beast::error_code ignored;
    stream_->socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    stream_->socket().close(ignored);
    stream_.reset();
    buffer_.clear();
  }

  // "host:port", "[v6]:port" or "host" (port 80), as an http:// URL takes it.
  void split_authority() {
    std::string_view rest = authority_;
    std::string_view port = "80";
    if (!rest.empty() && rest.front() == '[') {
      const std::size_t close = rest.find(']');
      host_ = std::string(rest.substr(1, close == std::string_view::npos ? close : close - 1));
      if (close != std::string_view::npos && rest.substr(close + 1).starts_with(":"))
        port = rest.substr(close + 2);
    } else if (const std::size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
      host_ = std::string(rest.substr(0, colon));
      port = rest.substr(colon + 1);
    } else {
      host_ = std::string(rest);
    }
    port_ = std::string(port);
  }

  std::string authority_;  // AWS_LAMBDA_RUNTIME_API, the Host header
  std::string url_base_;   // http://<address>, for messages
  std::string host_;
  std::string port_;
  std::optional<Stream> stream_;      // the kept-alive connection, when there is one
  boost::beast::flat_buffer buffer_;  // bytes read past a reply stay for the next
};

}  // namespace filebuilder::lambda
