"""The control plane through the real boto3 and AWS CLI against a real
`lambent serve` (LAMBDA-COMPAT.md §1): the create → get → list → update →
invoke → delete cycle, validation, FunctionName forms, RevisionId,
pagination and GetAccountSettings.
"""
import base64
import hashlib
import json
import os
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import make_zip

FUNCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "functions")
ROLE = "arn:aws:iam::000000000000:role/test"
ARN = "arn:aws:lambda:us-east-1:000000000000:function:"


def control_files():
    with open(os.path.join(FUNCS, "bash-control", "bootstrap")) as f:
        return {"bootstrap": (f.read(), 0o755)}


def reply_zip(text):
    """A bash custom runtime that answers every invoke with the JSON string `text`."""
    boot = ("#!/bin/bash\nAPI=http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation\n"
            "H=$(mktemp)\nwhile true; do\n"
            "  curl -sS -o /dev/null -D $H $API/next\n"
            "  ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id $H | tr -d '[:space:]' | cut -d: -f2)\n"
            f"  curl -sS -o /dev/null -X POST $API/$ID/response --data-binary '\"{text}\"'\n"
            "done\n")
    return make_zip({"bootstrap": (boot, 0o755)})


def error_of(excinfo):
    r = excinfo.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Message"]


def b64sha(data):
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def whoami(lambent, name):
    r, body = lambent.invoke(name, b'{"action":"whoami"}')
    assert "FunctionError" not in r, body
    return json.loads(body)


# ---- the whole cycle ----

def test_cycle_with_boto3(lambent):
    client = lambent.boto3()
    zip_v1 = reply_zip("v1")
    created = client.create_function(
        FunctionName="cycle", Runtime="provided.al2023", Handler="x.y", Role=ROLE,
        Code={"ZipFile": zip_v1}, Description="d", Timeout=7, MemorySize=256,
        Environment={"Variables": {"AA": "1"}})
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["FunctionName"] == "cycle"
    assert created["FunctionArn"] == ARN + "cycle"
    assert created["CodeSha256"] == b64sha(zip_v1)
    assert created["CodeSize"] == len(zip_v1)
    assert (created["Timeout"], created["MemorySize"], created["Description"]) == (7, 256, "d")
    assert created["Version"] == "$LATEST"
    assert created["State"] == "Active" and created["LastUpdateStatus"] == "Successful"
    assert created["Environment"] == {"Variables": {"AA": "1"}}
    assert created["LastModified"].endswith("+0000")

    got = client.get_function(FunctionName="cycle")
    assert got["Configuration"]["RevisionId"] == created["RevisionId"]
    assert got["Code"]["RepositoryType"] == "S3"
    conf = client.get_function_configuration(FunctionName="cycle")
    assert conf["CodeSha256"] == created["CodeSha256"]
    assert "cycle" in [f["FunctionName"] for f in client.list_functions()["Functions"]]

    r, body = lambent.invoke("cycle", b"{}")
    assert body == b'"v1"'

    zip_v2 = reply_zip("v2")
    updated = client.update_function_code(FunctionName="cycle", ZipFile=zip_v2)
    assert updated["CodeSha256"] == b64sha(zip_v2)
    assert updated["RevisionId"] != created["RevisionId"]
    assert updated["Timeout"] == 7  # configuration untouched by a code update
    r, body = lambent.invoke("cycle", b"{}")
    assert body == b'"v2"'  # the next invoke runs the new code

    conf = client.update_function_configuration(FunctionName="cycle", Timeout=9,
                                                Environment={"Variables": {"BB": "2"}})
    assert conf["Timeout"] == 9
    assert conf["Environment"] == {"Variables": {"BB": "2"}}  # replaces the whole map
    assert conf["CodeSha256"] == b64sha(zip_v2)

    deleted = client.delete_function(FunctionName="cycle")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] in (200, 204)
    for call in (lambda: client.get_function(FunctionName="cycle"),
                 lambda: client.get_function_configuration(FunctionName="cycle"),
                 lambda: lambent.invoke("cycle", b"{}"),
                 lambda: client.delete_function(FunctionName="cycle")):
        with pytest.raises(ClientError) as e:
            call()
        code, status, message = error_of(e)
        assert (code, status) == ("ResourceNotFoundException", 404)
        assert message == "Function not found: " + ARN + "cycle"
    assert "cycle" not in [f["FunctionName"] for f in client.list_functions()["Functions"]]


