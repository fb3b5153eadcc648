"""SigV4 at the edge of a real `lambent serve` (LAMBDA-COMPAT.md §8): what
boto3 and the AWS CLI sign is accepted; a wrong secret, an unknown key, a
request changed after signing, a stale date and a missing signature are
refused with 403 and run nothing.
"""
import datetime
import json
import os
import urllib.error
import urllib.request
from unittest import mock

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

FUNCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "functions")


def control_files():
    with open(os.path.join(FUNCS, "bash-control", "bootstrap")) as f:
        return {"bootstrap": (f.read(), 0o755)}


def client_with(lambent, key, secret, service="lambda"):
    return boto3.client(service, endpoint_url=lambent.endpoint, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 1}))


def error_of(excinfo):
    r = excinfo.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture(scope="module")
def fn(lambent):
    lambent.create("guarded", control_files())
    return "guarded"


def invocations(lambent, name):
    """How many invokes the function's log shows (START lines)."""
    logs = lambent.boto3("logs")
    try:
        events = logs.filter_log_events(logGroupName="/aws/lambda/" + name)["events"]
    except ClientError:
        return 0
    return sum(1 for e in events if e["message"].startswith("START RequestId:"))


def test_correct_signature_is_accepted(lambent, fn):
    r, body = lambent.invoke(fn, b'{"ok":1}')
    assert body == b'{"ok":1}'


def test_wrong_secret_is_invalid_signature(lambent, fn):
    before = invocations(lambent, fn)
    # One character changed (a random secret may already end in "x": it did once, in CI).
    wrong = lambent.secret_key[:-1] + ("y" if lambent.secret_key.endswith("x") else "x")
    assert wrong != lambent.secret_key
    bad = client_with(lambent, lambent.access_key, wrong)
    for call in (lambda: bad.list_functions(),
                 lambda: bad.get_function(FunctionName=fn),
                 lambda: bad.invoke(FunctionName=fn, Payload=b"{}"),
                 lambda: bad.delete_function(FunctionName=fn)):
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e) == ("InvalidSignatureException", 403)
    assert invocations(lambent, fn) == before
    lambent.boto3().get_function(FunctionName=fn)  # not deleted


def test_unknown_access_key_is_unrecognized_client(lambent, fn):
    bad = client_with(lambent, "LKIAUNKNOWNUNKNOWN00", lambent.secret_key)
    with pytest.raises(ClientError) as e:
        bad.list_functions()
    assert error_of(e) == ("UnrecognizedClientException", 403)
    with pytest.raises(ClientError) as e:
        bad.invoke(FunctionName=fn, Payload=b"{}")
    assert error_of(e) == ("UnrecognizedClientException", 403)


def test_body_changed_after_signing_is_refused(lambent, fn):
    client = lambent.boto3()
    before = invocations(lambent, fn)

    def tamper(request, **_):
        request.body = b'{"evil":1}'
        request.headers["Content-Length"] = str(len(request.body))

    client.meta.events.register("before-send.lambda.Invoke", tamper)
    with pytest.raises(ClientError) as e:
        client.invoke(FunctionName=fn, Payload=b'{"good":1}')
    assert error_of(e) == ("InvalidSignatureException", 403)
    assert invocations(lambent, fn) == before


def test_path_changed_after_signing_is_refused(lambent, fn):
    lambent.create("other", control_files())
    client = lambent.boto3()

    def retarget(request, **_):
        request.url = request.url.replace("/functions/other", "/functions/" + fn)

    client.meta.events.register("before-send.lambda.DeleteFunction", retarget)
    with pytest.raises(ClientError) as e:
        client.delete_function(FunctionName="other")
    assert error_of(e) == ("InvalidSignatureException", 403)
    lambent.boto3().get_function(FunctionName=fn)  # still there


def test_stale_date_is_refused(lambent, fn):
    real = datetime.datetime

    class Past(real):
        @classmethod
        def utcnow(cls):
            return real.utcnow() - datetime.timedelta(minutes=20)

        @classmethod
        def now(cls, tz=None):
            return real.now(tz) - datetime.timedelta(minutes=20)

    client = lambent.boto3()
    with mock.patch("botocore.auth.datetime.datetime", Past):
        with pytest.raises(ClientError) as e:
            client.list_functions()
    assert error_of(e) == ("InvalidSignatureException", 403)
    client.list_functions()  # a fresh date works


def test_signature_for_another_service_is_refused(lambent, fn):
    client = lambent.boto3()
    client._request_signer._signing_name = "s3"  # a valid signature, scoped to another service
    sent = []
    client.meta.events.register("before-send.lambda.ListFunctions",
                                lambda request, **_: sent.append(request.headers["Authorization"]))
    with pytest.raises(ClientError) as e:
        client.list_functions()
    assert b"/us-east-1/s3/aws4_request" in sent[0]
    assert error_of(e) == ("InvalidSignatureException", 403)


