"""Bytes Lambent does not control — a function's output and Runtime API headers, names and
values in Lambda API requests — get a clear answer and change nothing: not UTF-8, not the type
asked for, or refused after part of the request was already handled."""
import base64
import json
import os
import socket

import pytest
from botocore.exceptions import ClientError

from conftest import Lambent, make_zip

ROLE = "arn:aws:iam::000000000000:role/test"


@pytest.fixture(scope="module")
def open_lambent():
    """Without SigV4, so that raw requests (bytes no SDK would send) reach the handlers."""
    server = Lambent(extra_args=["--auth", "none"])
    yield server
    server.close()


def python_bootstrap(body):
    """A custom runtime in Python: `body` runs with `api`, `rid` and urllib.request in scope."""
    return ("#!/usr/bin/python3\n"
            "import os, sys, socket, urllib.request\n"
            "api = 'http://' + os.environ['AWS_LAMBDA_RUNTIME_API'] + '/2018-06-01/runtime'\n"
            + body, 0o755)


def raw(server, request, timeout=10):
    """Sends `request` bytes on a new connection; the answer's status and JSON body."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as s:
        s.sendall(request)
        out = b""
        while b"\r\n\r\n" not in out or len(out.split(b"\r\n\r\n", 1)[1]) < length_of(out):
            chunk = s.recv(65536)
            assert chunk, f"connection closed without a complete answer: {out!r}"
            out += chunk
    head, body = out.split(b"\r\n\r\n", 1)
    return int(head.split()[1]), json.loads(body)


def length_of(answer):
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def test_output_that_is_not_utf8_is_read_back_replaced(open_lambent):
    client, logs = open_lambent.boto3(), open_lambent.boto3("logs")
    client.create_function(
        FunctionName="latin1", Runtime="provided.al2023", Handler="x", Role=ROLE,
        Code={"ZipFile": make_zip({"bootstrap": python_bootstrap(
            "while True:\n"
            "    r = urllib.request.urlopen(api + '/invocation/next')\n"
            "    rid = r.headers['Lambda-Runtime-Aws-Request-Id']; r.read()\n"
            "    sys.stdout.buffer.write(b'caf\\xe9 \\xff\\n'); sys.stdout.flush()\n"
            "    urllib.request.urlopen(urllib.request.Request(\n"
            "        api + '/invocation/' + rid + '/response', data=b'1', method='POST')).read()\n")})})
    r, body = open_lambent.invoke("latin1")
    assert body == b"1", body
    group = "/aws/lambda/latin1"
    stream = logs.describe_log_streams(logGroupName=group)["logStreams"][0]["logStreamName"]
    got = [e["message"] for e in logs.get_log_events(logGroupName=group, logStreamName=stream,
                                                     startFromHead=True)["events"]]
    assert "caf\ufffd \ufffd" in got, got
    got = [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]]
    assert "caf\ufffd \ufffd" in got, got


@pytest.mark.parametrize("request_bytes,status", [
    (b"POST /2015-03-31/functions/nf/invocations?Qualifier=%FF HTTP/1.1\r\nHost: x\r\n"
     b"Content-Length: 2\r\n\r\n{}", 400),
    (b"POST /2015-03-31/functions/%FF/invocations HTTP/1.1\r\nHost: x\r\n"
     b"Content-Length: 2\r\n\r\n{}", 400),
    (b"POST /2015-03-31/functions/nf/invocations HTTP/1.1\r\nHost: x\r\n"
     b"X-Amz-Invocation-Type: \xff\r\nContent-Length: 2\r\n\r\n{}", 400),
    (b"GET /2015-03-31/functions/%FF HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET /2015-03-31/functions/nf/aliases/%FF HTTP/1.1\r\nHost: x\r\n\r\n", 404),
    (b"GET /2015-03-31/functions/nf?Qualifier=%FF HTTP/1.1\r\nHost: x\r\n\r\n", 404),
], ids=["invoke-qualifier", "invoke-name", "invoke-type", "get-name", "get-alias",
        "get-qualifier"])
def test_names_that_are_not_utf8_get_an_error_answer(open_lambent, request_bytes, status):
    # The answers quote the bad value; they used to throw while being written (no answer on
    # Invoke, 500 on the control plane).
    if "nf" not in [f["FunctionName"] for f in open_lambent.boto3().list_functions()["Functions"]]:
        open_lambent.create("nf", {"bootstrap": ("#!/bin/sh\nexit 0\n", 0o755)})
    got, body = raw(open_lambent, request_bytes)
    assert got == status, body
    assert body.get("message") or body.get("Message"), body


def test_init_error_type_that_is_not_utf8_reaches_the_caller(open_lambent):
    open_lambent.create("init-latin1", {"bootstrap": python_bootstrap(
        "host, port = os.environ['AWS_LAMBDA_RUNTIME_API'].split(':')\n"
        "s = socket.create_connection((host, int(port)))\n"
        "s.sendall(b'POST /2018-06-01/runtime/init/error HTTP/1.1\\r\\nHost: x\\r\\n'\n"
        "          b'Lambda-Runtime-Function-Error-Type: Bad\\xffType\\r\\n'\n"
        "          b'Content-Length: 0\\r\\n\\r\\n')\n"
        "s.recv(4096)\n"
        "raise SystemExit(1)\n")})
    r, body = open_lambent.invoke("init-latin1")
    assert r.get("FunctionError") == "Unhandled", body
    assert json.loads(body)["errorType"] == "Bad\ufffdType", body


def package_count(server):
    return sum(len(os.listdir(os.path.join(server.data_dir, d))) for d in ("blobs", "tasks"))


def test_refused_create_stores_no_package(open_lambent):
    before = package_count(open_lambent)
    body = {"FunctionName": "refused", "Runtime": "provided.al2023", "Handler": "x",
            "Role": ROLE, "Publish": "yes",
            "Code": {"ZipFile": base64.b64encode(make_zip({"bootstrap": "refused"})).decode()}}
    status, out, error = open_lambent.lambda_api("POST", "/2015-03-31/functions", body)
    assert (status, error) == (400, "ValidationException"), out
    assert package_count(open_lambent) == before


def test_update_code_refuses_a_publish_that_is_not_a_boolean(open_lambent):
    created = open_lambent.create("pub-check", {"bootstrap": ("#!/bin/sh\nexit 0\n", 0o755)})
    before = package_count(open_lambent)
    body = {"ZipFile": base64.b64encode(make_zip({"bootstrap": "other"})).decode(),
            "Publish": "yes"}
    status, out, error = open_lambent.lambda_api(
        "PUT", "/2015-03-31/functions/pub-check/code", body)
    assert (status, error) == (400, "ValidationException"), out
    cfg = open_lambent.boto3().get_function_configuration(FunctionName="pub-check")
    assert cfg["CodeSha256"] == created["CodeSha256"]
    assert cfg["RevisionId"] == created["RevisionId"]
    assert package_count(open_lambent) == before


@pytest.mark.parametrize("context", [b"[1,2]", b"123", b'"text"', b" null"])
def test_client_context_must_be_a_json_object(open_lambent, context):
    if "cc" not in [f["FunctionName"] for f in open_lambent.boto3().list_functions()["Functions"]]:
        open_lambent.create("cc", {"bootstrap": ("#!/bin/sh\nexit 0\n", 0o755)})
    with pytest.raises(ClientError) as e:
        open_lambent.invoke("cc", ClientContext=base64.b64encode(context).decode())
    err = e.value.response
    assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == \
        ("InvalidParameterValueException", 400)


@pytest.fixture
def budget_lambent():
    """1 MiB of request bodies received at once (--body-budget), without SigV4."""
    server = Lambent(extra_args=["--auth", "none", "--body-budget", "1"])
    yield server
    server.close()


def test_bodies_over_the_budget_wait_their_turn(budget_lambent):
    # Bodies being received (not yet checked by anything) are counted as they arrive, across
    # connections; while the budget is full a large body is answered 429 from its head, as a
    # throttle the SDKs retry.
    budget_lambent.create("echo", {"bootstrap": python_bootstrap(
        "while True:\n"
        "    r = urllib.request.urlopen(api + '/invocation/next')\n"
        "    rid = r.headers['Lambda-Runtime-Aws-Request-Id']\n"
        "    urllib.request.urlopen(api + '/invocation/' + rid + '/response', r.read())\n")})

    def head(length):
        return (b"POST /2015-03-31/functions/echo/invocations HTTP/1.1\r\nHost: x\r\n"
                b"Content-Length: %d\r\n\r\n" % length)

    def refused_from_head():
        """A new 700-KB request's head alone: its answer if one comes at once, else None."""
        with socket.create_connection(("127.0.0.1", budget_lambent.port), timeout=0.5) as s:
            s.sendall(head(700_000))
            try:
                return s.recv(65536)
            except socket.timeout:
                return None

    big = b'"' + b"x" * 1_499_998 + b'"'
    with socket.create_connection(("127.0.0.1", budget_lambent.port), timeout=10) as first:
        first.sendall(head(len(big)) + big[:1_200_000])  # over the 1 MiB budget, but alone
        answer = None
        for _ in range(40):  # until the daemon has read those bytes
            answer = refused_from_head()
            if answer:
                break
        assert answer and answer.startswith(b"HTTP/1.1 429 "), answer
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["Reason"] == "CallerRateLimitExceeded"
        first.sendall(big[1_200_000:])
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < len(big):
            chunk = first.recv(1 << 20)
            assert chunk, answer[:300]
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert answer.split(b"\r\n\r\n", 1)[1] == big
    # Its body complete, the first gave its share back.
    event = b'"' + b"y" * 699_998 + b'"'
    assert raw(budget_lambent, head(len(event)) + event) == (200, event[1:-1].decode())