def test_cycle_with_aws_cli(lambent, tmp_path):
    zip_path = tmp_path / "f.zip"
    zip_path.write_bytes(reply_zip("cli-v1"))
    code, out, err = lambent.aws("lambda", "create-function", "--function-name", "cli-cycle",
                                 "--runtime", "provided.al2023", "--handler", "x.y",
                                 "--role", ROLE, "--zip-file", f"fileb://{zip_path}")
    assert out["FunctionArn"] == ARN + "cli-cycle"
    _, out, _ = lambent.aws("lambda", "get-function", "--function-name", "cli-cycle")
    assert out["Configuration"]["Runtime"] == "provided.al2023"

    zip_path.write_bytes(reply_zip("cli-v2"))
    _, out, _ = lambent.aws("lambda", "update-function-code", "--function-name", "cli-cycle",
                            "--zip-file", f"fileb://{zip_path}")
    assert out["CodeSha256"] == b64sha(zip_path.read_bytes())
    _, out, _ = lambent.aws("lambda", "update-function-configuration", "--function-name",
                            "cli-cycle", "--memory-size", "512",
                            "--environment", "Variables={GREETING=hi}")
    assert out["MemorySize"] == 512
    assert out["Environment"]["Variables"] == {"GREETING": "hi"}
    _, meta, _ = lambent.aws("lambda", "invoke", "--function-name", "cli-cycle",
                             str(tmp_path / "out"))
    assert meta["StatusCode"] == 200
    assert (tmp_path / "out").read_bytes() == b'"cli-v2"'

    code, out, err = lambent.aws("lambda", "delete-function", "--function-name", "cli-cycle")
    assert code == 0
    code, out, err = lambent.aws("lambda", "get-function", "--function-name", "cli-cycle",
                                 check=False)
    assert code != 0
    assert ("An error occurred (ResourceNotFoundException) when calling the GetFunction "
            "operation: Function not found: " + ARN + "cli-cycle") in err


def test_code_location_is_a_presigned_url_of_the_package(lambent):
    client = lambent.boto3()
    zip_bytes = reply_zip("download")
    client.create_function(FunctionName="download", Runtime="provided.al2023", Handler="x",
                           Role=ROLE, Code={"ZipFile": zip_bytes})
    location = client.get_function(FunctionName="download")["Code"]["Location"]
    assert location.startswith(lambent.endpoint + "/"), location
    with urllib.request.urlopen(location, timeout=30) as resp:  # no SigV4: presigned
        assert resp.read() == zip_bytes
    tampered = location.replace("Signature=", "Signature=0")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(tampered, timeout=30)
    assert e.value.code == 403


def test_create_existing_name_is_conflict(lambent):
    lambent.create("dup", control_files())
    with pytest.raises(ClientError) as e:
        lambent.create("dup", control_files())
    code, status, message = error_of(e)
    assert (code, status) == ("ResourceConflictException", 409)
    assert "dup" in message


# ---- configuration changes reach the next invoke ----

def test_update_configuration_env_reaches_next_invoke(lambent):
    client = lambent.boto3()
    lambent.create("env-change", control_files(), Environment={"Variables": {"GREETING": "one"}})
    first = whoami(lambent, "env-change")
    assert first["greeting"] == "one"
    client.update_function_configuration(FunctionName="env-change",
                                         Environment={"Variables": {"GREETING": "two"}})
    second = whoami(lambent, "env-change")
    assert second["greeting"] == "two"  # no stale environment
    assert second["instance"] != first["instance"]


def test_update_code_reaches_next_invoke_through_warm_environment(lambent):
    client = lambent.boto3()
    client.create_function(FunctionName="code-change", Runtime="provided.al2023", Handler="x",
                           Role=ROLE, Code={"ZipFile": reply_zip("old")})
    assert lambent.invoke("code-change")[1] == b'"old"'
    client.update_function_code(FunctionName="code-change", ZipFile=reply_zip("new"))
    assert lambent.invoke("code-change")[1] == b'"new"'
    assert lambent.invoke("code-change")[1] == b'"new"'


# ---- validation ----

GOOD = {"Runtime": "provided.al2023", "Handler": "x.y"}

