// The endpoint-policy corpus of the hardening issue: every URL form it lists,
// with the code the policy gives it. The policy unit tests check the verdicts;
// the uploader conformance suite checks that each uploader gives the same ones.
#pragma once

#include "filebuilder/error.hpp"

namespace filebuilder::test {

struct PolicyCase {
  const char* url;
  ErrorCode expected;
};

inline constexpr PolicyCase policy_corpus[] = {
    // Loopback in every form a resolver reads, localhost, IPv6 loopback and mapped.
    {"https://127.0.0.1/", ErrorCode::endpoint_not_allowed},
    {"https://127.1/", ErrorCode::endpoint_not_allowed},
    {"https://0x7f.1/", ErrorCode::endpoint_not_allowed},
    {"https://2130706433/", ErrorCode::endpoint_not_allowed},
    {"https://0177.0.0.1/", ErrorCode::endpoint_not_allowed},
    {"https://localhost/", ErrorCode::endpoint_not_allowed},
    {"https://localhost./", ErrorCode::endpoint_not_allowed},
    {"https://[::1]/", ErrorCode::endpoint_not_allowed},
    {"https://[::ffff:127.0.0.1]/", ErrorCode::endpoint_not_allowed},
    // Unspecified, private, link-local (cloud metadata), carrier-grade NAT.
    {"https://0.0.0.0/", ErrorCode::endpoint_not_allowed},
    {"https://10.20.30.40/", ErrorCode::endpoint_not_allowed},
    {"https://172.16.0.1/", ErrorCode::endpoint_not_allowed},
    {"https://172.31.255.254/", ErrorCode::endpoint_not_allowed},
    {"https://192.168.0.10/", ErrorCode::endpoint_not_allowed},
    {"https://169.254.169.254/latest/meta-data/", ErrorCode::endpoint_not_allowed},
    {"https://100.64.0.1/", ErrorCode::endpoint_not_allowed},
    {"https://100.127.0.1/", ErrorCode::endpoint_not_allowed},
    // IPv6 unique local and link-local.
    {"https://[fc00::1]/", ErrorCode::endpoint_not_allowed},
    {"https://[fdff:ffff::1]/", ErrorCode::endpoint_not_allowed},
    {"https://[fe80::1]/", ErrorCode::endpoint_not_allowed},
    {"https://[febf::1]/", ErrorCode::endpoint_not_allowed},
    // Other schemes.
    {"file:///etc/passwd", ErrorCode::endpoint_scheme},
    {"gopher://example.com/", ErrorCode::endpoint_scheme},
    {"ftp://example.com/a", ErrorCode::endpoint_scheme},
    {"http://example.com/a", ErrorCode::endpoint_scheme},  // http needs the allow-list
    // Userinfo tricks, whichever side names the real host.
    {"https://a@127.0.0.1", ErrorCode::endpoint_invalid},
    {"https://a@127.0.0.1/", ErrorCode::endpoint_invalid},
    {"https://example.com@127.0.0.1/", ErrorCode::endpoint_invalid},
    {"https://127.0.0.1@example.com/", ErrorCode::endpoint_invalid},
    {"https://a:b@example.com/", ErrorCode::endpoint_invalid},
    {"https://example.com\\@127.0.0.1/", ErrorCode::endpoint_invalid},
    // And what stays open.
    {"https://bucket.s3.amazonaws.com/a?X-Amz-Signature=x", ErrorCode::ok},
    {"https://93.184.216.34/", ErrorCode::ok},
};

}  // namespace filebuilder::test
