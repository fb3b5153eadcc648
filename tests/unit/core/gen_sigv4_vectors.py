#!/usr/bin/python3
"""Generates the botocore SigV4 test vectors embedded in sigv4_test.cpp.

Run with Debian's python3-botocore: /usr/bin/python3 tests/unit/core/gen_sigv4_vectors.py
and paste the output between the "BEGIN/END GENERATED" markers of sigv4_test.cpp.
With --corpus DIR it also writes the same requests as seed inputs for tests/fuzz/sigv4_fuzz.cpp.
The vectors are signed by botocore's own SigV4Auth (the signer the AWS CLI v1 and
boto3 use), with the clock pinned, so they are an independent check of verify().
"""
import datetime
import hashlib
import json
import os
import sys
from unittest import mock
from urllib.parse import quote

import botocore
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ACCESS_KEY = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEXAMPLETOKEN//////////wEaDKl+test=="
REGION = "us-east-1"
ENDPOINT = "http://127.0.0.1:9999"
HOST = "127.0.0.1:9999"
WHEN = datetime.datetime(2026, 11, 27, 1, 3, 23)
ARN = "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af1"

# (name, method, path?query as sent, headers botocore signs, unsigned headers, body, token)
CASES = [
    ("invoke_arn_qualifier", "POST",
     f"/2015-03-31/functions/{ARN}/invocations?Qualifier=%24LATEST",
     [("X-Amz-Log-Type", "Tail"), ("X-Amz-Client-Context", "eyJhIjoxfQ==")],
     [("User-Agent", "Boto3/1.43.11 md/Botocore#1.43.11"), ("Content-Length", "7")],
     b'{"a":1}', None),
    ("create_function_json", "POST", "/2015-03-31/functions",
     [("Content-Type", "application/json")],
     [("User-Agent", "Boto3/1.43.11"), ("amz-sdk-invocation-id", "c64e412a-b78d-4cdf"),
      ("amz-sdk-request", "attempt=1")],
     json.dumps({"FunctionName": "f1", "Runtime": "python3.12",
                 "Role": "arn:aws:iam::123456789012:role/r", "Handler": "a.h",
                 "Code": {"ZipFile": "UEsDBBQAAAAAAGsIe11"}}).encode(), None),
    ("untag_repeated_keys", "DELETE",
     f"/2017-03-31/tags/{ARN}?tagKeys=team%20name&tagKeys=b&tagKeys=a",
     [], [("User-Agent", "aws-cli/1.29")], b"", None),
    ("get_function_empty_body", "GET", "/2015-03-31/functions/my-func?Qualifier=1",
     [], [], b"", None),
    ("list_functions_no_query_value", "GET", "/2015-03-31/functions/?MaxItems=10&Marker=",
     [], [], b"", None),
    ("invoke_session_token", "POST", "/2015-03-31/functions/f1%3Aprod/invocations",
     [("X-Amz-Invocation-Type", "Event"), ("X-Custom-Spaced", "  a   b \t c  ")],
     [], b'{"k": "v w"}', TOKEN),
    # Headers as the JS SDK v3 sends them, x-amz-content-sha256 included (botocore then uses the
    # header value as the payload hash instead of hashing the body itself).
    ("invoke_js_style_content_sha256", "POST", "/2015-03-31/functions/f1%3Aprod/invocations",
     [("x-amz-log-type", "Tail"), ("content-type", "application/octet-stream"),
      ("content-length", "7"), ("x-amz-user-agent", "aws-sdk-js/3.1163.0"),
      ("amz-sdk-invocation-id", "6904fcc8-1b2c"), ("amz-sdk-request", "attempt=1; max=1"),
      ("x-amz-content-sha256", hashlib.sha256(b'{"a":1}').hexdigest())],
     [("user-agent", "aws-sdk-js/3.1163.0 ua/2.1"), ("connection", "keep-alive")],
     b'{"a":1}', None),
    ("invoke_unsigned_payload", "POST", "/2015-03-31/functions/f1/invocations",
     [("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD")], [], b'{"a":1}', None),
]


def cpp_str(s):
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\n":
            out.append("\\n")
        elif 32 <= ord(ch) < 127:
            out.append(ch)
        else:
            out.append("\\x%02x" % ord(ch))
    return '"' + "".join(out) + '"'