# (create_function overrides, error code); botocore's own client-side checks are
# switched off so the server's are what is tested.
CREATE_ERRORS = [
    ({"FunctionName": "bad name"}, "ValidationException"),
    ({"FunctionName": "bad!"}, "ValidationException"),
    ({"FunctionName": "x" * 65}, "ValidationException"),
    ({"Runtime": "java21"}, "InvalidParameterValueException"),
    ({"Runtime": "python2.7"}, "InvalidParameterValueException"),
    ({"Handler": "has space"}, "ValidationException"),
    ({"Handler": "h" * 129}, "ValidationException"),
    ({"MemorySize": 127}, "ValidationException"),
    ({"MemorySize": 10241}, "ValidationException"),
    ({"Timeout": 0}, "ValidationException"),
    ({"Timeout": 901}, "ValidationException"),
    ({"EphemeralStorage": {"Size": 511}}, "ValidationException"),
    ({"EphemeralStorage": {"Size": 10241}}, "ValidationException"),
    ({"Environment": {"Variables": {"1ABC": "x"}}}, "ValidationException"),
    ({"Environment": {"Variables": {"A-B": "x"}}}, "ValidationException"),
    ({"Environment": {"Variables": {"A": "x"}}}, "ValidationException"),
    ({"Environment": {"Variables": {"BIG": "x" * 4100}}}, "InvalidParameterValueException"),
    ({"Environment": {"Variables": {f"K{i}": "v" * 100 for i in range(45)}}},
     "InvalidParameterValueException"),
    ({"Environment": {"Variables": {"AWS_REGION": "eu-west-1"}}}, "InvalidParameterValueException"),
    ({"Environment": {"Variables": {"_HANDLER": "x"}}}, "ValidationException"),  # pattern first
    ({"Environment": {"Variables": {"AWS_LAMBDA_FUNCTION_NAME": "x"}}},
     "InvalidParameterValueException"),
    ({"Runtime": None}, "InvalidParameterValueException"),
    ({"Handler": None}, "InvalidParameterValueException"),
]


@pytest.mark.parametrize("override,expected", CREATE_ERRORS,
                         ids=[f"{list(o)[0]}-{i}" for i, (o, _) in enumerate(CREATE_ERRORS)])
def test_create_validation(lambent, override, expected):
    client = lambent.boto3(parameter_validation=False)
    params = {"FunctionName": "valid-target", "Role": ROLE, **GOOD,
              "Code": {"ZipFile": make_zip(control_files())}}
    params.update(override)
    params = {k: v for k, v in params.items() if v is not None}
    with pytest.raises(ClientError) as e:
        client.create_function(**params)
    code, status, message = error_of(e)
    assert (code, status) == (expected, 400), message
    assert message
    # Nothing was created.
    names = [f["FunctionName"] for f in client.list_functions()["Functions"]]
    assert "valid-target" not in names and params["FunctionName"] not in names


def create_body(name, **config):
    return {"FunctionName": name, "Role": ROLE, **GOOD,
            "Code": {"ZipFile": base64.b64encode(make_zip(control_files())).decode()}, **config}


# LoggingConfig is newer than the Debian botocore: sent signed by hand (lambent.lambda_api).
LOG_GROUP_ERRORS = [
    ("bad group!", "ValidationException"),
    ("", "ValidationException"),
    ("g" * 513, "ValidationException"),
    # Valid on AWS, but 270 bytes as a folder name of the log store ('/' is encoded).
    ("/" * 90, "InvalidParameterValueException"),
]


@pytest.mark.parametrize("group,expected", LOG_GROUP_ERRORS,
                         ids=["pattern", "empty", "over-512", "over-255-encoded"])
def test_log_group_validation(lambent, group, expected):
    config = {"LoggingConfig": {"LogFormat": "Text", "LogGroup": group}}
    status, out, error = lambent.lambda_api("POST", "/2015-03-31/functions",
                                            create_body("log-group-target", **config))
    assert (status, error) == (400, expected), out
    assert out["message"], out
    client = lambent.boto3()
    assert "log-group-target" not in [f["FunctionName"] for f in client.list_functions()["Functions"]]
    lambent.create("log-group-upd", control_files())
    status, out, error = lambent.lambda_api(
        "PUT", "/2015-03-31/functions/log-group-upd/configuration", config)
    assert (status, error) == (400, expected), out
    _, cfg, _ = lambent.lambda_api("GET", "/2015-03-31/functions/log-group-upd/configuration")
    assert cfg["LoggingConfig"]["LogGroup"] == "/aws/lambda/log-group-upd", cfg
    client.delete_function(FunctionName="log-group-upd")


