"""Signs requests with botocore, for the cross-test in sigv4_itest.cpp.

Reads one JSON request per line on standard input:
  {"method", "url", "headers": [[name, value], ...], "body", "region", "service",
   "access_key", "secret_key", "token", "time": unix seconds,
   "s3": bool, "unsigned_payload": bool, "expires": seconds (presign; optional)}
and writes one JSON line per request:
  {"canonical_request", "string_to_sign", "headers": {name: value, ...}, "url"}
with the headers and URL of the request after botocore signed it (SigV4Auth,
or S3SigV4Auth when "s3"; SigV4QueryAuth or S3SigV4QueryAuth, a presigned
URL, when "expires" is given). Run with /usr/bin/python3 and Debian's
python3-botocore.
"""

import datetime
import json
import logging
import sys
import types

import botocore.auth
import botocore.config
import botocore.credentials
from botocore.awsrequest import AWSRequest


class Capture(logging.Handler):
    """Keeps what SigV4Auth.add_auth logs: the canonical request, the string to sign."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = {}

    def emit(self, record):
        message = record.getMessage()
        for key in ("CanonicalRequest", "StringToSign"):
            prefix = key + ":\n"
            if message.startswith(prefix):
                self.records[key] = message[len(prefix):]


def fixed_clock(moment):
    """A stand-in for botocore.auth's datetime module whose utcnow() is `moment`."""

    class Fixed(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return moment

    shim = types.ModuleType("datetime")
    shim.__dict__.update(datetime.__dict__)
    shim.datetime = Fixed
    return shim


def sign(case, capture):
    credentials = botocore.credentials.Credentials(
        case["access_key"], case["secret_key"], case.get("token") or None)
    if "expires" in case:
        kind = botocore.auth.S3SigV4QueryAuth if case.get("s3") else botocore.auth.SigV4QueryAuth
        auth = kind(credentials, case["service"], case["region"], expires=case["expires"])
    else:
        kind = botocore.auth.S3SigV4Auth if case.get("s3") else botocore.auth.SigV4Auth
        auth = kind(credentials, case["service"], case["region"])
    request = AWSRequest(method=case["method"], url=case["url"], data=case.get("body", ""))
    for name, value in case.get("headers", []):
        request.headers[name] = value
    if case.get("s3") and case.get("unsigned_payload"):
        request.context["client_config"] = botocore.config.Config(
            s3={"payload_signing_enabled": False})
    moment = datetime.datetime.utcfromtimestamp(case["time"])
    botocore.auth.datetime = fixed_clock(moment)
    capture.records.clear()
    auth.add_auth(request)
    return {
        "canonical_request": capture.records.get("CanonicalRequest", ""),
        "string_to_sign": capture.records.get("StringToSign", ""),
        "headers": {name: value for name, value in request.headers.items()},
        "url": request.url,
    }


def main():
    capture = Capture()
    logger = logging.getLogger("botocore.auth")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(capture)
    logger.propagate = False
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(sign(json.loads(line), capture)), flush=True)


if __name__ == "__main__":
    main()
