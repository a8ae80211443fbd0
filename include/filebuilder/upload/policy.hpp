// filebuilder: the endpoint policy, the guard against server-side request forgery.
//
// putEndpoint comes from whoever can write to the stream, so before a file is
// uploaded its URL is checked here, and an uploader checks again the address it
// actually connects to (is_public_address), which also covers names that
// resolve to a refused address and DNS rebinding.
//
// The rules:
//   - only absolute http and https URLs, without userinfo, whitespace, control
//     characters or backslashes, at most 8 KiB long;
//   - https to any host, except IP literals in a refused range (loopback,
//     private, link-local, carrier-grade NAT, multicast, reserved, unspecified,
//     and IPv6 forms embedding such an IPv4 address) and localhost names;
//   - http only to allow-listed hosts; an allow-listed host may use any
//     address.
// IPv4 literals are recognised in every form a resolver accepts (inet_aton:
// `127.1`, `0x7f.1`, `2130706433`, `0177.0.0.1`); a host whose last label is
// a number but that is not a valid IPv4 address is refused as invalid, as in
// the WHATWG URL standard, so the text check cannot be dodged.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "filebuilder/error.hpp"

namespace filebuilder {

/// The longest putEndpoint accepted.
inline constexpr std::size_t max_url_length = 8 * 1024;

/// A parsed absolute http(s) URL. The views point into the parsed text.
struct Url {
  std::string_view scheme;          // "http" or "https", as written (any case)
  std::string_view host;            // as written; IPv6 without its brackets
  std::uint16_t port = 0;           // the given port, else 80 or 443
  bool port_given = false;          // the URL names a port
  std::string_view path_and_query;  // from the first '/' or '?' up to any '#'; may be empty
};

/// Parses an absolute http or https URL strictly. endpoint_invalid for
/// anything malformed or ambiguous (userinfo, whitespace, control characters,
/// backslashes, a bad port or host, more than max_url_length characters);
/// endpoint_scheme for another scheme.
[[nodiscard]] inline Result<Url> parse_url(std::string_view url);

/// One allow-list entry: a host (lower case, IPv6 without brackets) and an
/// optional port; without a port every port is allowed.
struct AllowedHost {
  std::string host;
  std::optional<std::uint16_t> port;
};

/// Parses `HOST[:PORT]`, IPv6 as `[::1]` or `[::1]:8080` (a bare `::1` is
/// accepted too, without a port). Surrounding spaces are ignored.
/// endpoint_invalid when malformed.
[[nodiscard]] inline Result<AllowedHost> parse_allowed_host(std::string_view text);

/// Decides which endpoints and connected addresses are acceptable.
class EndpointPolicy {
 public:
  /// Opens a host (and port) for http and for any address.
  void allow(AllowedHost host);
  /// Adds every entry of a comma-separated `HOST[:PORT]` list (the format of
  /// FILEBUILDER_ALLOW_HOSTS); empty entries are skipped. On error nothing is
  /// added and endpoint_invalid is returned.
  [[nodiscard]] ErrorCode allow_hosts(std::string_view comma_separated);
  [[nodiscard]] const std::vector<AllowedHost>& allowed() const noexcept { return allowed_; }

  /// ok, endpoint_invalid, endpoint_scheme (not http(s), or http to a host
  /// not allowed) or endpoint_not_allowed (a refused IP literal or name).
  [[nodiscard]] ErrorCode check(std::string_view url) const;

  /// Whether HOST (as in Url::host, case-insensitive) and PORT are allow-listed.
  [[nodiscard]] bool host_allowed(std::string_view host, std::uint16_t port) const;

  /// The decision on the address actually connected for a URL's host and
  /// port: any address for an allow-listed host, else only public addresses.
  [[nodiscard]] bool connection_allowed(std::string_view host, std::uint16_t port,
                                        const sockaddr* address) const;

  /// False for IPv4 and IPv6 addresses in a refused range, and for any other
  /// address family (or a null pointer).
  [[nodiscard]] static bool is_public_address(const sockaddr* address) noexcept;

