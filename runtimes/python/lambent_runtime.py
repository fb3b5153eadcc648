"""Lambent's Python runtime client: runs `_HANDLER` against the Lambda Runtime API (2018-06-01).

The daemon starts `<python> $LAMBDA_RUNTIME_DIR/python/bootstrap.py` with cwd = LAMBDA_TASK_ROOT;
that stub imports this module so that it loads from a cached .pyc (see bootstrap.py).
Behaviour follows AWS's awslambdaric (handler resolution, error shapes, context object, log
formats) so that functions written for AWS Lambda run unchanged; see LAMBDA-COMPAT.md §3-§5.

Owns: the one keep-alive connection to the Runtime API, the invoke loop, the Lambda context,
Lambda-style logging on stdout. Never: anything outside the standard library, threads.

Cold start is the budget this file is written against (interpreter start + ~5 ms), hence:
  * HTTP/1.1 is spoken directly over `_socket`: `http.client` pulls in `email`, `ssl` and
    friends (~40 ms here) and even `socket.py` adds enum/selectors for nothing we use. The
    host goes to getaddrinfo as bytes: a str would load the idna codec (~5 ms).
  * `json` is imported after the first GET /next is sent, overlapping the import with the
    long-poll, and `traceback` only when an error needs formatting.
  * `logging` is configured when user code first imports it (a meta-path hook), so handlers
    that never log do not pay ~15 ms for it, while those that do find Lambda's root handler
    already installed - `logging.basicConfig()` is then a no-op, as on AWS.
Works on Python 3.9-3.14: no syntax newer than 3.9.
"""

import os
import sys
import time

try:
    import _socket
except ImportError:  # an interpreter without the C module; socket.py re-exports the same API
    import socket as _socket

json = None  # imported lazily, see the module docstring

_API_PREFIX = "/2018-06-01/runtime/"
_NEXT_PATH = _API_PREFIX + "invocation/next"
_THIS_FILE = __file__
# awslambdaric replaces traceback indentation with NO-BREAK SPACE so that CloudWatch keeps it.
_LOG_INDENT = "\u00a0"
_LOG_JSON = False
_LOG_LEVEL = ""


def _read_log_settings():
    global _LOG_JSON, _LOG_LEVEL
    _LOG_JSON = (os.environ.get("AWS_LAMBDA_LOG_FORMAT") or "").upper() == "JSON"
    level = (os.environ.get("AWS_LAMBDA_LOG_LEVEL") or "").upper()
    _LOG_LEVEL = {"TRACE": "DEBUG"}.get(level, level)


_read_log_settings()

# The current invocation, read by the logging filter; "" outside an invocation.
_request_id = ""
_tenant_id = None


class _Fault(Exception):
    """An error whose type and message the runtime chooses (Runtime.*), not the user's code."""

    def __init__(self, error_type, message, trace=None):
        Exception.__init__(self, message)
        self.error_type = error_type
        self.message = message
        self.trace = trace


# ---------------------------------------------------------------------------------------------
# Runtime API connection


class _Dropped(Exception):
    """The server closed the connection before a complete response arrived."""


