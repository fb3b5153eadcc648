"""Shared pytest fixtures: a real `lambent serve` per test module, driven by
the real AWS CLI (/usr/bin/aws, Debian's awscli) and boto3 (Debian's
python3-boto3 under /usr/bin/python3).

Environment:
  LAMBENT_BIN             path of the lambent binary (default: build/debug/lambent)
  LAMBENT_TEST_ISOLATION  namespaces (default when root) or process
"""
import base64
import io
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AWS = "/usr/bin/aws"


def lambent_bin():
    return os.environ.get("LAMBENT_BIN", os.path.join(ROOT, "build", "debug", "lambent"))


def default_isolation():
    return os.environ.get("LAMBENT_TEST_ISOLATION",
                          "namespaces" if os.geteuid() == 0 else "process")


def make_zip(files):
    """files: {name: str|bytes | (content, mode)} -> zip bytes (modes kept)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in sorted(files.items()):
            mode = 0o644
            if isinstance(content, tuple):
                content, mode = content
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, content)
    return buf.getvalue()


class Lambent:
    """A running `lambent serve` with a private data folder."""

    def __init__(self, isolation=None, extra_args=(), env=None, run_as=None):
        self.tmp = tempfile.mkdtemp(prefix="lambent-test-")
        # run_as: a uid (as root only) — the daemon runs as that user, not root.
        self.run_as = run_as
        if run_as is not None:
            os.chown(self.tmp, run_as, run_as)
        self.data_dir = os.path.join(self.tmp, "data")
        self.isolation = isolation or default_isolation()
        self.extra_args = list(extra_args)
        self.extra_env = env or {}
        self.proc = None
        self.port = None
        try:
            self.start()
        except BaseException:
            # No fixture will get this object to close it: clean up here.
            self.stop()
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise

    def start(self):
        ready = os.path.join(self.tmp, "port")
        if os.path.exists(ready):
            os.unlink(ready)
        self.log_path = os.path.join(self.tmp, "serve.log")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
        env.update(self.extra_env)
        as_user = []
        if self.run_as is not None:
            as_user = ["setpriv", f"--reuid={self.run_as}", f"--regid={self.run_as}",
                       "--clear-groups", "--inh-caps=-all"]
        self.proc = subprocess.Popen(
            [*as_user, lambent_bin(), "serve", "--listen", "127.0.0.1:0", "--data-dir",
             self.data_dir,
             "--ready-file", ready, "--isolation", self.isolation, "--log-level", "debug",
             *self.extra_args],
            stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 60
        while not os.path.exists(ready):
            if self.proc.poll() is not None:
                raise RuntimeError("lambent serve exited early:\n" + self.log())
            if time.time() > deadline:
                raise RuntimeError("lambent serve did not become ready:\n" + self.log())
            time.sleep(0.02)
        self.port = int(open(ready).read().strip())
        creds = open(os.path.join(self.data_dir, "credentials")).read()
        self.access_key = creds.split("aws_access_key_id = ")[1].split("\n")[0]
        self.secret_key = creds.split("aws_secret_access_key = ")[1].split("\n")[0]

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def log(self):
        try:
            return open(self.log_path, errors="replace").read()
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode if self.proc else 0
        self.proc = None
        return code

    def restart(self):
        self.stop()
        self.start()

    def close(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- clients ---
    def aws_env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"AWS_ACCESS_KEY_ID": self.access_key,
                    "AWS_SECRET_ACCESS_KEY": self.secret_key,
                    "AWS_DEFAULT_REGION": "us-east-1",
                    "AWS_PAGER": "",
                    "AWS_CONFIG_FILE": "/dev/null",
                    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
        return env

    def aws(self, *args, check=True, input=None):
        """Runs the real AWS CLI; returns (exit code, parsed JSON or text, stderr)."""
        cmd = [AWS, "--endpoint-url", self.endpoint, "--output", "json", *args]
        p = subprocess.run(cmd, capture_output=True, text=True, env=self.aws_env(), input=input,
                           timeout=120)
        if check and p.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed ({p.returncode}): {p.stderr}")
        out = p.stdout
        try:
            out = json.loads(out) if out.strip() else None
        except ValueError:
            pass
        return p.returncode, out, p.stderr

    def boto3(self, service="lambda", **kw):
        import boto3
        from botocore.config import Config
        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key,
                            config=Config(retries={"total_max_attempts": 1}, read_timeout=120, **kw))

    def cli(self, *args, check=True, input=None, timeout=120):
        """Runs `lambent <args>` against this daemon."""
        env = dict(os.environ)
        env["LAMBENT_ENDPOINT"] = self.endpoint
        env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
        p = subprocess.run([lambent_bin(), *args, "--data-dir", self.data_dir], capture_output=True,
                           text=True, env=env, input=input, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"lambent {' '.join(args)} failed ({p.returncode}): {p.stderr}")
        return p

    def create(self, name, files, runtime="provided.al2023", handler="function.handler", **kw):
        client = self.boto3()
        return client.create_function(FunctionName=name, Runtime=runtime, Handler=handler,
                                      Role="arn:aws:iam::000000000000:role/test",
                                      Code={"ZipFile": make_zip(files)}, **kw)

    def lambda_api(self, method, path, body=None):
        """A SigV4-signed Lambda API call with a JSON body, for fields the Debian botocore predates
        (LoggingConfig, RuntimeVersionConfig). Returns (HTTP status, decoded JSON body, the
        x-amzn-ErrorType of an error)."""
        import urllib.error
        import urllib.request
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        data = None if body is None else json.dumps(body).encode()
        req = AWSRequest(method=method, url=self.endpoint + path, data=data,
                         headers={"Content-Type": "application/json"})
        SigV4Auth(Credentials(self.access_key, self.secret_key), "lambda",
                  "us-east-1").add_auth(req)
        raw = urllib.request.Request(req.url, data=data, method=method, headers=dict(req.headers))
        try:
            with urllib.request.urlopen(raw, timeout=60) as resp:
                return resp.status, json.loads(resp.read() or b"null"), None
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null"), e.headers.get("x-amzn-ErrorType")

    def invoke(self, name, payload=b"{}", **kw):
        client = self.boto3()
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload).encode()
        r = client.invoke(FunctionName=name, Payload=payload, **kw)
        body = r["Payload"].read()
        return r, body


@pytest.fixture(scope="module")
def lambent():
    server = Lambent()
    yield server
    code = server.stop()
    log = server.log()
    server.close()
    assert code == 0, "lambent serve did not shut down cleanly:\n" + log[-5000:]


@pytest.fixture
def fresh_lambent():
    """A daemon of its own, for tests that restart or kill it."""
    servers = []

    def make(**kw):
        s = Lambent(**kw)
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.close()


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()