@pytest.mark.parametrize("method,path", [
    ("GET", "/2015-03-31/functions"),
    ("GET", "/2015-03-31/functions/guarded"),
    ("POST", "/2015-03-31/functions/guarded/invocations"),
    ("DELETE", "/2015-03-31/functions/guarded"),
    ("GET", "/2016-08-19/account-settings"),
])
def test_missing_signature_is_403(lambent, fn, method, path):
    before = invocations(lambent, fn)
    req = urllib.request.Request(lambent.endpoint + path, method=method,
                                 data=b"{}" if method == "POST" else None)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=30)
    assert e.value.code == 403
    assert e.value.headers.get("x-amzn-ErrorType")
    body = json.loads(e.value.read())
    assert body.get("message") or body.get("Message")
    assert invocations(lambent, fn) == before
    lambent.boto3().get_function(FunctionName=fn)


def test_garbage_authorization_header_is_403(lambent, fn):
    req = urllib.request.Request(lambent.endpoint + "/2015-03-31/functions",
                                 headers={"Authorization": "AWS4-HMAC-SHA256 nonsense",
                                          "X-Amz-Date": "20200101T000000Z"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=30)
    assert e.value.code == 403


def test_logs_api_checks_signatures_too(lambent, fn):
    lambent.invoke(fn, b"{}")
    bad = client_with(lambent, lambent.access_key, "wrong-secret", service="logs")
    with pytest.raises(ClientError) as e:
        bad.filter_log_events(logGroupName="/aws/lambda/" + fn)
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_aws_cli_with_wrong_secret(lambent, fn):
    env_secret = lambent.secret_key
    try:
        lambent.secret_key = "x" * len(env_secret)
        code, _, err = lambent.aws("lambda", "list-functions", check=False)
    finally:
        lambent.secret_key = env_secret
    assert code != 0
    assert "An error occurred (InvalidSignatureException) when calling the ListFunctions operation" in err


def send_head_only(lambent, path, length, headers=b""):
    """A POST that declares `length` body bytes and sends none of them: the answer must come
    from the head alone (before, the daemon waited to buffer the whole body)."""
    import socket
    with socket.create_connection(("127.0.0.1", lambent.port), timeout=10) as s:
        s.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: "
                  b"application/json\r\n" + headers + b"Content-Length: " +
                  str(length).encode() + b"\r\n\r\n")
        out = b""
        while True:
            chunk = s.recv(65536)  # socket.timeout here means the daemon waited for the body
            if not chunk:
                break
            out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    error = [l.split(b":", 1)[1].strip() for l in head.split(b"\r\n")
             if l.lower().startswith(b"x-amzn-errortype:")]
    return int(head.split()[1]), error[0].decode() if error else None, json.loads(body)


@pytest.mark.parametrize("path", ["/2015-03-31/functions/guarded/invocations",
                                  "/2015-03-31/functions"])
def test_a_large_unsigned_body_is_refused_from_its_head(lambent, fn, path):
    status, error, body = send_head_only(lambent, path, 5_000_000)
    assert (status, error) == (403, "MissingAuthenticationTokenException"), body
    now = datetime.datetime.now(datetime.timezone.utc)
    status, error, body = send_head_only(
        lambent, path, 5_000_000,
        f"Authorization: AWS4-HMAC-SHA256 Credential=AKIDUNKNOWN/{now:%Y%m%d}/us-east-1/lambda/"
        f"aws4_request, SignedHeaders=host;x-amz-date, Signature={'0' * 64}\r\n"
        f"X-Amz-Date: {now:%Y%m%dT%H%M%SZ}\r\n".encode())
    assert (status, error) == (403, "UnrecognizedClientException"), body


def test_a_body_over_the_route_limit_is_refused_from_its_head(lambent, fn):
    status, error, body = send_head_only(lambent, "/2015-03-31/functions/guarded/invocations",
                                         6 * 1024 * 1024 + 1)
    assert (status, error) == (413, "RequestTooLargeException"), body
    # Invoke's 6 MB is for Invoke only, not for a function whose name starts with the word.
    status, error, body = send_head_only(
        lambent, "/2015-03-31/functions/invocations-worker/code", 6 * 1024 * 1024 + 1)
    assert (status, error) == (403, "MissingAuthenticationTokenException"), body


def test_a_large_signed_body_passes_the_head_check(lambent, fn):
    files = dict(control_files(), padding=os.urandom(300_000))  # a zip that does not compress
    lambent.create("large-upload", files)
    r, body = lambent.invoke("large-upload", b'{"after":"upload"}')
    assert r["StatusCode"] == 200 and "FunctionError" not in r, body
    lambent.boto3().delete_function(FunctionName="large-upload")
