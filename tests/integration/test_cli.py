"""The `lambent` CLI (deploy, invoke, functions, logs, rm, env) against a real
`lambent serve`, and the CloudWatch Logs subset through the AWS CLI and boto3
(LAMBDA-COMPAT.md §5).
"""
import json
import os
import shutil
import zipfile

import pytest
from botocore.exceptions import ClientError

FUNCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "functions")
ARN = "arn:aws:lambda:us-east-1:000000000000:function:"


@pytest.fixture
def project(tmp_path):
    d = tmp_path / "project"
    d.mkdir()
    shutil.copy(os.path.join(FUNCS, "bash-control", "bootstrap"), d / "bootstrap")
    os.chmod(d / "bootstrap", 0o755)
    (d / "notes.txt").write_text("not executable\n")
    return d


def test_deploy_creates_then_updates(lambent, project):
    p = lambent.cli("deploy", str(project), "--name", "cli-fn", "--runtime", "provided.al2023",
                    "--handler", "function.handler", "--env", "GREETING=hello", "--env", "OTHER=x")
    assert p.stdout.startswith("created cli-fn"), p.stdout
    assert ARN + "cli-fn" in p.stdout
    conf = lambent.boto3().get_function_configuration(FunctionName="cli-fn")
    assert conf["Runtime"] == "provided.al2023" and conf["Handler"] == "function.handler"
    assert conf["Environment"]["Variables"] == {"GREETING": "hello", "OTHER": "x"}

    p = lambent.cli("invoke", "cli-fn", '{"action":"whoami"}')
    assert json.loads(p.stdout)["greeting"] == "hello", (p.stdout, p.stderr)

    # A second deploy of the same name updates code and configuration.
    (project / "extra.txt").write_text("new file\n")
    p = lambent.cli("deploy", str(project), "--name", "cli-fn", "--env", "GREETING=changed",
                    "--memory", "256", "--timeout", "5")
    assert p.stdout.startswith("updated cli-fn"), p.stdout
    after = lambent.boto3().get_function_configuration(FunctionName="cli-fn")
    assert after["CodeSha256"] != conf["CodeSha256"]
    assert (after["MemorySize"], after["Timeout"]) == (256, 5)
    assert after["Environment"]["Variables"] == {"GREETING": "changed"}
    p = lambent.cli("invoke", "cli-fn", '{"action":"whoami"}')
    assert json.loads(p.stdout)["greeting"] == "changed", (p.stdout, p.stderr, lambent.log()[-3000:])


def test_deploy_zip_file_keeps_modes(lambent, project, tmp_path):
    z = tmp_path / "pkg.zip"
    with zipfile.ZipFile(z, "w") as out:
        for name in ("bootstrap", "notes.txt"):
            out.write(project / name, name)
    p = lambent.cli("deploy", str(z), "--name", "cli-zip", "--runtime", "provided.al2023",
                    "--handler", "x")
    assert p.stdout.startswith("created cli-zip")
    p = lambent.cli("invoke", "cli-zip", '{"from":"zip"}')
    assert json.loads(p.stdout) == {"from": "zip"}


def test_deploy_new_function_needs_runtime_and_handler(lambent, project):
    p = lambent.cli("deploy", str(project), "--name", "cli-incomplete", check=False)
    assert p.returncode != 0
    assert "--runtime" in p.stderr and "--handler" in p.stderr
    p = lambent.cli("deploy", str(project), "--name", "cli-incomplete", "--runtime",
                    "provided.al2023", "--handler", "x", "--env", "NOEQUALS", check=False)
    assert p.returncode != 0
    assert "KEY=VALUE" in p.stderr


def test_deploy_reports_server_validation(lambent, project):
    p = lambent.cli("deploy", str(project), "--name", "cli-badmem", "--runtime",
                    "provided.al2023", "--handler", "x", "--memory", "64", check=False)
    assert p.returncode != 0
    assert "memorySize" in p.stderr


@pytest.fixture(scope="module")
def deployed(lambent, tmp_path_factory):
    d = tmp_path_factory.mktemp("deployed")
    shutil.copy(os.path.join(FUNCS, "bash-control", "bootstrap"), d / "bootstrap")
    os.chmod(d / "bootstrap", 0o755)
    lambent.cli("deploy", str(d), "--name", "cli-shared", "--runtime", "provided.al2023",
                "--handler", "x")
    return "cli-shared"