class RuntimeApiClient:
    """One persistent HTTP/1.1 connection to the Runtime API, reopened when it drops.

    Thread-compatible: the invoke loop is its only user. Requests may be pipelined: send_all()
    writes several at once and each receive() reads the answer to the oldest one still
    outstanding. If the connection turns out to be closed (e.g. an idle keep-alive reaped by the
    server), every request not answered yet is resent once on a fresh connection; a second
    failure raises OSError.
    """

    def __init__(self, address):
        host, _, port = address.rpartition(":")
        self._host = host.strip("[]")  # an IPv6 literal arrives as [::1]:9001
        try:
            self._host_arg = self._host.encode("ascii")
        except UnicodeError:
            self._host_arg = self._host
        self._port = int(port)
        py = sys.version_info
        self._fixed_headers = (
            "Host: %s\r\nUser-Agent: aws-lambda-python/%d.%d.%d-lambent\r\n"
            % (address, py[0], py[1], py[2])
        )
        self._sock = None
        self._buf = bytearray()
        # Receives land here first: a fresh 256-KiB bytes object per recv() is an mmap, a
        # mremap and a munmap (three system calls and page faults) on every invoke.
        self._chunk = bytearray(262144)
        self._chunk_view = memoryview(self._chunk)
        self._pending = []  # (head, body) of requests written and not answered yet, oldest first

    def request(self, method, path, body=b"", headers=()):
        """Returns (status, headers with lower-case names, body)."""
        self.send(method, path, body, headers)
        return self.receive()

    def send(self, method, path, body=b"", headers=()):
        self.send_all(((method, path, body, headers),))

    def send_all(self, requests):
        """Writes (method, path, body, headers) requests in one go where they are small."""
        batch = []
        for method, path, body, headers in requests:
            head = "%s %s HTTP/1.1\r\n%s" % (method, path, self._fixed_headers)
            for name, value in headers:
                head += "%s: %s\r\n" % (name, value)
            if method != "GET":
                head += "Content-Length: %d\r\n" % len(body)
            batch.append(((head + "\r\n").encode("latin-1"), body))
        self._pending.extend(batch)
        try:
            self._write(batch)
        except OSError:
            # Reported, and retried, by receive(): the requests may still be answerable.
            self._close()

    def receive(self):
        """(status, headers with lower-case names, body) of the oldest unanswered request."""
        try:
            if self._sock is None:
                raise _Dropped()
            answer = self._read_response()
        except (OSError, _Dropped):
            self._close()
            # One retry on a fresh connection; if this fails the caller sees the OSError.
            self._write(self._pending)
            try:
                answer = self._read_response()
            except _Dropped:
                self._close()
                raise OSError("Runtime API at %s:%d closed the connection"
                              % (self._host, self._port))
        del self._pending[0]
        return answer

    def _write(self, requests):
        if self._sock is None:
            self._connect()
        data = b""
        for head, body in requests:
            if len(body) < 65536:
                data += head + body
            else:
                self._sock.sendall(data + head)
                self._sock.sendall(body)
                data = b""
        if data:
            self._sock.sendall(data)

    def _connect(self):
        error = None
        for family, kind, proto, _, addr in _socket.getaddrinfo(
            self._host_arg, self._port, 0, _socket.SOCK_STREAM
        ):
            sock = _socket.socket(family, kind, proto)
            try:
                sock.connect(addr)
            except OSError as e:
                sock.close()
                error = e
                continue
            # Headers and body may leave in two writes; Nagle must not hold the second back.
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            self._sock = sock
            self._buf = bytearray()
            return
        raise error or OSError("cannot resolve %s" % self._host)

    def _close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._buf = bytearray()

    def _fill(self):
        n = self._sock.recv_into(self._chunk)
        if not n:
            raise _Dropped()
        self._buf += self._chunk_view[:n]

    def _read_line(self):
        while True:
            end = self._buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[: end + 2]
                return line
            self._fill()

    def _read_exact(self, n):
        buf = self._buf
        if len(buf) >= n:
            data = buf[:n]
            del buf[:n]
            return data
        data = bytearray(n)
        view = memoryview(data)
        got = len(buf)
        view[:got] = buf
        self._buf = bytearray()
        while got < n:
            k = self._sock.recv_into(view[got:])
            if k == 0:
                raise _Dropped()
            got += k
        return data

    def _read_response(self):
        while True:
            end = self._buf.find(b"\r\n\r\n")
            while end < 0:
                self._fill()
                end = self._buf.find(b"\r\n\r\n")
            head = bytes(self._buf[:end]).decode("utf-8", "replace").split("\r\n")
            del self._buf[: end + 4]
            status_line = head[0]
            status = int(status_line.split(" ", 2)[1])
            if status >= 200:
                break
            # 1xx interim responses carry no body; the real one follows.
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = self._read_exact(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = self._read_chunked()
        else:
            body = self._read_to_close()
        keep_alive = status_line.startswith("HTTP/1.1")
        if headers.get("connection", "").lower() == "close" or not keep_alive:
            self._close()
        return status, headers, body

    def _read_chunked(self):
        body = bytearray()
        while True:
            size = int(self._read_line().split(b";")[0], 16)
            if size == 0:
                while self._read_line():  # trailers
                    pass
                return body
            body += self._read_exact(size)
            self._read_line()

    def _read_to_close(self):
        try:
            while True:
                self._fill()
        except _Dropped:
            pass
        body = self._buf
        self._close()
        return body


# ---------------------------------------------------------------------------------------------
# Context


class CognitoIdentity(object):
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, identity_id=None, pool_id=None):
        self.cognito_identity_id = identity_id
        self.cognito_identity_pool_id = pool_id

    def __repr__(self):
        return "CognitoIdentity([cognito_identity_id=%s,cognito_identity_pool_id=%s])" % (
            self.cognito_identity_id,
            self.cognito_identity_pool_id,
        )