 private:
  std::vector<AllowedHost> allowed_;
};

/// The URL without userinfo, query string and fragment, for logs:
/// `https://u:p@bucket.s3.amazonaws.com/a.jpg?X-Amz-Signature=..#f` ->
/// `https://bucket.s3.amazonaws.com/a.jpg`. Works on any text, parsable or not.
[[nodiscard]] inline std::string redact_url(std::string_view url);

// ---------------------------------------------------------------------------
// Implementation

namespace detail {

[[nodiscard]] constexpr char ascii_lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

[[nodiscard]] constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

[[nodiscard]] constexpr bool is_alpha(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
[[nodiscard]] constexpr bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

/// Characters allowed in a host name (a subset of RFC 3986 reg-name that
/// resolvers and libcurl agree on).
[[nodiscard]] constexpr bool is_host_char(char c) noexcept {
  return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_';
}

/// One part of an IPv4 address as inet_aton reads it: `0x` hex, leading `0`
/// octal, else decimal. Empty after `0x` is 0 (as glibc and WHATWG).
[[nodiscard]] constexpr std::optional<std::uint32_t> parse_ipv4_number(
    std::string_view text) noexcept {
  if (text.empty()) return std::nullopt;
  unsigned base = 10;
  if (text.size() >= 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    base = 16;
    text.remove_prefix(2);
  } else if (text.size() >= 2 && text[0] == '0') {
    base = 8;
    text.remove_prefix(1);
  }
  std::uint64_t value = 0;
  for (char c : text) {
    unsigned digit = 0;
    if (is_digit(c)) {
      digit = static_cast<unsigned>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<unsigned>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      digit = static_cast<unsigned>(c - 'A' + 10);
    } else {
      return std::nullopt;
    }
    if (digit >= base) return std::nullopt;
    value = value * base + digit;
    if (value > 0xffffffffULL) return std::nullopt;
  }
  return static_cast<std::uint32_t>(value);
}

/// The text of an address for messages ("127.0.0.1", "::1").
[[nodiscard]] inline std::string address_text(const sockaddr* address) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address->sa_family == AF_INET) {
    sockaddr_in v4;
    std::memcpy(&v4, address, sizeof v4);
    if (inet_ntop(AF_INET, &v4.sin_addr, text, sizeof text) != nullptr) return text;
  } else if (address->sa_family == AF_INET6) {
    sockaddr_in6 v6;
    std::memcpy(&v6, address, sizeof v6);
    if (inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof text) != nullptr) return text;
  }
  return "an address of family " + std::to_string(address->sa_family);
}

/// The labels of a host name, without one trailing empty label (`a.b.`).
[[nodiscard]] inline std::string_view strip_trailing_dot(std::string_view host) noexcept {
  if (host.size() > 1 && host.back() == '.') host.remove_suffix(1);
  return host;
}