def test_dot_log_groups_stay_in_the_log_store(lambent):
    # "." and ".." match LogGroup's pattern; their lines must not land in the data folder (where
    # log retention would then delete the registry and the credentials).
    logs = lambent.boto3("logs")
    before = sorted(os.listdir(lambent.data_dir))
    for i, group in enumerate([".", ".."]):
        name = f"dot-group-{i}"
        status, out, _ = lambent.lambda_api("POST", "/2015-03-31/functions", create_body(
            name, LoggingConfig={"LogFormat": "Text", "LogGroup": group}))
        assert status == 201, out
        r, _ = lambent.invoke(name, b'{"dots":1}')
        rid = r["ResponseMetadata"]["RequestId"]
        events = logs.filter_log_events(logGroupName=group, filterPattern=rid)["events"]
        assert any(e["message"].startswith("END RequestId: " + rid) for e in events), events
        lambent.boto3().delete_function(FunctionName=name)
    assert sorted(os.listdir(lambent.data_dir)) == before
    assert not [f for f in os.listdir(os.path.join(lambent.data_dir, "logs")) if f.endswith(".log")]


def test_unknown_runtime_is_validation_exception(lambent):
    client = lambent.boto3()
    with pytest.raises(ClientError) as e:
        client.create_function(FunctionName="cobol", Runtime="cobol85", Handler="x", Role=ROLE,
                               Code={"ZipFile": make_zip(control_files())})
    code, status, message = error_of(e)
    assert (code, status) == ("ValidationException", 400)
    assert "at 'runtime' failed to satisfy constraint: Member must satisfy enum value set" in message


@pytest.mark.parametrize("param,good", [("MemorySize", (128, 10240)), ("Timeout", (1, 900))])
def test_limits_are_inclusive(lambent, param, good):
    client = lambent.boto3()
    name = "limits-" + param.lower()
    lambent.create(name, control_files(), **{param: good[0]})
    assert client.update_function_configuration(FunctionName=name, **{param: good[1]})[param] == good[1]
    client.delete_function(FunctionName=name)


UPDATE_ERRORS = [
    ({"MemorySize": 10241}, "ValidationException"),
    ({"Timeout": 901}, "ValidationException"),
    ({"Handler": "a b"}, "ValidationException"),
    ({"Environment": {"Variables": {"AWS_SESSION_TOKEN": "x"}}}, "InvalidParameterValueException"),
    ({"Environment": {"Variables": {"BIG": "x" * 4100}}}, "InvalidParameterValueException"),
    ({"Runtime": "java21"}, "InvalidParameterValueException"),
]


@pytest.mark.parametrize("override,expected", UPDATE_ERRORS)
def test_update_configuration_validation_changes_nothing(lambent, override, expected):
    client = lambent.boto3()
    name = "upd-validation"
    try:
        before = client.get_function_configuration(FunctionName=name)
    except ClientError:
        before = lambent.create(name, control_files())
    with pytest.raises(ClientError) as e:
        client.update_function_configuration(FunctionName=name, **override)
    assert error_of(e)[:2] == (expected, 400)
    after = client.get_function_configuration(FunctionName=name)
    assert after["RevisionId"] == before["RevisionId"]
    assert (after["MemorySize"], after["Timeout"], after["Handler"]) == \
        (before["MemorySize"], before["Timeout"], before["Handler"])
    assert after.get("Environment") == before.get("Environment")


def test_validation_error_text_through_aws_cli(lambent, tmp_path):
    zip_path = tmp_path / "f.zip"
    zip_path.write_bytes(make_zip(control_files()))
    code, _, err = lambent.aws("lambda", "create-function", "--function-name", "cli-bad",
                               "--runtime", "provided.al2023", "--handler", "x", "--role", ROLE,
                               "--memory-size", "20000", "--zip-file", f"fileb://{zip_path}",
                               check=False)
    assert code != 0
    assert ("An error occurred (ValidationException) when calling the CreateFunction operation: "
            "1 validation error detected: Value '20000' at 'memorySize' failed to satisfy "
            "constraint: Member must have value less than or equal to 10240") in err
    code, _, err = lambent.aws("lambda", "create-function", "--function-name", "cli-bad",
                               "--runtime", "provided.al2023", "--handler", "x", "--role", ROLE,
                               "--environment", "Variables={AWS_REGION=x}",
                               "--zip-file", f"fileb://{zip_path}", check=False)
    assert code != 0
    assert "An error occurred (InvalidParameterValueException) when calling the CreateFunction" in err
    assert "Reserved keys used in this request: AWS_REGION" in err
    client = lambent.boto3()
    with pytest.raises(ClientError) as e:
        client.get_function(FunctionName="cli-bad")
    assert error_of(e)[0] == "ResourceNotFoundException"