class Client(object):
    __slots__ = (
        "installation_id",
        "app_title",
        "app_version_name",
        "app_version_code",
        "app_package_name",
    )

    def __repr__(self):
        return "Client([%s])" % ",".join("%s=%s" % (n, getattr(self, n)) for n in self.__slots__)


class ClientContext(object):
    __slots__ = ("custom", "env", "client")

    def __repr__(self):
        return "ClientContext([custom=%s,env=%s,client=%s])" % (self.custom, self.env, self.client)


def _obj_from_dict(cls, values):
    if values is None:
        return None
    obj = cls()
    for name in cls.__slots__:
        setattr(obj, name, values.get(name))
    return obj


def _env_snapshot():
    get = os.environ.get
    return (
        get("AWS_LAMBDA_LOG_GROUP_NAME"),
        get("AWS_LAMBDA_LOG_STREAM_NAME"),
        get("AWS_LAMBDA_FUNCTION_NAME"),
        get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
        get("AWS_LAMBDA_FUNCTION_VERSION"),
    )


_ENV = _env_snapshot()


class LambdaContext(object):
    """The `context` argument: awslambdaric's LambdaContext, attribute for attribute."""

    def __init__(self, request_id, client_context, identity, deadline_ms, function_arn,
                 tenant_id=None):
        self.aws_request_id = request_id
        (
            self.log_group_name,
            self.log_stream_name,
            self.function_name,
            self.memory_limit_in_mb,
            self.function_version,
        ) = _ENV
        self.invoked_function_arn = function_arn
        self.tenant_id = tenant_id
        self.client_context = _obj_from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _obj_from_dict(Client, self.client_context.client)
        self.identity = CognitoIdentity()
        if identity is not None:
            self.identity.cognito_identity_id = identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = identity.get("cognitoIdentityPoolId")
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        remaining = self._deadline_ms - int(time.time() * 1000)
        return remaining if remaining > 0 else 0

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        return (
            "LambdaContext([aws_request_id=%s,log_group_name=%s,log_stream_name=%s,"
            "function_name=%s,memory_limit_in_mb=%s,function_version=%s,"
            "invoked_function_arn=%s,client_context=%s,identity=%s,tenant_id=%s])"
            % (
                self.aws_request_id,
                self.log_group_name,
                self.log_stream_name,
                self.function_name,
                self.memory_limit_in_mb,
                self.function_version,
                self.invoked_function_arn,
                self.client_context,
                self.identity,
                self.tenant_id,
            )
        )


def _parse_json_header(value, what):
    if not value:
        return None
    try:
        return json.loads(value)
    except Exception as e:
        raise _Fault("Runtime.LambdaContextUnmarshalError",
                     "Unable to parse %s JSON: %s" % (what, e))


# ---------------------------------------------------------------------------------------------
# Logging


def _timestamp(created):
    return "%s.%03dZ" % (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)),
        int(created * 1000) % 1000,
    )


