// Unit tests of the endpoint policy (SSRF guard): URL parsing, refused ranges
// in every textual form, the allow-list, connected-address checks, redaction.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <random>
#include <string>
#include <string_view>

#include "filebuilder/upload/policy.hpp"
#include "support/policy_corpus.hpp"

namespace {

using filebuilder::AllowedHost;
using filebuilder::EndpointPolicy;
using filebuilder::ErrorCode;
using filebuilder::Url;

sockaddr_in v4(const char* text) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(443);
  REQUIRE(inet_pton(AF_INET, text, &address.sin_addr) == 1);
  return address;
}

sockaddr_in6 v6(const char* text) {
  sockaddr_in6 address{};
  address.sin6_family = AF_INET6;
  address.sin6_port = htons(443);
  REQUIRE(inet_pton(AF_INET6, text, &address.sin6_addr) == 1);
  return address;
}

bool public_v4(const char* text) {
  const sockaddr_in address = v4(text);
  return EndpointPolicy::is_public_address(reinterpret_cast<const sockaddr*>(&address));
}

bool public_v6(const char* text) {
  const sockaddr_in6 address = v6(text);
  return EndpointPolicy::is_public_address(reinterpret_cast<const sockaddr*>(&address));
}

ErrorCode check(std::string_view url) {
  return EndpointPolicy{}.check(url);
}

Url parsed(std::string_view text) {
  Url url;
  REQUIRE(filebuilder::parse_url(text).get(url) == ErrorCode::ok);
  return url;
}

ErrorCode parse_error(std::string_view text) {
  return filebuilder::parse_url(text).error();
}

AllowedHost allowed(std::string_view text) {
  AllowedHost entry;
  REQUIRE(filebuilder::parse_allowed_host(text).get(entry) == ErrorCode::ok);
  return entry;
}

}  // namespace