# ---- FunctionName forms ----

@pytest.fixture(scope="module")
def named(lambent):
    lambent.create("forms", control_files())
    return "forms"


FORMS = ["forms", "forms:$LATEST", "000000000000:function:forms",
         "000000000000:function:forms:$LATEST", ARN + "forms", ARN + "forms:$LATEST"]


@pytest.mark.parametrize("form", FORMS)
def test_function_name_forms(lambent, named, form):
    client = lambent.boto3()
    conf = client.get_function_configuration(FunctionName=form)
    assert conf["FunctionName"] == "forms"
    assert client.get_function(FunctionName=form)["Configuration"]["FunctionArn"] == ARN + "forms"
    r, body = lambent.invoke(form, b'{"form":1}')
    assert "FunctionError" not in r, body
    assert body == b'{"form":1}'
    assert r["ExecutedVersion"] == "$LATEST"


def test_function_name_forms_through_aws_cli(lambent, named, tmp_path):
    # (The AWS CLI is slow to start: one call per form.)
    _, out, _ = lambent.aws("lambda", "get-function-configuration", "--function-name", ARN + "forms")
    assert out["FunctionName"] == "forms"
    _, meta, _ = lambent.aws("lambda", "invoke", "--function-name",
                             "000000000000:function:forms:$LATEST", str(tmp_path / "o"))
    assert meta["StatusCode"] == 200
    assert (tmp_path / "o").read_bytes() == b"{}"


def test_qualifier_query_and_name_suffix(lambent, named):
    client = lambent.boto3()
    assert client.get_function_configuration(FunctionName="forms", Qualifier="$LATEST")["Version"] == "$LATEST"
    with pytest.raises(ClientError) as e:
        client.get_function_configuration(FunctionName="forms:$LATEST", Qualifier="1")
    assert error_of(e)[:2] == ("InvalidParameterValueException", 400)
    with pytest.raises(ClientError) as e:
        client.get_function_configuration(FunctionName="forms", Qualifier="77")
    assert error_of(e)[:2] == ("ResourceNotFoundException", 404)


@pytest.mark.parametrize("bad", ["arn:aws:s3:::bucket", "a:b:c:d", "forms:bad qualifier",
                                 "x" * 65])
def test_malformed_function_names_are_rejected(lambent, bad):
    client = lambent.boto3()
    with pytest.raises(ClientError) as e:
        client.get_function_configuration(FunctionName=bad)
    code, status, _ = error_of(e)
    assert status == 400 and code in ("ValidationException", "InvalidParameterValueException")


# ---- RevisionId ----

def test_revision_id_mismatch_is_precondition_failed(lambent):
    client = lambent.boto3()
    created = lambent.create("revisions", control_files())
    for call in (
            lambda rid: client.update_function_configuration(FunctionName="revisions", Timeout=5,
                                                             RevisionId=rid),
            lambda rid: client.update_function_code(FunctionName="revisions",
                                                    ZipFile=make_zip(control_files()),
                                                    RevisionId=rid)):
        with pytest.raises(ClientError) as e:
            call("00000000-0000-0000-0000-000000000000")
        code, status, message = error_of(e)
        assert (code, status) == ("PreconditionFailedException", 412)
        assert "Revision Id" in message
    unchanged = client.get_function_configuration(FunctionName="revisions")
    assert unchanged["RevisionId"] == created["RevisionId"]
    assert unchanged["Timeout"] == 3
    updated = client.update_function_configuration(FunctionName="revisions", Timeout=5,
                                                   RevisionId=created["RevisionId"])
    assert updated["RevisionId"] != created["RevisionId"]
    # The old revision is stale now.
    with pytest.raises(ClientError) as e:
        client.update_function_configuration(FunctionName="revisions", Timeout=6,
                                             RevisionId=created["RevisionId"])
    assert error_of(e)[:2] == ("PreconditionFailedException", 412)


# ---- ListFunctions pagination ----