def _install_logging(logging):
    """Puts Lambda's handler on the root logger of the just-imported `logging` module."""
    logging.Formatter.converter = time.gmtime

    def add_request_id(record):
        record.aws_request_id = _request_id
        record.tenant_id = _tenant_id
        return True

    class LambdaLoggerHandler(logging.Handler):
        def emit(self, record):
            try:
                sys.stdout.write(self.format(record))
            except Exception:
                self.handleError(record)

    class TextFormatter(logging.Formatter):
        def format(self, record):
            text = logging.Formatter.format(self, record)
            if text.endswith("\n"):
                text = text[:-1]
            # One record = one line = one log event, however many lines the message has.
            return text.replace("\n", "\r") + "\n"

    handler = LambdaLoggerHandler()
    if _LOG_JSON:
        handler.setFormatter(_make_json_formatter(logging))
    else:
        handler.setFormatter(TextFormatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            "%Y-%m-%dT%H:%M:%S",
        ))
    handler.addFilter(add_request_id)
    root = logging.getLogger()
    if _LOG_LEVEL in logging._nameToLevel:
        root.setLevel(_LOG_LEVEL)
    root.addHandler(handler)


# LogRecord attributes that are not user "extra" fields in JSON records.
_RESERVED_LOG_FIELDS = frozenset((
    "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module",
    "exc_info", "exc_text", "stack_info", "lineno", "funcName", "created", "msecs",
    "relativeCreated", "thread", "threadName", "processName", "process", "taskName",
    "aws_request_id", "tenant_id",
))


def _make_json_formatter(logging):
    import json as json_module  # logging may be imported before the invoke loop imports json

    class JsonFormatter(logging.Formatter):
        """awslambdaric's JsonFormatter: {"timestamp","level","message","logger",...}."""

        def format(self, record):
            levelno = min(50, max(0, record.levelno)) // 10 * 10
            exc_info = record.exc_info
            result = {
                "timestamp": _timestamp(record.created),
                "level": logging.getLevelName(levelno),
                "message": record.getMessage(),
                "logger": record.name,
                "requestId": getattr(record, "aws_request_id", None),
            }
            if exc_info and exc_info[0] is not None:
                import traceback

                result["stackTrace"] = traceback.format_tb(exc_info[2])
                result["errorType"] = exc_info[0].__name__
                result["errorMessage"] = str(exc_info[1])
                result["location"] = "%s:%s:%s" % (record.pathname, record.funcName,
                                                   record.lineno)
            if getattr(record, "tenant_id", None) is not None:
                result["tenantId"] = record.tenant_id
            for key, value in record.__dict__.items():
                if key not in _RESERVED_LOG_FIELDS and key not in result:
                    result[key] = value
            result = {k: v for k, v in result.items() if v is not None}
            return json_module.dumps(result, ensure_ascii=False, default=str) + "\n"

    return JsonFormatter()


class _LoggingImportHook(object):
    """Meta-path finder that configures `logging` right after its first import completes."""

    def find_spec(self, name, path=None, target=None):
        if name != "logging":
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None) if finder is not self else None
            spec = find(name, path, target) if find else None
            if spec is not None:
                sys.meta_path.remove(self)
                spec.loader = _ConfiguringLoader(spec.loader)
                return spec
        return None


class _ConfiguringLoader(object):
    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):  # get_source, is_package, ... for linecache and friends
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _install_logging(module)


def _setup_output():
    for stream in (sys.stdout, sys.stderr):
        try:
            # The daemon attributes output to an invocation by what has reached the pipe by
            # the time the response arrives, so nothing may sit in a block buffer.
            stream.reconfigure(line_buffering=True)
        except Exception:
            pass
    if "logging" in sys.modules:  # imported by site or a .pth file before us
        _install_logging(sys.modules["logging"])
    else:
        sys.meta_path.insert(0, _LoggingImportHook())


def _flush_output():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _log_error(error):
    """Writes an unhandled error as one log event, in the function's log format."""
    if _LOG_JSON:
        record = {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
                  "level": "ERROR"}
        record.update(error)
        line = json.dumps(record)
    else:
        description = "[ERROR]"
        if error["errorType"]:
            description += " " + error["errorType"]
        if error["errorMessage"]:
            if error["errorType"]:
                description += ":"
            description += " " + error["errorMessage"]
        lines = [description, "Traceback (most recent call last):"]
        for element in error["stackTrace"]:
            if element == "":
                lines.append("")
            for line in element.splitlines():
                stripped = line.lstrip(" ")
                lines.append(_LOG_INDENT * (len(line) - len(stripped)) + stripped)
        line = "\r".join(lines).replace("\n", "\r")
    try:
        sys.stdout.write(line + "\n")
    except Exception:
        pass


