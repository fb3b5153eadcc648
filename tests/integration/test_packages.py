"""Deployment packages through boto3 against a real `lambent serve`: a zip is
unpacked safely (ARCHITECTURE.md "Errors and limits"; LAMBDA-COMPAT.md §6.1).
Every bad package is refused with InvalidParameterValueException and leaves
nothing behind: no blob, no unpacked tree, no temporary file, no function,
and an UpdateFunctionCode that is refused leaves the function as it was.
"""
import io
import json
import os
import zipfile

import pytest
from botocore.exceptions import ClientError

from conftest import make_zip

FUNCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "functions")
ROLE = "arn:aws:iam::000000000000:role/test"


def control_bootstrap():
    with open(os.path.join(FUNCS, "bash-control", "bootstrap")) as f:
        return f.read()


def raw_zip(entries):
    """entries: [(name, bytes, unix mode incl. file type)] written as given (no sanitising)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.create_system = 3
            info.external_attr = mode << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    raw = buf.getvalue()
    names = zipfile.ZipFile(io.BytesIO(raw)).namelist()
    assert names == [e[0] for e in entries], names  # the hostile names really are in the zip
    return raw


BOOT = ("bootstrap", b"#!/bin/sh\nexit 0\n", 0o100755)


def over_250mb_unpacked(files=1):
    """251 MB of zeros (a few hundred KB zipped), in one file or spread over several."""
    buf = io.BytesIO()
    chunk = b"\0" * (1 << 20)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(files):
            info = zipfile.ZipInfo("bootstrap" if i == 0 else f"part{i}",
                                   date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o100755 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with z.open(info, "w", force_zip64=True) as f:
                for _ in range(-(-251 // files)):
                    f.write(chunk)
    return buf.getvalue()


def incompressible_zip():
    return make_zip({"bootstrap": (b"#!/bin/sh\nexit 0\n", 0o755), "blob": os.urandom(20000)})


def corrupt_data():
    """A well-formed directory whose compressed data fails its CRC."""
    good = bytearray(make_zip({"bootstrap": (b"#!/bin/sh\n" + b"echo hello\n" * 200, 0o755)}))
    start = 30 + len("bootstrap") + 10  # inside the first entry's compressed data
    for i in range(start, start + 16):
        good[i] ^= 0xFF
    return bytes(good)


BAD_PACKAGES = {
    "absolute-path": lambda: raw_zip([BOOT, ("/tmp/lambent-itest-evil", b"x", 0o100644)]),
    "dot-dot": lambda: raw_zip([BOOT, ("../evil", b"x", 0o100644)]),
    "nested-dot-dot": lambda: raw_zip([BOOT, ("a/b/../../../evil", b"x", 0o100644)]),
    "symlink-absolute": lambda: raw_zip([BOOT, ("passwd", b"/etc/passwd", 0o120777)]),
    "symlink-dot-dot": lambda: raw_zip([BOOT, ("up", b"../../..", 0o120777)]),
    "file-through-symlink": lambda: raw_zip([BOOT, ("d", b"/tmp", 0o120777),
                                             ("d/lambent-itest-evil", b"x", 0o100644)]),
    "over-250mb-unpacked": over_250mb_unpacked,
    "over-250mb-in-small-files": lambda: over_250mb_unpacked(files=32),
    "not-a-zip": lambda: b"this is not a zip file at all" * 10,
    "empty": lambda: b"",
    "truncated": lambda: incompressible_zip()[:10000],
    "no-central-directory": lambda: (lambda z: z[:z.index(b"PK\x01\x02")])(incompressible_zip()),
    "corrupt-data": corrupt_data,
}


def stored_files(lambent):
    out = set()
    for sub in ("blobs", "tasks", "tmp"):
        root = os.path.join(lambent.data_dir, sub)
        for dirpath, dirnames, filenames in os.walk(root):
            for n in dirnames + filenames:
                out.add(os.path.relpath(os.path.join(dirpath, n), lambent.data_dir))
    return out


def assert_refused(excinfo):
    err = excinfo.value.response
    assert err["Error"]["Code"] == "InvalidParameterValueException", err["Error"]
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.fixture(scope="module")
def bad_zips():
    return {k: f() for k, f in BAD_PACKAGES.items()}


@pytest.mark.parametrize("kind", list(BAD_PACKAGES))
def test_bad_package_on_create_is_refused_and_leaves_nothing(lambent, bad_zips, kind):
    client = lambent.boto3()
    before = stored_files(lambent)
    with pytest.raises(ClientError) as e:
        client.create_function(FunctionName="bad-" + kind, Runtime="provided.al2023", Handler="x",
                               Role=ROLE, Code={"ZipFile": bad_zips[kind]})
    assert_refused(e)
    assert stored_files(lambent) == before
    with pytest.raises(ClientError) as e:
        client.get_function(FunctionName="bad-" + kind)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert not os.path.exists("/tmp/lambent-itest-evil")


@pytest.fixture(scope="module")
def victim(lambent):
    conf = lambent.create("victim", {"bootstrap": (control_bootstrap(), 0o755)})
    return conf


@pytest.mark.parametrize("kind", list(BAD_PACKAGES))
def test_bad_package_on_update_is_refused_and_changes_nothing(lambent, bad_zips, victim, kind):
    client = lambent.boto3()
    before = stored_files(lambent)
    with pytest.raises(ClientError) as e:
        client.update_function_code(FunctionName="victim", ZipFile=bad_zips[kind])
    assert_refused(e)
    assert stored_files(lambent) == before
    conf = client.get_function_configuration(FunctionName="victim")
    assert conf["CodeSha256"] == victim["CodeSha256"]
    assert conf["RevisionId"] == victim["RevisionId"]
    r, body = lambent.invoke("victim", b'{"still":"works"}')
    assert "FunctionError" not in r, body
    assert body == b'{"still":"works"}'


def test_base64_that_is_not_base64_is_refused(lambent):
    # ZipFile is a blob that botocore always encodes: rewrite the body before signing.
    client = lambent.boto3()
    before = stored_files(lambent)

    def mangle(request, **_):
        body = json.loads(request.body)
        body["Code"]["ZipFile"] = "%%% not base64 %%%"
        request.data = json.dumps(body).encode()
        request.headers["Content-Length"] = str(len(request.data))

    client.meta.events.register_first("before-sign.lambda.CreateFunction", mangle)
    with pytest.raises(ClientError) as e:
        client.create_function(FunctionName="bad-base64", Runtime="provided.al2023", Handler="x",
                               Role=ROLE, Code={"ZipFile": make_zip({"bootstrap": "x"})})
    assert_refused(e)
    assert stored_files(lambent) == before


def test_executable_bits_and_inner_symlinks_are_kept(lambent):
    boot = """#!/bin/bash