TEST_SUITE("upload.policy") {
  TEST_CASE("parse_url splits an absolute http(s) URL") {
    Url url = parsed("https://bucket.s3.amazonaws.com/a.jpg?X-Amz-Signature=x#frag");
    CHECK(url.scheme == "https");
    CHECK(url.host == "bucket.s3.amazonaws.com");
    CHECK(url.port == 443);
    CHECK_FALSE(url.port_given);
    CHECK(url.path_and_query == "/a.jpg?X-Amz-Signature=x");

    url = parsed("HTTP://Example.COM:8080");
    CHECK(url.scheme == "HTTP");
    CHECK(url.host == "Example.COM");
    CHECK(url.port == 8080);
    CHECK(url.port_given);
    CHECK(url.path_and_query.empty());

    url = parsed("http://[::1]:9000/x");
    CHECK(url.host == "::1");
    CHECK(url.port == 9000);
    CHECK(url.path_and_query == "/x");

    url = parsed("https://[2001:db8::1]");
    CHECK(url.host == "2001:db8::1");
    CHECK(url.port == 443);

    url = parsed("http://h?q=1");
    CHECK(url.port == 80);
    CHECK(url.path_and_query == "?q=1");

    url = parsed("https://my_host.example:65535/a/../b");
    CHECK(url.host == "my_host.example");
    CHECK(url.port == 65535);
  }

  TEST_CASE("parse_url refuses what it cannot parse safely") {
    for (const char* bad : {
             "",
             "example.com/a",         // no scheme
             "https:example.com",     // no authority
             "https:/example.com",    //
             "https://",              // empty host
             "https:///a",            //
             "https://:443/a",        //
             "https://a@127.0.0.1/",  // userinfo
             "https://user:pw@example.com/",
             "https://@example.com/",
             "https://example.com:/a",      // empty port
             "https://example.com:0/a",     // port 0
             "https://example.com:65536/",  // too large
             "https://example.com:99999999999999999999/",
             "https://example.com:8o/",
             "https://example.com:80:80/",
             "https://exa mple.com/",  // whitespace, controls, backslash anywhere
             "https://example.com/a b",
             "https://example.com/a\tb",
             "https://example.com/a\nb",
             "https://example.com/\x7f",
             "https://example.com\\@evil.com/",
             "https://example.com/a\\b",
             " https://example.com/",
             "https://exa%6dple.com/",  // host characters
             "https://example.com%00/",
             "https://ex!ample.com/",
             "https://[::1/",  // IPv6
             "https://[::1]x/",
             "https://[fe80::1%25eth0]/",
             "https://[not-v6]/",
             "https://[1:2:3:4:5:6:7:8:9]/",
             "https://..example.com/",
             "https://a..b/",
             "https://1.2.3.256/",  // ends in a number, but not IPv4
             "https://1.2.3.4.5/",
             "https://example.123/",
             "https://0x100000000/",
             "https://4294967296/",
             "https://08.0.0.1/",
             "https://1..1/",
             "https://\xc3\xa9xample.com/",  // non-ASCII host
         }) {
      const std::string text = bad;
      CAPTURE(text);
      CHECK(parse_error(bad) == ErrorCode::endpoint_invalid);
    }
    // The NUL inside the text, not at its end.
    CHECK(parse_error(std::string_view("https://a.com/\0x", 16)) == ErrorCode::endpoint_invalid);
    CHECK(parse_error("https://example.com/" + std::string(8 * 1024, 'a')) ==
          ErrorCode::endpoint_invalid);
    const std::string longest = "https://example.com/" + std::string(8 * 1024 - 20, 'a');
    CHECK(longest.size() == 8 * 1024);
    CHECK(parse_error(longest) == ErrorCode::ok);
  }

  TEST_CASE("other schemes are endpoint_scheme") {
    for (const char* url : {"ftp://example.com/a", "file:///etc/passwd", "file:/etc/passwd",
                            "gopher://127.0.0.1:6379/_INFO", "dict://example.com:11211/",
                            "ldap://example.com", "HTTPX://example.com", "s3://bucket/key",
                            "javascript:alert(1)", "data:text/plain,hi", "ws://example.com"}) {
      const std::string text = url;
      CAPTURE(text);
      CHECK(parse_error(url) == ErrorCode::endpoint_scheme);
      CHECK(check(url) == ErrorCode::endpoint_scheme);
    }
  }

  TEST_CASE("public https URLs are accepted") {
    for (const char* url : {
             "https://bucket.s3.amazonaws.com/a?X-Amz-Signature=x",
             "https://bucket.s3.eu-west-1.amazonaws.com/dir/a.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256",
             "HTTPS://EXAMPLE.COM/",
             "https://93.184.216.34/x",
             "https://93.184.216.34:8443/x",
             "https://[2606:2800:220:1:248:1893:25c8:1946]/x",
             "https://[::ffff:93.184.216.34]/x",
             "https://[64:ff9b::5db8:d822]/x",  // NAT64 of 93.184.216.34
             "https://8.8.8.8./x",
             "https://0x08080808/x",  // 8.8.8.8 in hex
             "https://my-localhost.com/",
             "https://localhost.example.com/",
             "https://xn--bcher-kva.example/",
         }) {
      const std::string text = url;
      CAPTURE(text);
      CHECK(check(url) == ErrorCode::ok);
    }
  }

  TEST_CASE("refused IPv4 literals in every inet_aton form") {
    for (const char* url : {
             "https://127.0.0.1/",
             "https://127.1/",
             "https://127.0.1/",
             "https://0x7f.1/",
             "https://0x7F.0.0.1/",
             "https://0X7f000001/",
             "https://2130706433/",
             "https://0177.0.0.1/",
             "https://0177.1/",
             "https://017700000001/",
             "https://127.0.0.1./",
             "https://127.255.255.254/",
             "https://0.0.0.0/",
             "https://0/",
             "https://0x0/",
             "https://0.1.2.3/",
             "https://10.0.0.1/",
             "https://10.255.255.255/",
             "https://012.1/",  // 10.0.0.1 in octal
             "https://100.64.0.1/",
             "https://100.127.255.255/",
             "https://169.254.169.254/latest/meta-data/",
             "https://169.254.169.254:80/",
             "https://2852039166/",  // 169.254.169.254
             "https://0xa9fea9fe/",
             "https://0251.0376.0251.0376/",
             "https://172.16.0.1/",
             "https://172.31.255.255/",
             "https://192.0.0.1/",
             "https://192.168.0.1/",
             "https://192.168.255.255/",
             "https://198.18.0.1/",
             "https://198.19.255.255/",
             "https://224.0.0.1/",
             "https://239.255.255.250/",
             "https://240.0.0.1/",
             "https://255.255.255.255/",
             "https://4294967295/",
         }) {
      const std::string text = url;
      CAPTURE(text);
      CHECK(check(url) == ErrorCode::endpoint_not_allowed);
    }
    // The neighbours of the refused ranges are public.
    for (const char* url :
         {"https://1.0.0.0/", "https://9.255.255.255/", "https://11.0.0.0/",
          "https://100.63.255.255/", "https://100.128.0.0/", "https://126.255.255.255/",
          "https://128.0.0.0/", "https://169.253.255.255/", "https://169.255.0.0/",
          "https://172.15.255.255/", "https://172.32.0.0/", "https://192.0.1.0/",
          "https://192.167.255.255/", "https://192.169.0.0/", "https://198.17.255.255/",
          "https://198.20.0.0/", "https://223.255.255.255/"}) {
      const std::string text = url;
      CAPTURE(text);
      CHECK(check(url) == ErrorCode::ok);
    }
  }

  TEST_CASE("refused IPv6 literals") {
    for (const char* url : {
             "https://[::]/",
             "https://[::1]/",
             "https://[0:0:0:0:0:0:0:1]/",
             "https://[::ffff:127.0.0.1]/",
             "https://[::ffff:7f00:1]/",
             "https://[::FFFF:7F00:0001]/",
             "https://[::ffff:169.254.169.254]/",
             "https://[::ffff:10.0.0.1]/",
             "https://[::ffff:0.0.0.0]/",
             "https://[::127.0.0.1]/",  // IPv4-compatible
             "https://[::10.1.2.3]/",
             "https://[64:ff9b::127.0.0.1]/",
             "https://[64:ff9b::a9fe:a9fe]/",
             "https://[fc00::1]/",
             "https://[fd12:3456:789a::1]/",
             "https://[fe80::1]/",
             "https://[febf::1]/",
             "https://[fec0::1]/",
             "https://[ff02::1]/",
             "https://[ff00::]/",
             "https://[2002:7f00:1::1]/",    // 6to4 of 127.0.0.1
             "https://[2002:c0a8:101::1]/",  // 6to4 of 192.168.1.1
         }) {
      const std::string text = url;
      CAPTURE(text);
      CHECK(check(url) == ErrorCode::endpoint_not_allowed);
    }
    for (const char* url : {"https://[2001:db8::1]/", "https://[fbff::1]/", "https://[fe7f::1]/",
                            "https://[2002:5db8:d822::1]/", "https://[::ffff:8.8.8.8]/"}) {
      const std::string text = url;
      CAPTURE(text);
      CHECK(check(url) == ErrorCode::ok);
    }
  }

  TEST_CASE("localhost names are refused") {
    for (const char* url :
         {"https://localhost/", "https://LOCALHOST./", "https://LocalHost:8443/",
          "https://a.localhost/", "https://x.y.LOCALHOST/", "https://foo.localhost./",
          "https://localhost.localdomain/", "https://ip6-localhost/", "https://ip6-loopback/"}) {
      const std::string text = url;
      CAPTURE(text);
      CHECK(check(url) == ErrorCode::endpoint_not_allowed);
    }
  }

  TEST_CASE("http needs the allow-list") {
    CHECK(check("http://example.com/a") == ErrorCode::endpoint_scheme);
    CHECK(check("http://93.184.216.34/a") == ErrorCode::endpoint_scheme);
    CHECK(check("http://127.0.0.1/a") == ErrorCode::endpoint_scheme);
    CHECK(check("HTTP://localhost/") == ErrorCode::endpoint_scheme);
    CHECK(check("http://a@127.0.0.1/") == ErrorCode::endpoint_invalid);
  }

  TEST_CASE("parse_allowed_host") {
    AllowedHost entry = allowed("127.0.0.1");
    CHECK(entry.host == "127.0.0.1");
    CHECK_FALSE(entry.port.has_value());
    entry = allowed("Example.COM:8080");
    CHECK(entry.host == "example.com");
    CHECK(entry.port == std::optional<std::uint16_t>(8080));
    entry = allowed("[::1]:8080");
    CHECK(entry.host == "::1");
    CHECK(entry.port == std::optional<std::uint16_t>(8080));
    entry = allowed("[FE80::1]");
    CHECK(entry.host == "fe80::1");
    CHECK_FALSE(entry.port.has_value());
    entry = allowed("::1");
    CHECK(entry.host == "::1");
    CHECK_FALSE(entry.port.has_value());
    entry = allowed("  localhost:9000 ");
    CHECK(entry.host == "localhost");
    CHECK(entry.port == std::optional<std::uint16_t>(9000));

    for (const char* bad :
         {"", " ", ":80", "host:", "host:0", "host:65536", "host:x", "a b", "[::1", "[::1]x",
          "[::1]:", "[zz]", "user@host", "http://host", "host/path", "1.2.3.256", "1:2:3"}) {
      const std::string text = bad;
      CAPTURE(text);
      CHECK(filebuilder::parse_allowed_host(bad).error() == ErrorCode::endpoint_invalid);
    }
  }

  TEST_CASE("the allow-list opens http and any address, by host text and port") {
    EndpointPolicy policy;
    policy.allow(allowed("127.0.0.1"));
    policy.allow(allowed("Intranet.Example:8080"));
    policy.allow(allowed("[::1]:9000"));
    policy.allow({"LOCALHOST", std::nullopt});  // lowered by allow()

    CHECK(policy.check("http://127.0.0.1/") == ErrorCode::ok);
    CHECK(policy.check("http://127.0.0.1:1234/a?b") == ErrorCode::ok);
    CHECK(policy.check("https://127.0.0.1:1234/") == ErrorCode::ok);
    // Text matching: other forms of the same address are not the allowed text.
    CHECK(policy.check("https://127.1/") == ErrorCode::endpoint_not_allowed);
    CHECK(policy.check("http://127.1/") == ErrorCode::endpoint_scheme);
    CHECK(policy.check("https://127.0.0.2/") == ErrorCode::endpoint_not_allowed);

    CHECK(policy.check("http://intranet.example:8080/") == ErrorCode::ok);
    CHECK(policy.check("HTTP://INTRANET.EXAMPLE:8080/") == ErrorCode::ok);
    CHECK(policy.check("http://intranet.example/") == ErrorCode::endpoint_scheme);
    CHECK(policy.check("http://intranet.example:8081/") == ErrorCode::endpoint_scheme);
    CHECK(policy.check("https://intranet.example/") == ErrorCode::ok);  // public https anyway

    CHECK(policy.check("http://[::1]:9000/") == ErrorCode::ok);
    CHECK(policy.check("http://[0::1]:9000/") == ErrorCode::ok);  // IPv6 by value
    CHECK(policy.check("http://[::1]:9001/") == ErrorCode::endpoint_scheme);
    CHECK(policy.check("https://[::1]/") == ErrorCode::endpoint_not_allowed);

    CHECK(policy.check("http://localhost:5000/") == ErrorCode::ok);
    CHECK(policy.check("https://LocalHost/") == ErrorCode::ok);
    CHECK(policy.check("https://a.localhost/") == ErrorCode::endpoint_not_allowed);

    CHECK(policy.check("ftp://127.0.0.1/") == ErrorCode::endpoint_scheme);
    CHECK(policy.check("http://a@127.0.0.1/") == ErrorCode::endpoint_invalid);

    CHECK(policy.host_allowed("127.0.0.1", 1));
    CHECK(policy.host_allowed("INTRANET.example", 8080));
    CHECK_FALSE(policy.host_allowed("intranet.example", 80));
    CHECK(policy.host_allowed("::1", 9000));
    CHECK(policy.host_allowed("0:0::1", 9000));
    CHECK_FALSE(policy.host_allowed("::1", 80));
    CHECK_FALSE(policy.host_allowed("example.com", 443));
  }

  TEST_CASE("allow_hosts reads a comma-separated list") {
    EndpointPolicy policy;
    CHECK(policy.allow_hosts("127.0.0.1, minio:9000 ,,[::1]:8080") == ErrorCode::ok);
    REQUIRE(policy.allowed().size() == 3);
    CHECK(policy.allowed()[1].host == "minio");
    CHECK(policy.check("http://minio:9000/b/k") == ErrorCode::ok);
    CHECK(policy.check("http://[::1]:8080/") == ErrorCode::ok);
    CHECK(policy.allow_hosts("") == ErrorCode::ok);
    CHECK(policy.allowed().size() == 3);
    CHECK(policy.allow_hosts("good.example,bad host") == ErrorCode::endpoint_invalid);
    CHECK(policy.allowed().size() == 3);  // nothing added
  }

  TEST_CASE("is_public_address on sockaddr_in and sockaddr_in6") {
    for (const char* refused :
         {"0.0.0.0", "0.255.255.255", "10.0.0.1", "100.64.0.1", "100.127.255.254", "127.0.0.1",
          "127.53.0.1", "169.254.169.254", "172.16.0.1", "172.31.0.1", "192.0.0.170", "192.168.1.1",
          "198.18.0.1", "198.19.1.1", "224.0.0.251", "239.1.2.3", "240.0.0.1", "255.255.255.255"}) {
      const std::string text = refused;
      CAPTURE(text);
      CHECK_FALSE(public_v4(refused));
    }
    for (const char* ok : {"1.1.1.1", "8.8.8.8", "93.184.216.34", "52.216.0.1", "100.128.0.1",
                           "172.32.0.1", "192.0.2.1", "198.20.0.1", "223.255.255.255"}) {
      const std::string text = ok;
      CAPTURE(text);
      CHECK(public_v4(ok));
    }
    for (const char* refused :
         {"::", "::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
          "::ffff:0.0.0.0", "::127.0.0.1", "::192.168.0.1", "64:ff9b::7f00:1", "64:ff9b::10.0.0.1",
          "fc00::1", "fdff:ffff::1", "fe80::1", "fe80::1:2:3:4", "febf:ffff::1", "fec0::1",
          "ff02::1", "ff0e::1", "2002:a00:1::"}) {
      const std::string text = refused;
      CAPTURE(text);
      CHECK_FALSE(public_v6(refused));
    }
    for (const char* ok : {"2001:db8::1", "2606:4700::1111", "::ffff:8.8.8.8", "::8.8.8.8",
                           "64:ff9b::8.8.8.8", "2002:808:808::1", "fbff::1", "fe7f::1"}) {
      const std::string text = ok;
      CAPTURE(text);
      CHECK(public_v6(ok));
    }
    sockaddr_un unix_address{};
    unix_address.sun_family = AF_UNIX;
    CHECK_FALSE(EndpointPolicy::is_public_address(reinterpret_cast<sockaddr*>(&unix_address)));
    CHECK_FALSE(EndpointPolicy::is_public_address(nullptr));
  }

  TEST_CASE("connection_allowed: the decision on the connected address") {
    EndpointPolicy policy;
    policy.allow(allowed("127.0.0.1"));
    policy.allow(allowed("minio.internal:9000"));
    const sockaddr_in loopback = v4("127.0.0.1");
    const sockaddr_in metadata = v4("169.254.169.254");
    const sockaddr_in public_v4_address = v4("93.184.216.34");
    const sockaddr_in6 loopback6 = v6("::1");
    const sockaddr_in6 mapped = v6("::ffff:10.1.2.3");
    const auto as_sockaddr = [](const auto& a) { return reinterpret_cast<const sockaddr*>(&a); };

    // A name that resolves to a refused address (DNS rebinding, /etc/hosts): refused.
    CHECK_FALSE(policy.connection_allowed("rebind.example", 443, as_sockaddr(loopback)));
    CHECK_FALSE(policy.connection_allowed("rebind.example", 443, as_sockaddr(metadata)));
    CHECK_FALSE(policy.connection_allowed("rebind.example", 443, as_sockaddr(loopback6)));
    CHECK_FALSE(policy.connection_allowed("rebind.example", 443, as_sockaddr(mapped)));
    CHECK(policy.connection_allowed("rebind.example", 443, as_sockaddr(public_v4_address)));
    // Allow-listed hosts may connect anywhere; the port must match when given.
    CHECK(policy.connection_allowed("127.0.0.1", 8080, as_sockaddr(loopback)));
    CHECK(policy.connection_allowed("MINIO.internal", 9000, as_sockaddr(mapped)));
    CHECK_FALSE(policy.connection_allowed("minio.internal", 9001, as_sockaddr(mapped)));
    CHECK(policy.connection_allowed("minio.internal", 9001, as_sockaddr(public_v4_address)));
  }

  TEST_CASE("redact_url drops userinfo, query and fragment") {
    using filebuilder::redact_url;
    CHECK(redact_url(
              "https://bucket.s3.amazonaws.com/a.jpg?X-Amz-Signature=abc&X-Amz-Credential=K") ==
          "https://bucket.s3.amazonaws.com/a.jpg");
    CHECK(redact_url("https://user:secret@host.example:8443/p/q?x=1#frag") ==
          "https://host.example:8443/p/q");
    CHECK(redact_url("https://user:pa?ss@host/p") == "https://host/p");
    CHECK(redact_url("https://user:pa#ss@host/p") == "https://host/p");
    CHECK(redact_url("https://a@b@host/p") == "https://host/p");
    CHECK(redact_url("https://host/p@q?x") == "https://host/p@q");
    CHECK(redact_url("https://host/p#frag") == "https://host/p");
    CHECK(redact_url("https://host?x=1") == "https://host");
    CHECK(redact_url("https://host") == "https://host");
    CHECK(redact_url("http://[::1]:8080/a?b") == "http://[::1]:8080/a");
    CHECK(redact_url("not a url?secret") == "not a url");
    CHECK(redact_url("") == "");
  }

  TEST_CASE("detail: inet_aton forms") {
    using filebuilder::detail::parse_ipv4;
    CHECK(parse_ipv4("127.0.0.1") == 0x7f000001U);
    CHECK(parse_ipv4("127.1") == 0x7f000001U);
    CHECK(parse_ipv4("127.0.1") == 0x7f000001U);
    CHECK(parse_ipv4("0x7f.1") == 0x7f000001U);
    CHECK(parse_ipv4("2130706433") == 0x7f000001U);
    CHECK(parse_ipv4("0177.0.0.1") == 0x7f000001U);
    CHECK(parse_ipv4("0x7f000001") == 0x7f000001U);
    CHECK(parse_ipv4("1.2.65535") == 0x0102ffffU);
    CHECK(parse_ipv4("1.16777215") == 0x01ffffffU);
    CHECK(parse_ipv4("0x") == 0U);
    CHECK(parse_ipv4("1.2.3.4.") == 0x01020304U);
    CHECK_FALSE(parse_ipv4("1.2.65536").has_value());
    CHECK_FALSE(parse_ipv4("1.16777216").has_value());
    CHECK_FALSE(parse_ipv4("256.1").has_value());
    CHECK_FALSE(parse_ipv4("1.2.3.4.5").has_value());
    CHECK_FALSE(parse_ipv4("09").has_value());
    CHECK_FALSE(parse_ipv4("0xg").has_value());
    CHECK_FALSE(parse_ipv4("").has_value());
    CHECK_FALSE(parse_ipv4("1..2").has_value());
    CHECK_FALSE(parse_ipv4("a.b.c.d").has_value());
  }

  TEST_CASE("every host inet_aton reads as IPv4 is that address to the policy, or invalid") {
    // A resolver turns such a host into an address without DNS; the text
    // check must see the same address, or refuse the URL.
    std::mt19937 rng(20240601);
    constexpr std::string_view alphabet = "0123456789.xXaAfFg";
    int numeric = 0;
    int valid = 0;
    std::string mismatches;
    for (int i = 0; i < 200000; ++i) {
      std::string host(1 + rng() % 14, '0');
      for (char& c : host) c = alphabet[rng() % alphabet.size()];
      in_addr address{};
      if (inet_aton(host.c_str(), &address) == 0) continue;
      ++numeric;
      const std::string url = "https://" + host + "/";
      if (parse_error(url) != ErrorCode::ok) continue;
      ++valid;
      const std::uint32_t expected = ntohl(address.s_addr);
      const auto ours = filebuilder::detail::parse_ipv4(host);
      const bool is_public = filebuilder::detail::is_public_ipv4(expected);
      if (!filebuilder::detail::ends_in_number(host) || ours != expected ||
          check(url) != (is_public ? ErrorCode::ok : ErrorCode::endpoint_not_allowed)) {
        mismatches += host + " ";
      }
    }
    CAPTURE(numeric);
    CAPTURE(valid);
    CHECK(mismatches.empty());
    CHECK(valid > 1000);
  }
}