def test_invoke_prints_payload(lambent, deployed):
    p = lambent.cli("invoke", deployed, '{"a":1}')
    assert p.returncode == 0
    assert p.stdout == '{"a":1}\n'
    p = lambent.cli("invoke", deployed)  # default payload
    assert json.loads(p.stdout) == {}


def test_invoke_payload_from_file_and_by_arn(lambent, deployed, tmp_path):
    f = tmp_path / "event.json"
    f.write_text('{"from":"file"}')
    p = lambent.cli("invoke", ARN + deployed, "@" + str(f))
    assert json.loads(p.stdout) == {"from": "file"}
    p = lambent.cli("invoke", deployed, '{"q":1}', "--qualifier", "$LATEST")
    assert json.loads(p.stdout) == {"q": 1}


def test_invoke_log_prints_tail_on_stderr(lambent, deployed):
    p = lambent.cli("invoke", deployed, '{"b":2}', "--log")
    assert json.loads(p.stdout) == {"b": 2}
    assert "START RequestId:" in p.stderr
    assert "END RequestId:" in p.stderr
    assert "REPORT RequestId:" in p.stderr and "Billed Duration:" in p.stderr


def test_invoke_function_error_exit_code(lambent, deployed):
    p = lambent.cli("invoke", deployed, '{"action":"error"}', check=False)
    assert p.returncode == 2
    assert json.loads(p.stdout)["errorType"] == "MyError"


def test_invoke_bad_requests(lambent, deployed):
    p = lambent.cli("invoke", "cli-never", "{}", check=False)
    assert p.returncode == 1
    assert "Function not found" in p.stderr
    p = lambent.cli("invoke", deployed, "not json", check=False)
    assert p.returncode == 1
    assert "InvalidRequestContentException" in p.stderr or "parse request body" in p.stderr


def test_functions_lists_deployed(lambent, deployed):
    p = lambent.cli("functions")
    lines = p.stdout.splitlines()
    assert lines[0].split()[:4] == ["NAME", "RUNTIME", "MEMORY", "TIMEOUT"]
    row = [line for line in lines if line.split()[0] == deployed]
    assert len(row) == 1
    assert "provided.al2023" in row[0] and "128 MB" in row[0]


def test_functions_lists_more_than_one_page(lambent, deployed):
    client = lambent.boto3()
    from conftest import make_zip
    z = make_zip({"bootstrap": ("#!/bin/sh\n", 0o755)})
    names = [f"cli-many-{i:02d}" for i in range(52)]
    for n in names:
        client.create_function(FunctionName=n, Runtime="provided.al2023", Handler="x",
                               Role="arn:aws:iam::000000000000:role/r", Code={"ZipFile": z})
    try:
        listed = [line.split()[0] for line in lambent.cli("functions").stdout.splitlines()[1:]]
        assert set(names) <= set(listed)
        assert len(listed) == len(set(listed))
    finally:
        for n in names:
            client.delete_function(FunctionName=n)


def test_logs_shows_platform_and_function_lines(lambent, deployed):
    r, _ = lambent.invoke(deployed, b'{"for":"logs"}')
    rid = r["ResponseMetadata"]["RequestId"]
    out = lambent.cli("logs", deployed).stdout
    assert f"START RequestId: {rid} Version: $LATEST" in out
    assert f"handling {rid}" in out
    assert f"END RequestId: {rid}" in out
    assert f"REPORT RequestId: {rid}\tDuration: " in out
    lines = out.splitlines()
    start = lines.index(f"START RequestId: {rid} Version: $LATEST")
    assert lines[start + 1:].index(f"END RequestId: {rid}") >= 0


def test_logs_of_unknown_function(lambent):
    p = lambent.cli("logs", "cli-no-logs", check=False)
    assert p.returncode != 0


def test_cloudwatch_logs_subset(lambent, deployed):
    r, _ = lambent.invoke(deployed, b'{"for":"cloudwatch"}')
    rid = r["ResponseMetadata"]["RequestId"]
    group = "/aws/lambda/" + deployed
    logs = lambent.boto3("logs")
    groups = logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/cli-shared")["logGroups"]
    assert [g["logGroupName"] for g in groups] == [group]
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    unchecked = lambent.boto3("logs", parameter_validation=False)
    for bad in (0, -1, 51):
        with pytest.raises(ClientError) as e:
            unchecked.describe_log_streams(logGroupName=group, limit=bad)
        assert e.value.response["Error"]["Code"] == "InvalidParameterException", bad
    assert streams and all(s["logStreamName"].count("/") == 3 for s in streams)
    assert all("[$LATEST]" in s["logStreamName"] for s in streams)
    messages = []
    for s in streams:
        messages += [e["message"] for e in logs.get_log_events(
            logGroupName=group, logStreamName=s["logStreamName"], startFromHead=True)["events"]]
    assert f"END RequestId: {rid}" in messages
    filtered = logs.filter_log_events(logGroupName=group, filterPattern=rid)["events"]
    assert filtered and all(rid in e["message"] for e in filtered)

    code, out, err = lambent.aws("logs", "filter-log-events", "--log-group-name", group)
    assert code == 0, err
    texts = [e["message"] for e in out["events"]]
    assert f"START RequestId: {rid} Version: $LATEST" in texts
    assert any(t.startswith(f"REPORT RequestId: {rid}") for t in texts)