/// Whether the last label of HOST is a number, which makes the host an IPv4
/// address or invalid (the WHATWG "ends in a number" rule).
[[nodiscard]] inline bool ends_in_number(std::string_view host) noexcept {
  host = strip_trailing_dot(host);
  const std::size_t dot = host.rfind('.');
  const std::string_view last = dot == std::string_view::npos ? host : host.substr(dot + 1);
  if (last.empty()) return false;
  if (std::all_of(last.begin(), last.end(), is_digit)) return true;
  if (last.size() < 2 || last[0] != '0' || (last[1] != 'x' && last[1] != 'X')) return false;
  return std::all_of(last.begin() + 2, last.end(), [](char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

/// An IPv4 address in any form inet_aton accepts (1 to 4 parts, each decimal,
/// octal or hex; the last part fills the remaining bytes), plus one trailing
/// dot. Host byte order.
[[nodiscard]] inline std::optional<std::uint32_t> parse_ipv4(std::string_view host) noexcept {
  host = strip_trailing_dot(host);
  std::array<std::uint32_t, 4> parts{};
  std::size_t count = 0;
  while (true) {
    const std::size_t dot = host.find('.');
    const std::string_view part = host.substr(0, dot);
    if (count == parts.size()) return std::nullopt;
    const auto value = parse_ipv4_number(part);
    if (!value) return std::nullopt;
    parts[count++] = *value;
    if (dot == std::string_view::npos) break;
    host.remove_prefix(dot + 1);
  }
  std::uint32_t address = 0;
  for (std::size_t i = 0; i + 1 < count; ++i) {
    if (parts[i] > 255) return std::nullopt;
    address |= parts[i] << (24 - 8 * i);
  }
  const std::uint32_t last = parts[count - 1];
  const unsigned last_bits = 32 - 8 * static_cast<unsigned>(count - 1);
  if (last_bits < 32 && (last >> last_bits) != 0) return std::nullopt;
  return address | last;
}

/// An IPv6 address (no zone identifier), in network byte order.
[[nodiscard]] inline std::optional<std::array<unsigned char, 16>> parse_ipv6(
    std::string_view text) noexcept {
  char buffer[INET6_ADDRSTRLEN + 1];
  if (text.empty() || text.size() >= sizeof buffer) return std::nullopt;
  for (char c : text) {
    if (!(is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
          c == '.')) {
      return std::nullopt;
    }
  }
  std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';
  std::array<unsigned char, 16> address{};
  if (inet_pton(AF_INET6, buffer, address.data()) != 1) return std::nullopt;
  return address;
}

/// Whether an IPv4 address (host byte order) may be connected to by default.
[[nodiscard]] constexpr bool is_public_ipv4(std::uint32_t a) noexcept {
  const auto in = [a](std::uint32_t network, unsigned prefix) {
    const std::uint32_t mask = prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
    return (a & mask) == network;
  };
  return !(in(0x00000000, 8)      // 0.0.0.0/8: "this network", unspecified
           || in(0x0a000000, 8)   // 10.0.0.0/8: private
           || in(0x64400000, 10)  // 100.64.0.0/10: carrier-grade NAT
           || in(0x7f000000, 8)   // 127.0.0.0/8: loopback
           || in(0xa9fe0000, 16)  // 169.254.0.0/16: link-local, cloud metadata
           || in(0xac100000, 12)  // 172.16.0.0/12: private
           || in(0xc0000000, 24)  // 192.0.0.0/24: IETF protocol assignments
           || in(0xc0a80000, 16)  // 192.168.0.0/16: private
           || in(0xc6120000, 15)  // 198.18.0.0/15: benchmarking
           || a >= 0xe0000000);   // 224.0.0.0/4 multicast, 240/4 reserved, broadcast
}

/// Whether an IPv6 address (network byte order) may be connected to by default.
[[nodiscard]] inline bool is_public_ipv6(const unsigned char* b) noexcept {
  const auto embedded_v4 = [b] {
    return (std::uint32_t{b[12]} << 24) | (std::uint32_t{b[13]} << 16) |
           (std::uint32_t{b[14]} << 8) | std::uint32_t{b[15]};
  };
  const auto zero = [b](std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; ++i) {
      if (b[i] != 0) return false;
    }
    return true;
  };
  // ::/96: ::, ::1 and the deprecated IPv4-compatible addresses (::a.b.c.d).
  if (zero(0, 12)) return is_public_ipv4(embedded_v4());
  // ::ffff:0:0/96: IPv4-mapped.
  if (zero(0, 10) && b[10] == 0xff && b[11] == 0xff) return is_public_ipv4(embedded_v4());
  // 64:ff9b::/96: NAT64 well-known prefix.
  if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && zero(4, 12)) {
    return is_public_ipv4(embedded_v4());
  }
  if ((b[0] & 0xfe) == 0xfc) return false;                  // fc00::/7: unique local
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return false;  // fe80::/10: link-local
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return false;  // fec0::/10: site-local (old)
  if (b[0] == 0xff) return false;                           // ff00::/8: multicast
  if (b[0] == 0x20 && b[1] == 0x02) {                       // 2002::/16: 6to4
    return is_public_ipv4((std::uint32_t{b[2]} << 24) | (std::uint32_t{b[3]} << 16) |
                          (std::uint32_t{b[4]} << 8) | std::uint32_t{b[5]});
  }
  return true;
}

/// is_public_ipv6 of a sockaddr_in6 given as a sockaddr. Out of line, so that
/// g++ does not warn about the bytes of a sockaddr_in it can see the caller
/// pass on the (then dead) IPv6 path.
[[gnu::noinline]] inline bool is_public_sockaddr_in6(const sockaddr* address) noexcept {
  sockaddr_in6 v6;
  std::memcpy(&v6, address, sizeof v6);
  return is_public_ipv6(v6.sin6_addr.s6_addr);
}

/// Names that always mean this machine: `localhost`, `*.localhost` (RFC 6761),
/// `localhost.localdomain`, `ip6-localhost`, `ip6-loopback`; any case, with an
/// optional trailing dot.
[[nodiscard]] inline bool is_local_name(std::string_view host) noexcept {
  host = strip_trailing_dot(host);
  constexpr std::string_view suffix = ".localhost";
  if (iequals(host, "localhost") || iequals(host, "localhost.localdomain") ||
      iequals(host, "ip6-localhost") || iequals(host, "ip6-loopback")) {
    return true;
  }
  return host.size() > suffix.size() && iequals(host.substr(host.size() - suffix.size()), suffix);
}

/// Parses the digits of a port: 1 to 65535.
[[nodiscard]] constexpr std::optional<std::uint16_t> parse_port(std::string_view text) noexcept {
  if (text.empty()) return std::nullopt;
  std::uint32_t value = 0;
  for (char c : text) {
    if (!is_digit(c)) return std::nullopt;
    value = value * 10 + static_cast<std::uint32_t>(c - '0');
    if (value > 65535) return std::nullopt;
  }
  if (value == 0) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

/// Checks a host name (not an IPv6 literal): allowed characters, and a valid
/// IPv4 address whenever it ends in a number.
[[nodiscard]] inline bool valid_host_name(std::string_view host) noexcept {
  if (host.empty() || host.size() > 253 + 1) return false;
  if (!std::all_of(host.begin(), host.end(), is_host_char)) return false;
  if (host == "." || host.find("..") != std::string_view::npos) return false;
  if (ends_in_number(host)) return parse_ipv4(host).has_value();
  return true;
}

/// The IPv6 literal or IPv4 literal (any inet_aton form) a host is, if any.
struct HostAddress {
  bool is_literal = false;
  bool is_public = true;
};

[[nodiscard]] inline HostAddress classify_host(std::string_view host) noexcept {
  if (host.find(':') != std::string_view::npos) {
    const auto v6 = parse_ipv6(host);
    return {true, v6 && is_public_ipv6(v6->data())};
  }
  if (ends_in_number(host)) {
    const auto v4 = parse_ipv4(host);
    return {true, v4 && is_public_ipv4(*v4)};
  }
  return {};
}

/// Compares two hosts as the allow-list does: case-insensitive text, IPv6 by value.
[[nodiscard]] inline bool same_host(std::string_view a, std::string_view b) noexcept {
  if (iequals(a, b)) return true;
  if (a.find(':') == std::string_view::npos || b.find(':') == std::string_view::npos) {
    return false;
  }
  const auto x = parse_ipv6(a);
  const auto y = parse_ipv6(b);
  return x && y && *x == *y;
}

[[nodiscard]] inline std::string_view trim_spaces(std::string_view text) noexcept {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

}  // namespace detail

inline Result<Url> parse_url(std::string_view url) {
  if (url.empty() || url.size() > max_url_length) return ErrorCode::endpoint_invalid;
  for (char c : url) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '\\') return ErrorCode::endpoint_invalid;
  }
  // Scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"
  const std::size_t colon = url.find(':');
  if (colon == std::string_view::npos || colon == 0 || !detail::is_alpha(url[0])) {
    return ErrorCode::endpoint_invalid;
  }
  const std::string_view scheme = url.substr(0, colon);
  for (char c : scheme) {
    if (!(detail::is_alpha(c) || detail::is_digit(c) || c == '+' || c == '-' || c == '.')) {
      return ErrorCode::endpoint_invalid;
    }
  }
  const bool https = detail::iequals(scheme, "https");
  if (!https && !detail::iequals(scheme, "http")) return ErrorCode::endpoint_scheme;
  std::string_view rest = url.substr(colon + 1);
  if (rest.substr(0, 2) != "//") return ErrorCode::endpoint_invalid;
  rest.remove_prefix(2);

  const std::size_t authority_end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, authority_end);
  std::string_view tail =
      authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) return ErrorCode::endpoint_invalid;
  for (char c : authority) {
    if (static_cast<unsigned char>(c) >= 0x80) return ErrorCode::endpoint_invalid;
  }

  Url parsed;
  parsed.scheme = scheme;
  std::string_view port_text;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return ErrorCode::endpoint_invalid;
    parsed.host = authority.substr(1, close - 1);
    if (!detail::parse_ipv6(parsed.host)) return ErrorCode::endpoint_invalid;
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return ErrorCode::endpoint_invalid;
      has_port = true;
      port_text = after.substr(1);
    }
  } else {
    const std::size_t port_colon = authority.find(':');
    parsed.host = authority.substr(0, port_colon);
    if (port_colon != std::string_view::npos) {
      has_port = true;
      port_text = authority.substr(port_colon + 1);
    }
    if (!detail::valid_host_name(parsed.host)) return ErrorCode::endpoint_invalid;
  }
  if (has_port) {
    const auto port = detail::parse_port(port_text);
    if (!port) return ErrorCode::endpoint_invalid;
    parsed.port = *port;
    parsed.port_given = true;
  } else {
    parsed.port = https ? 443 : 80;
  }
  const std::size_t fragment = tail.find('#');
  parsed.path_and_query = tail.substr(0, fragment);
  return parsed;
}