TEST_CASE("upload.policy: every form the hardening issue lists, with its code") {
  for (const filebuilder::test::PolicyCase& c : filebuilder::test::policy_corpus) {
    const std::string url = c.url;
    CAPTURE(url);
    CHECK(check(url) == c.expected);
  }
  // Allow-listing 127.0.0.1 and example.com opens neither userinfo form.
  EndpointPolicy policy;
  policy.allow(allowed("127.0.0.1"));
  policy.allow(allowed("example.com"));
  for (const char* url :
       {"https://a@127.0.0.1/", "http://example.com@127.0.0.1/", "http://127.0.0.1@example.com/"}) {
    const std::string text = url;
    CAPTURE(text);
    CHECK(policy.check(url) == ErrorCode::endpoint_invalid);
  }
  // The allow-list opens exactly the hosts named, nothing next to them.
  for (const char* url :
       {"http://127.0.0.2/", "http://sub.example.com/", "http://example.com.evil.com/",
        "http://examplexcom/", "http://127.0.0.1.evil.com/"}) {
    const std::string text = url;
    CAPTURE(text);
    CHECK(policy.check(url) == ErrorCode::endpoint_scheme);
    CHECK_FALSE(policy.host_allowed(filebuilder::parse_url(url).value_unsafe().host, 80));
  }
  CHECK(policy.check("http://127.0.0.1:8080/") == ErrorCode::ok);
  CHECK(policy.check("http://EXAMPLE.com/") == ErrorCode::ok);
}