@pytest.fixture(scope="module")
def many(lambent):
    client = lambent.boto3()
    z = make_zip(control_files())
    names = [f"page-{i:02d}" for i in range(7)]
    for n in names:
        client.create_function(FunctionName=n, Runtime="provided.al2023", Handler="x", Role=ROLE,
                               Code={"ZipFile": z})
    return names


def test_list_functions_pages_with_max_items(lambent, many):
    client = lambent.boto3()
    first = client.list_functions(MaxItems=3)
    assert len(first["Functions"]) == 3
    assert first["NextMarker"]
    assert "State" not in first["Functions"][0]  # ListFunctions returns the subset
    seen, marker, pages = [], None, 0
    while True:
        page = client.list_functions(MaxItems=3, **({"Marker": marker} if marker else {}))
        assert len(page["Functions"]) <= 3
        seen += [f["FunctionName"] for f in page["Functions"]]
        pages += 1
        marker = page.get("NextMarker")
        if not marker:
            break
    assert len(seen) == len(set(seen))
    assert set(many) <= set(seen)
    assert pages == -(-len(seen) // 3)
    total = client.list_functions()["Functions"]
    assert sorted(f["FunctionName"] for f in total) == sorted(seen)


def test_list_functions_boto3_paginator(lambent, many):
    client = lambent.boto3()
    pages = list(client.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 2}))
    names = [f["FunctionName"] for p in pages for f in p["Functions"]]
    assert all(len(p["Functions"]) <= 2 for p in pages)
    assert len(pages) >= 4
    assert len(names) == len(set(names))
    assert set(many) <= set(names)


def test_list_functions_aws_cli_page_size(lambent, many):
    _, out, _ = lambent.aws("lambda", "list-functions", "--page-size", "2")
    names = [f["FunctionName"] for f in out["Functions"]]
    assert len(names) == len(set(names))
    assert set(many) <= set(names)
    _, out, _ = lambent.aws("lambda", "list-functions", "--max-items", "2")
    assert len(out["Functions"]) == 2
    assert out["NextToken"]


def test_list_functions_bad_max_items_and_marker(lambent, many):
    client = lambent.boto3(parameter_validation=False)
    for bad in ({"MaxItems": 10001}, {"MaxItems": 0}, {"Marker": "garbage!"}):
        with pytest.raises(ClientError) as e:
            client.list_functions(**bad)
        code, status, _ = error_of(e)
        assert status == 400 and code in ("ValidationException", "InvalidParameterValueException")


# ---- account settings ----

def test_get_account_settings(lambent, many):
    client = lambent.boto3()
    s = client.get_account_settings()
    limit, usage = s["AccountLimit"], s["AccountUsage"]
    assert limit["CodeSizeUnzipped"] == 262144000
    assert limit["CodeSizeZipped"] == 52428800
    assert limit["TotalCodeSize"] == 80530636800
    assert limit["ConcurrentExecutions"] == 1000
    assert limit["UnreservedConcurrentExecutions"] <= limit["ConcurrentExecutions"]
    functions = [f for p in client.get_paginator("list_functions").paginate() for f in p["Functions"]]
    assert usage["FunctionCount"] == len(functions)
    assert usage["TotalCodeSize"] >= sum(f["CodeSize"] for f in functions) > 0
    _, out, _ = lambent.aws("lambda", "get-account-settings")
    assert out["AccountUsage"]["FunctionCount"] == len(functions)