def signed_request(method, target, signed, body, token):
    creds = Credentials(ACCESS_KEY, SECRET, token)
    req = AWSRequest(method=method, url=ENDPOINT + target, data=body, headers=dict(signed))
    auth = SigV4Auth(creds, "lambda", REGION)
    with mock.patch("botocore.auth.datetime") as dt:
        dt.datetime.utcnow.return_value = WHEN
        auth.add_auth(req)
        canonical = auth.canonical_request(req)
    return req, canonical


class _Captured(Exception):
    pass


def client_request(token):
    """Invoke through a real boto3 client and capture the request it would send.

    This runs the whole client pipeline (serializer, handlers, the signer the client picks: with
    python3-awscrt installed that is botocore.crt.auth, i.e. the AWS CRT's C signer) and stops
    in before-send, so no server is needed."""
    import boto3

    captured = {}

    def stop(request, **_):
        captured["request"] = request
        raise _Captured()

    session = boto3.session.Session(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET,
                                    aws_session_token=token, region_name=REGION)
    client = session.client("lambda", endpoint_url=ENDPOINT)
    client.meta.events.register("before-send.lambda.Invoke", stop)

    class Frozen(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return WHEN

    # Both signers (botocore.auth and botocore.crt.auth) read datetime.datetime.utcnow().
    with mock.patch("datetime.datetime", Frozen):
        try:
            client.invoke(FunctionName="arn:aws:lambda:us-east-1:123456789012:function:f1",
                          Qualifier="$LATEST", LogType="Tail", ClientContext="eyJhIjoxfQ==",
                          Payload=b'{"a":1}')
        except _Captured:
            pass
    r = captured["request"]
    headers = [(k, v.decode() if isinstance(v, bytes) else v) for k, v in r.headers.items()]
    target = r.url[len(ENDPOINT):]
    return target, headers, r.body


def write_corpus(directory):
    # Field layout documented in sigv4_fuzz.cpp.
    for name, method, target, signed, _, body, token in CASES:
        req, _ = signed_request(method, target, signed, body, token)
        h = {k.lower(): v for k, v in req.headers.items()}
        fields = [method, target, h.get("authorization", ""), h.get("x-amz-date", ""),
                  h.get("x-amz-content-sha256", "")]
        with open(os.path.join(directory, name), "wb") as f:
            f.write("\n".join(fields).encode() + b"\n" + body)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--corpus":
        write_corpus(sys.argv[2])
        return 0
    print(f"// Generated by gen_sigv4_vectors.py with botocore {botocore.__version__}.")
    print(f"constexpr std::int64_t kVectorTime = {int(WHEN.replace(tzinfo=datetime.timezone.utc).timestamp())};"
          f"  // {WHEN.isoformat()}Z")
    print("const std::vector<Vector>& botocore_vectors() {")
    print("  static const std::vector<Vector> kVectors = {")
    for name, method, target, signed, unsigned, body, token in CASES:
        req, canonical = signed_request(method, target, signed, body, token)
        headers = [("Host", HOST)] + list(req.headers.items()) + unsigned
        print("      Vector{")
        print(f"          .name = {cpp_str(name)},")
        print(f"          .method = {cpp_str(method)},")
        print(f"          .target = {cpp_str(target)},")
        print("          .headers = {")
        for k, v in headers:
            print(f"              {{{cpp_str(k)}, {cpp_str(v)}}},")
        print("          },")
        print(f"          .body = {cpp_str(body.decode())},")
        lines = canonical.split("\n")
        print(f"          .canonical_uri = {cpp_str(lines[1])},")
        print(f"          .canonical_query = {cpp_str(lines[2])},")
        print("      },")
    target, headers, body = client_request("TOKEN123")
    assert any(k.lower() == "x-amz-date" and v == WHEN.strftime("%Y%m%dT%H%M%SZ")
               for k, v in headers), "the client's clock was not pinned"
    path, _, query = target.partition("?")
    print("      // The full boto3 client (real handlers and its own signer choice), captured.")
    print("      Vector{")
    print(f"          .name = {cpp_str('boto3_client_invoke')},")
    print(f"          .method = {cpp_str('POST')},")
    print(f"          .target = {cpp_str(target)},")
    print("          .headers = {")
    for k, v in headers:
        print(f"              {{{cpp_str(k)}, {cpp_str(v)}}},")
    print("          },")
    print(f"          .body = {cpp_str(body.decode())},")
    print(f"          .canonical_uri = {cpp_str(quote(path, safe='/~'))},")
    print(f"          .canonical_query = {cpp_str(query)},")
    print("      },")
    print("  };")
    print("  return kVectors;")
    print("}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