# ---------------------------------------------------------------------------------------------
# Errors


def _make_error(message, error_type, stack_trace, request_id=""):
    return {
        "errorMessage": message or "",
        "errorType": error_type or "",
        "requestId": request_id or "",
        "stackTrace": stack_trace or [],
    }


def _error_from_exception(exc_type, exc, tb, request_id=""):
    import traceback

    # The user sees their frames, not ours (nor importlib's, for errors raised at import).
    frames = [
        (f.filename, f.lineno, f.name, f.line)
        for f in traceback.extract_tb(tb)
        if f.filename != _THIS_FILE and not f.filename.startswith("<frozen importlib")
    ]
    try:
        message = str(exc)
    except Exception:
        message = "<exception str() failed>"
    return _make_error(message, exc_type.__name__, traceback.format_list(frames), request_id)


def _load_handler(handler):
    try:
        module_name, function_name = handler.rsplit(".", 1)
    except ValueError as e:
        raise _Fault("Runtime.MalformedHandlerName", "Bad handler '%s': %s" % (handler, e))
    try:
        if module_name.split(".")[0] in sys.builtin_module_names:
            raise _Fault("Runtime.BuiltInModuleConflict",
                         "Cannot use built-in module %s as a handler module" % module_name)
        import_name = module_name.replace("/", ".")
        __import__(import_name)
        module = sys.modules[import_name]
    except ImportError as e:
        raise _Fault("Runtime.ImportModuleError",
                     "Unable to import module '%s': %s" % (module_name, e))
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise _Fault("Runtime.UserCodeSyntaxError",
                     "Syntax error in module '%s': %s" % (module_name, e), trace)
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise _Fault("Runtime.HandlerNotFound",
                     "Handler '%s' missing on module '%s'" % (function_name, module_name))


# ---------------------------------------------------------------------------------------------
# Invoke loop


def _json_default(obj):
    # boto3 hands out Decimals for DynamoDB numbers; awslambdaric (simplejson) emits them as
    # JSON numbers, so must we. Checked by name to avoid importing decimal.
    if type(obj).__name__ == "Decimal" and type(obj).__module__ in ("decimal", "_decimal"):
        if obj.is_nan() or obj.is_infinite():
            return float(obj)
        return int(obj) if obj == obj.to_integral_value() else float(obj)
    raise TypeError("Object of type %s is not JSON serializable" % type(obj).__name__)


def _marshal(result):
    if isinstance(result, bytes):
        return result, "application/unknown"
    try:
        return json.dumps(result, default=_json_default).encode(), "application/json"
    except Exception as e:
        raise _Fault("Runtime.MarshalError", "Unable to marshal response: %s" % e)


def _unmarshal(body, content_type):
    if content_type and not content_type.startswith("application/json"):
        return bytes(body)
    try:
        return json.loads(body)
    except Exception as e:
        raise _Fault("Runtime.UnmarshalError", "Unable to unmarshal input: %s" % e)


def _handle_invocation(client, handler, headers, body):
    global _request_id, _tenant_id
    request_id = headers.get("lambda-runtime-aws-request-id", "")
    _request_id = request_id
    _tenant_id = headers.get("lambda-runtime-aws-tenant-id")
    trace_id = headers.get("lambda-runtime-trace-id")
    if trace_id is not None:
        os.environ["_X_AMZN_TRACE_ID"] = trace_id
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)
    try:
        deadline_ms = int(headers.get("lambda-runtime-deadline-ms") or 0)
    except ValueError:
        deadline_ms = 0
    error = None
    try:
        context = LambdaContext(
            request_id,
            _parse_json_header(headers.get("lambda-runtime-client-context"), "Client Context"),
            _parse_json_header(headers.get("lambda-runtime-cognito-identity"),
                               "Cognito Identity"),
            deadline_ms,
            headers.get("lambda-runtime-invoked-function-arn"),
            _tenant_id,
        )
        event = _unmarshal(body, headers.get("content-type"))
        del body
        payload, content_type = _marshal(handler(event, context))
    except _Fault as e:
        error = _make_error(e.message, e.error_type, e.trace, request_id)
    except Exception:
        error = _error_from_exception(*sys.exc_info(), request_id=request_id)

    path = _API_PREFIX + "invocation/" + request_id
    if error is None:
        _flush_output()
        result = ("POST", path + "/response", payload, (("Content-Type", content_type),))
    else:
        _log_error(error)
        _flush_output()
        result = ("POST", path + "/error", json.dumps(error).encode(),
                  (("Content-Type", "application/json"),))
    # The next GET /next leaves with the result, in the same write; Lambent answers both
    # together when the next invocation comes (one wake-up of this process per invoke).
    client.send_all((result, ("GET", _NEXT_PATH, b"", ())))
    status, _, reply = client.receive()
    _request_id = ""
    _tenant_id = None
    if not 200 <= status < 300:
        # The daemon has settled this invocation its own way (e.g. 413 for an oversized
        # response); the environment itself is still good, so keep serving.
        _stderr("Runtime API rejected the result for %s: HTTP %d %s"
                % (request_id, status, bytes(reply[:1024]).decode("utf-8", "replace")))