def answers_until_closed(server, request, timeout=10):
    """Sends `request` bytes; every status code answered before the daemon closed."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as s:
        s.sendall(request)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return [int(line.split()[1]) for line in out.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]


@pytest.mark.parametrize("codings", [
    [b"gzip"], [b"chunked, gzip"], [b"identity"], [b"xchunked"], [b""], [b"gzip, chunked"],
    [b"chunked", b"chunked"]])
def test_transfer_codings_other_than_chunked_are_refused_not_smuggled(open_lambent, codings):
    # Framed as bodiless, the body of such a request was served as a second request.
    inner = b"GET /2015-03-31/functions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    head = b"POST /2015-03-31/functions/nothing-here/invocations HTTP/1.1\r\nHost: x\r\n"
    head += b"".join(b"Transfer-Encoding: " + c + b"\r\n" for c in codings)
    assert answers_until_closed(open_lambent, head + b"\r\n" + inner) == [400]


def test_a_chunked_body_in_any_case_is_read(open_lambent):
    body = b'{"a":1}'
    request = (b"POST /2015-03-31/functions/nothing-here/invocations HTTP/1.1\r\nHost: x\r\n"
               b"Transfer-Encoding:  Chunked \r\nConnection: close\r\n\r\n"
               + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
    assert answers_until_closed(open_lambent, request) == [404]