inline Result<AllowedHost> parse_allowed_host(std::string_view text) {
  text = detail::trim_spaces(text);
  if (text.empty()) return ErrorCode::endpoint_invalid;
  AllowedHost entry;
  std::string_view host;
  std::string_view port_text;
  bool has_port = false;
  if (text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos) return ErrorCode::endpoint_invalid;
    host = text.substr(1, close - 1);
    const std::string_view after = text.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return ErrorCode::endpoint_invalid;
      has_port = true;
      port_text = after.substr(1);
    }
    if (!detail::parse_ipv6(host)) return ErrorCode::endpoint_invalid;
  } else if (std::count(text.begin(), text.end(), ':') > 1) {
    host = text;  // a bare IPv6 address, no port
    if (!detail::parse_ipv6(host)) return ErrorCode::endpoint_invalid;
  } else {
    const std::size_t colon = text.find(':');
    host = text.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = text.substr(colon + 1);
    }
    if (!detail::valid_host_name(host)) return ErrorCode::endpoint_invalid;
  }
  if (has_port) {
    const auto port = detail::parse_port(port_text);
    if (!port) return ErrorCode::endpoint_invalid;
    entry.port = *port;
  }
  entry.host.reserve(host.size());
  for (char c : host) entry.host.push_back(detail::ascii_lower(c));
  return entry;
}