def test_versions_and_aliases_list_in_pages(lambent):
    client = lambent.boto3()
    client.create_function(FunctionName="paged-versions", Runtime="provided.al2023", Handler="x",
                           Role=ROLE, Code={"ZipFile": make_zip({"bootstrap": ("#!/bin/sh\n", 0o755)})})
    for n in range(2):
        client.update_function_configuration(FunctionName="paged-versions", Description=f"d{n}")
        assert client.publish_version(FunctionName="paged-versions")["Version"] == str(n + 1)
    for name, version in (("blue", "1"), ("green", "2"), ("canary", "2")):
        client.create_alias(FunctionName="paged-versions", Name=name, FunctionVersion=version)

    first = client.list_versions_by_function(FunctionName="paged-versions", MaxItems=1)
    assert [v["Version"] for v in first["Versions"]] == ["$LATEST"] and first["NextMarker"]
    pages = client.get_paginator("list_versions_by_function").paginate(
        FunctionName="paged-versions", PaginationConfig={"PageSize": 1})
    assert [v["Version"] for p in pages for v in p["Versions"]] == ["$LATEST", "1", "2"]

    pages = client.get_paginator("list_aliases").paginate(
        FunctionName="paged-versions", PaginationConfig={"PageSize": 2})
    seen = [(a["Name"], a["FunctionVersion"]) for p in pages for a in p["Aliases"]]
    assert sorted(seen) == [("blue", "1"), ("canary", "2"), ("green", "2")]
    only_2 = client.list_aliases(FunctionName="paged-versions", FunctionVersion="2")["Aliases"]
    assert sorted(a["Name"] for a in only_2) == ["canary", "green"]
    with pytest.raises(ClientError) as e:
        client.list_aliases(FunctionName="paged-versions", Marker="not-a-marker")
    assert e.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_tags_round_trip(lambent):
    client = lambent.boto3()
    created = lambent.create("tagged", control_files(), Tags={"team": "a", "env": "dev"})
    arn = created["FunctionArn"]
    assert client.list_tags(Resource=arn)["Tags"] == {"team": "a", "env": "dev"}
    client.tag_resource(Resource=arn, Tags={"env": "prod", "cost": "7"})
    assert client.list_tags(Resource=arn)["Tags"] == {"team": "a", "env": "prod", "cost": "7"}
    client.untag_resource(Resource=arn, TagKeys=["team", "missing"])
    assert client.list_tags(Resource=arn)["Tags"] == {"env": "prod", "cost": "7"}
    assert client.get_function(FunctionName="tagged")["Tags"] == {"env": "prod", "cost": "7"}
    client.delete_function(FunctionName="tagged")


TAG_ERRORS = [
    ({"": "v"}, "ValidationException"),
    ({"k" * 129: "v"}, "ValidationException"),
    ({"k": "v" * 257}, "ValidationException"),
    ({"aws:owner": "x"}, "InvalidParameterValueException"),
    ({f"k{i}": "v" for i in range(51)}, "InvalidParameterValueException"),
]


@pytest.mark.parametrize("tags,expected", TAG_ERRORS,
                         ids=["empty-key", "long-key", "long-value", "aws-prefix", "51-tags"])
def test_tag_limits_change_nothing(lambent, tags, expected):
    client = lambent.boto3(parameter_validation=False)
    with pytest.raises(ClientError) as e:
        client.create_function(FunctionName="tag-limits", Role=ROLE, **GOOD, Tags=tags,
                               Code={"ZipFile": make_zip(control_files())})
    assert error_of(e)[:2] == (expected, 400)
    assert "tag-limits" not in [f["FunctionName"] for f in client.list_functions()["Functions"]]
    arn = lambent.create("tag-limits-2", control_files(), Tags={"keep": "me"})["FunctionArn"]
    with pytest.raises(ClientError) as e:
        client.tag_resource(Resource=arn, Tags=tags)
    assert error_of(e)[:2] == (expected, 400)
    assert client.list_tags(Resource=arn)["Tags"] == {"keep": "me"}
    client.delete_function(FunctionName="tag-limits-2")


# ---- ARNs of another region or another account ----

FOREIGN_REGION = "arn:aws:lambda:eu-west-1:000000000000:function:"
FOREIGN_ACCOUNT = "arn:aws:lambda:us-east-1:111111111111:function:"
FOREIGN_PARTIAL = "111111111111:function:"