def test_cloudwatch_logs_pages_hold_every_event_once(lambent, deployed):
    for i in range(3):
        lambent.invoke(deployed, b'{"for":"pages"}')
    group = "/aws/lambda/" + deployed
    logs = lambent.boto3("logs")
    whole = logs.filter_log_events(logGroupName=group)
    assert "nextToken" not in whole
    events = [(e["timestamp"], e["logStreamName"], e["message"]) for e in whole["events"]]
    assert len(events) >= 9 and events == sorted(events, key=lambda e: e[0])
    ids = [e["eventId"] for e in whole["events"]]
    assert len(set(ids)) == len(ids)
    # The AWS CLI follows nextToken itself; pages of two give back the same events.
    code, out, err = lambent.aws("logs", "filter-log-events", "--log-group-name", group,
                                 "--page-size", "2")
    assert code == 0, err
    assert [(e["timestamp"], e["logStreamName"], e["message"]) for e in out["events"]] == events
    # get-log-events from the tail: the last events, and a forward token that waits at the end.
    stream = events[-1][1]
    tail = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=2)
    assert [e["message"] for e in tail["events"]] == [e[2] for e in events if e[1] == stream][-2:]
    later = logs.get_log_events(logGroupName=group, logStreamName=stream,
                                nextToken=tail["nextForwardToken"])
    assert later["events"] == [] and later["nextForwardToken"] == tail["nextForwardToken"]
    # Read whole from the head, then poll with its forward token: nothing comes twice.
    head = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
    assert [e["message"] for e in head["events"]] == [e[2] for e in events if e[1] == stream]
    polled = logs.get_log_events(logGroupName=group, logStreamName=stream,
                                 nextToken=head["nextForwardToken"])
    assert polled["events"] == []
    # Bad input is refused, and the daemon lives on.
    for bad in ({"limit": 10001}, {"nextToken": "garbled"}):
        with pytest.raises(ClientError) as e:
            logs.filter_log_events(logGroupName=group, **bad)
        assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    for token in ("f", "b/x"):
        with pytest.raises(ClientError) as e:
            logs.get_log_events(logGroupName=group, logStreamName=stream, nextToken=token)
        assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    unchecked = lambent.boto3("logs", parameter_validation=False)  # as a raw client would send
    with pytest.raises(ClientError) as e:
        unchecked.filter_log_events(logGroupName=group, startTime="yesterday")
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    assert logs.filter_log_events(logGroupName=group, limit=1)["events"]


def test_rm_deletes(lambent, project):
    lambent.cli("deploy", str(project), "--name", "cli-rm", "--runtime", "provided.al2023",
                "--handler", "x")
    lambent.cli("invoke", "cli-rm", "{}")
    p = lambent.cli("rm", "cli-rm")
    assert p.stdout.strip() == "deleted cli-rm"
    assert "cli-rm" not in [line.split()[0] for line in lambent.cli("functions").stdout.splitlines()]
    p = lambent.cli("invoke", "cli-rm", "{}", check=False)
    assert p.returncode == 1 and "Function not found" in p.stderr
    p = lambent.cli("rm", "cli-rm", check=False)
    assert p.returncode == 1 and "Function not found" in p.stderr


def test_env_prints_exports(lambent):
    p = lambent.cli("env")
    lines = dict(line.replace("export ", "", 1).split("=", 1) for line in p.stdout.splitlines())
    assert lines["AWS_ACCESS_KEY_ID"] == lambent.access_key
    assert lines["AWS_SECRET_ACCESS_KEY"] == lambent.secret_key
    assert lines["AWS_DEFAULT_REGION"] == "us-east-1"
    assert lines["AWS_ENDPOINT_URL"] == lambent.endpoint