API=http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation
H=$(mktemp)
while true; do
  curl -sS -o /dev/null -D $H $API/next
  ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id $H | tr -d '[:space:]' | cut -d: -f2)
  cd "$LAMBDA_TASK_ROOT"
  OUT=$(printf '{"tool":"%s","data":"%s","bootstrap":"%s","link":"%s","tool_runs":"%s"}' \\
    "$(stat -c %a bin/tool.sh)" "$(stat -c %a data.txt)" "$(stat -c %a bootstrap)" \\
    "$(readlink link-to-data)" "$(bin/tool.sh)")
  curl -sS -o /dev/null -X POST $API/$ID/response --data-binary "$OUT"
done
"""
    z = raw_zip([("bin/", b"", 0o040755),
                 ("bin/tool.sh", b"#!/bin/sh\necho tool-ok\n", 0o100750),
                 ("bootstrap", boot.encode(), 0o100755),
                 ("data.txt", b"data", 0o100644),
                 ("link-to-data", b"data.txt", 0o120777)])
    client = lambent.boto3()
    client.create_function(FunctionName="modes", Runtime="provided.al2023", Handler="x", Role=ROLE,
                           Code={"ZipFile": z})
    r, body = lambent.invoke("modes", b"{}")
    assert "FunctionError" not in r, body
    got = json.loads(body)
    assert int(got["tool"], 8) & 0o111, got
    assert int(got["bootstrap"], 8) & 0o111, got
    assert not int(got["data"], 8) & 0o111, got
    assert got["link"] == "data.txt"
    assert got["tool_runs"] == "tool-ok"


SHA_BOOTSTRAP = r"""#!/bin/bash
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation"
while true; do
  curl -sS -D /tmp/head -o /dev/null "$api/next"
  id=$(grep -i '^Lambda-Runtime-Aws-Request-Id:' /tmp/head | tr -d '\r' | cut -d' ' -f2)
  sum=$(sha256sum "$LAMBDA_TASK_ROOT/blob" | cut -d' ' -f1)
  curl -sS -o /dev/null "$api/$id/response" -d "\"$sum\""
done
"""


@pytest.mark.parametrize("escaped_slashes", [False, True], ids=["plain", "escaped-slashes"])
def test_a_large_package_arrives_whole(lambent, escaped_slashes):
    # A body over 1 MiB has its long plain strings (the base64) taken out before the JSON
    # parser sees it; one whose base64 has JSON escapes ("\/", as some encoders write) is
    # parsed whole. Both must deliver the same bytes.
    import hashlib
    client = lambent.boto3()
    blob = os.urandom(3 << 20)
    name = "large-package-" + ("escaped" if escaped_slashes else "plain")

    def escape(request, **_):
        text = request.body.decode() if isinstance(request.body, bytes) else request.body
        assert len(text) > 4 << 20 and "/" in json.loads(text)["Code"]["ZipFile"]
        request.data = text.replace("/", "\\/").encode()
        request.headers["Content-Length"] = str(len(request.data))

    if escaped_slashes:
        client.meta.events.register_first("before-sign.lambda.CreateFunction", escape)
    client.create_function(FunctionName=name, Runtime="provided.al2023", Handler="x", Role=ROLE,
                           Code={"ZipFile": make_zip({"bootstrap": (SHA_BOOTSTRAP, 0o755),
                                                      "blob": blob})})
    r = client.invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in r
    assert json.loads(r["Payload"].read()) == hashlib.sha256(blob).hexdigest()


def test_same_package_twice_is_stored_once(lambent):
    client = lambent.boto3()
    z = make_zip({"bootstrap": (control_bootstrap(), 0o755), "dedup-marker": "1"})
    client.create_function(FunctionName="dedup-a", Runtime="provided.al2023", Handler="x",
                           Role=ROLE, Code={"ZipFile": z})
    before = stored_files(lambent)
    client.create_function(FunctionName="dedup-b", Runtime="provided.al2023", Handler="x",
                           Role=ROLE, Code={"ZipFile": z})
    assert stored_files(lambent) == before


def test_update_code_dry_run_stores_nothing(lambent, victim):
    client = lambent.boto3()
    before = stored_files(lambent)
    z = make_zip({"bootstrap": (control_bootstrap(), 0o755), "dry-run-marker": "1"})
    r = client.update_function_code(FunctionName="victim", ZipFile=z, DryRun=True)
    assert r["CodeSha256"] != victim["CodeSha256"]  # what it would be
    conf = client.get_function_configuration(FunctionName="victim")
    assert conf["CodeSha256"] == victim["CodeSha256"]
    assert conf["RevisionId"] == victim["RevisionId"]
    assert stored_files(lambent) == before