inline void EndpointPolicy::allow(AllowedHost host) {
  for (char& c : host.host) c = detail::ascii_lower(c);
  allowed_.push_back(std::move(host));
}

inline ErrorCode EndpointPolicy::allow_hosts(std::string_view comma_separated) {
  std::vector<AllowedHost> added;
  while (true) {
    const std::size_t comma = comma_separated.find(',');
    const std::string_view item = detail::trim_spaces(comma_separated.substr(0, comma));
    if (!item.empty()) {
      AllowedHost entry;
      if (const ErrorCode error = parse_allowed_host(item).get(entry); error != ErrorCode::ok) {
        return error;
      }
      added.push_back(std::move(entry));
    }
    if (comma == std::string_view::npos) break;
    comma_separated.remove_prefix(comma + 1);
  }
  for (AllowedHost& entry : added) allowed_.push_back(std::move(entry));
  return ErrorCode::ok;
}

inline bool EndpointPolicy::host_allowed(std::string_view host, std::uint16_t port) const {
  return std::any_of(allowed_.begin(), allowed_.end(), [&](const AllowedHost& entry) {
    return (!entry.port || *entry.port == port) && detail::same_host(entry.host, host);
  });
}

inline ErrorCode EndpointPolicy::check(std::string_view url) const {
  Url parsed;
  if (const ErrorCode error = parse_url(url).get(parsed); error != ErrorCode::ok) return error;
  if (host_allowed(parsed.host, parsed.port)) return ErrorCode::ok;
  if (!detail::iequals(parsed.scheme, "https")) return ErrorCode::endpoint_scheme;
  const detail::HostAddress address = detail::classify_host(parsed.host);
  if (address.is_literal && !address.is_public) return ErrorCode::endpoint_not_allowed;
  if (!address.is_literal && detail::is_local_name(parsed.host)) {
    return ErrorCode::endpoint_not_allowed;
  }
  return ErrorCode::ok;
}

inline bool EndpointPolicy::connection_allowed(std::string_view host, std::uint16_t port,
                                               const sockaddr* address) const {
  return host_allowed(host, port) || is_public_address(address);
}

inline bool EndpointPolicy::is_public_address(const sockaddr* address) noexcept {
  if (address == nullptr) return false;
  if (address->sa_family == AF_INET) {
    sockaddr_in v4;
    std::memcpy(&v4, address, sizeof v4);
    return detail::is_public_ipv4(ntohl(v4.sin_addr.s_addr));
  }
  if (address->sa_family == AF_INET6) return detail::is_public_sockaddr_in6(address);
  return false;
}

inline std::string redact_url(std::string_view url) {
  std::string out;
  out.reserve(url.size());
  const std::size_t scheme_end = url.find("://");
  if (scheme_end != std::string_view::npos) {
    // Userinfo first, so that a '?' or '#' inside a password cannot hide it.
    const std::size_t authority_begin = scheme_end + 3;
    const std::size_t authority_end = url.find('/', authority_begin);
    const std::size_t at = url.substr(0, authority_end).rfind('@');
    out.append(url.substr(0, authority_begin));
    url.remove_prefix(at != std::string_view::npos && at >= authority_begin ? at + 1
                                                                            : authority_begin);
  }
  out.append(url.substr(0, url.find_first_of("?#")));
  return out;
}

}  // namespace filebuilder