def _post_init_error(client, error):
    global json
    import json

    _log_error(error)
    _flush_output()
    try:
        status, _, _ = client.request(
            "POST", _API_PREFIX + "init/error", json.dumps(error).encode(),
            (("Lambda-Runtime-Function-Error-Type", error["errorType"]),
             ("Content-Type", "application/json")),
        )
        if status != 202:
            _stderr("Runtime API answered init/error with HTTP %d" % status)
    except OSError as e:
        _stderr("cannot post init error: %s" % e)
    sys.exit(1)


def _stderr(message):
    try:
        sys.stderr.write("lambent-python-runtime: %s\n" % message)
        sys.stderr.flush()
    except Exception:
        pass


def _setup_sys_path():
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    # bootstrap.py put the runtime's directory on the path to find this module; user modules
    # must not resolve against it.
    runtime_dir = os.path.dirname(os.path.abspath(_THIS_FILE))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != runtime_dir]
    paths = [task_root]
    site_packages = "/opt/python/lib/python%d.%d/site-packages" % sys.version_info[:2]
    for path in (site_packages, "/opt/python"):
        if os.path.isdir(path):
            paths.append(path)
    sys.path[:0] = paths


def zygote(fd):
    """Pre-started in a pooled sandbox before its function is known (LAMBENT_ZYGOTE_FD).

    Waits until the sandbox's init has attached the function's /var/task and written the
    function's environment (KEY=VALUE, NUL-separated) to `fd`, then becomes that function's
    runtime: what a cold start pays for is then only the handler's own import.
    """
    global json, _ENV
    import json  # noqa: F811 -- needed by the first invoke anyway; paid before the function waits
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    if not chunks:  # the sandbox was discarded unused
        sys.exit(0)
    os.environ.clear()
    for item in b"".join(chunks).split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            os.environb[key] = value
    time.tzset()
    _ENV = _env_snapshot()
    _read_log_settings()
    # The cwd we started in is the empty mount point under /var/task.
    os.chdir(os.environ.get("LAMBDA_TASK_ROOT") or "/var/task")


def main():
    global json
    address = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not address:
        _stderr("AWS_LAMBDA_RUNTIME_API is not set")
        sys.exit(1)
    client = RuntimeApiClient(address)
    _setup_output()
    _setup_sys_path()
    try:
        handler = _load_handler(os.environ.get("_HANDLER", ""))
    except _Fault as e:
        _post_init_error(client, _make_error(e.message, e.error_type, e.trace))
    except Exception:
        _post_init_error(client, _error_from_exception(*sys.exc_info()))

    client.send("GET", _NEXT_PATH)
    while True:
        if json is None:
            import json
        try:
            status, headers, body = client.receive()
        except OSError as e:
            _stderr("GET /next failed: %s" % e)
            sys.exit(1)
        if status != 200:
            _stderr("GET /next answered HTTP %d: %s"
                    % (status, bytes(body[:1024]).decode("utf-8", "replace")))
            sys.exit(1)
        try:
            _handle_invocation(client, handler, headers, body)
        except OSError as e:
            _stderr("posting the result failed: %s" % e)
            sys.exit(1)
        del headers, body