# Every operation that takes a FunctionName (or a function ARN as Resource), with a change it
# would make to the local function if the ARN were taken for it.
FOREIGN_CALLS = {
    "Invoke": lambda c, n: c.invoke(FunctionName=n, Payload=b"{}"),
    "GetFunction": lambda c, n: c.get_function(FunctionName=n),
    "GetFunctionConfiguration": lambda c, n: c.get_function_configuration(FunctionName=n),
    "UpdateFunctionConfiguration":
        lambda c, n: c.update_function_configuration(FunctionName=n, Description="changed"),
    "UpdateFunctionCode":
        lambda c, n: c.update_function_code(FunctionName=n, ZipFile=reply_zip("foreign")),
    "PublishVersion": lambda c, n: c.publish_version(FunctionName=n),
    "ListVersionsByFunction": lambda c, n: c.list_versions_by_function(FunctionName=n),
    "CreateAlias": lambda c, n: c.create_alias(FunctionName=n, Name="other", FunctionVersion="1"),
    "GetAlias": lambda c, n: c.get_alias(FunctionName=n, Name="live"),
    "UpdateAlias": lambda c, n: c.update_alias(FunctionName=n, Name="live", Description="x"),
    "DeleteAlias": lambda c, n: c.delete_alias(FunctionName=n, Name="live"),
    "ListAliases": lambda c, n: c.list_aliases(FunctionName=n),
    "PutFunctionConcurrency":
        lambda c, n: c.put_function_concurrency(FunctionName=n, ReservedConcurrentExecutions=3),
    "GetFunctionConcurrency": lambda c, n: c.get_function_concurrency(FunctionName=n),
    "DeleteFunctionConcurrency": lambda c, n: c.delete_function_concurrency(FunctionName=n),
    "GetProvisionedConcurrencyConfig":
        lambda c, n: c.get_provisioned_concurrency_config(FunctionName=n, Qualifier="live"),
    "DeleteFunction": lambda c, n: c.delete_function(FunctionName=n),
    "DeleteFunctionVersion": lambda c, n: c.delete_function(FunctionName=n, Qualifier="1"),
    "TagResource": lambda c, n: c.tag_resource(Resource=n, Tags={"a": "b"}),
    "ListTags": lambda c, n: c.list_tags(Resource=n),
}


@pytest.fixture(scope="module")
def local_only(lambent):
    client = lambent.boto3()
    lambent.create("local-only", control_files(), Publish=True)
    client.create_alias(FunctionName="local-only", Name="live", FunctionVersion="1")
    client.put_function_concurrency(FunctionName="local-only", ReservedConcurrentExecutions=5)
    return "local-only"


FOREIGN_CASES = [
    pytest.param(op, prefix, id=f"{op}-{kind}")
    for op in sorted(FOREIGN_CALLS)
    for prefix, kind in ((FOREIGN_REGION, "other-region"), (FOREIGN_ACCOUNT, "other-account"),
                         (FOREIGN_PARTIAL, "other-account-partial"))
    # A tag Resource is always a full ARN.
    if prefix.startswith("arn:") or op not in ("TagResource", "ListTags")
]


@pytest.mark.parametrize("op,prefix", FOREIGN_CASES)
def test_arn_of_another_region_or_account_is_not_the_local_function(lambent, local_only, op,
                                                                     prefix):
    client = lambent.boto3()
    with pytest.raises(ClientError) as e:
        FOREIGN_CALLS[op](client, prefix + local_only)
    code, status, message = error_of(e)
    assert (code, status) == ("ResourceNotFoundException", 404), message
    if prefix == FOREIGN_REGION:
        assert message == "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')"
    else:
        assert "111111111111" in message and "000000000000" in message, message
    # The local function is as the fixture left it.
    got = client.get_function(FunctionName=local_only)
    assert got["Configuration"]["Description"] == ""
    assert got["Concurrency"] == {"ReservedConcurrentExecutions": 5}
    assert "Tags" not in got
    assert [v["Version"] for v in client.list_versions_by_function(
        FunctionName=local_only)["Versions"]] == ["$LATEST", "1"]
    assert [a["Name"] for a in client.list_aliases(FunctionName=local_only)["Aliases"]] == ["live"]


@pytest.mark.parametrize("prefix", [FOREIGN_REGION, FOREIGN_ACCOUNT],
                         ids=["other-region", "other-account"])
def test_create_function_with_an_arn_of_another_region_or_account_creates_nothing(lambent, prefix):
    client = lambent.boto3()
    with pytest.raises(ClientError) as e:
        client.create_function(FunctionName=prefix + "elsewhere", Runtime="provided.al2023",
                               Handler="x", Role=ROLE, Code={"ZipFile": reply_zip("x")})
    assert error_of(e)[:2] == ("ResourceNotFoundException", 404)
    assert "elsewhere" not in [f["FunctionName"] for f in client.list_functions()["Functions"]]


def test_arn_of_another_region_through_aws_cli(lambent, local_only, tmp_path):
    code, _, err = lambent.aws("lambda", "invoke", "--function-name", FOREIGN_REGION + local_only,
                               str(tmp_path / "o"), check=False)
    assert code != 0
    assert ("An error occurred (ResourceNotFoundException) when calling the Invoke operation: "
            "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')") in err
    assert not (tmp_path / "o").exists()
