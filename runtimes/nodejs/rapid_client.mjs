// rapid_client.mjs — the Runtime API (2018-06-01) over one keep-alive connection.
// Owns: HTTP framing of /next, /response, /error and /init/error.
// Never: user code, logging format, invoke semantics.
//
// Failures of the Runtime API itself (connection refused, non-2xx replies) are not recoverable
// for a runtime: the official clients exit, and the daemon treats the exit as the environment's
// death. Callers therefore get rejections only for conditions they may want to log first.

import http from 'node:http';
import net from 'node:net';

const kApiPrefix = '/2018-06-01/runtime';
const kErrorTypeHeader = 'Lambda-Runtime-Function-Error-Type';
const kXrayCauseHeader = 'Lambda-Runtime-Function-XRay-Error-Cause';
// Python and Go cap the X-Ray cause header at 1 MiB; a larger header is dropped, not truncated.
const kMaxXrayCauseBytes = 1024 * 1024;
// A reply head larger than this is not the Runtime API's (its heads are a few hundred bytes,
// plus a client context of at most 3,583 bytes).
const kMaxReplyHeadBytes = 1024 * 1024;

export class RuntimeApiError extends Error {
  constructor(message, status) {
    super(message);
    this.name = 'RuntimeApiError';
    this.status = status;
  }
}

// AWS_LAMBDA_RUNTIME_API is `host:port`; unlike the official client (split on ':'), accept a
// bracketed IPv6 literal too.
function parse_host_port(value) {
  if (!value) throw new RuntimeApiError('AWS_LAMBDA_RUNTIME_API is not set', 0);
  const colon = value.lastIndexOf(':');
  let host = colon >= 0 ? value.slice(0, colon) : value;
  const port = colon >= 0 ? Number.parseInt(value.slice(colon + 1), 10) : 80;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host, port };
}

// "HTTP/1.1 200 OK\r\nName: value\r\n…" (without the blank line) → {status, headers, length}.
function parse_reply_head(text) {
  const lines = text.split('\r\n');
  const status = Number.parseInt(lines[0].split(' ')[1], 10);
  const headers = {};
  for (let i = 1; i < lines.length; i++) {
    const colon = lines[i].indexOf(':');
    if (colon <= 0) continue;
    const name = lines[i].slice(0, colon).trim().toLowerCase();
    const value = lines[i].slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  if (!Number.isInteger(status)) throw new RuntimeApiError(`malformed reply: ${lines[0]}`, 0);
  if (headers['transfer-encoding'] !== undefined || headers['content-length'] === undefined) {
    throw new RuntimeApiError('reply without Content-Length framing', status);
  }
  const length = Number(headers['content-length']);
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new RuntimeApiError(`malformed Content-Length: ${headers['content-length']}`, status);
  }
  return { status, headers, length };
}

// HTTP/1.1 over one keep-alive socket, written by hand: Node's http module costs more per
// exchange than the rest of an invocation. Requests may be pipelined; replies are matched to
// them in order. The socket keeps the process alive only while a reply is awaited, so a
// callback handler's "wait for an empty event loop" (beforeExit) is not held up by it.
class Connection {
  constructor(host, port) {
    this.host_ = host;
    this.port_ = port;
    this.host_header_ = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    this.socket_ = null;
    this.waiting_ = []; // {resolve, reject} per request sent and not yet answered
    this.chunks_ = []; // received bytes not yet parsed
    this.size_ = 0;
    this.head_ = null; // the parsed head of the reply whose body is still arriving
    this.exchanges_ = 0; // replies read on this socket
  }

  head(method, path, headers, length) {
    let text = `${method} ${path} HTTP/1.1\r\nHost: ${this.host_header_}\r\n`;
    for (const name in headers) text += `${name}: ${headers[name]}\r\n`;
    if (length !== undefined) text += `Content-Length: ${length}\r\n`;
    return `${text}\r\n`;
  }

  // Writes `requests` (each an array of UTF-8 strings: head, then body) in one go and returns
  // one promise per request, for its reply. `idempotent[i]`: request i (GET /next) may be sent
  // again should the connection end before answering it.
  send(requests, idempotent) {
    const socket = this.socket_ ?? this.connect_();
    const reused = this.exchanges_ > 0;
    const promises = requests.map(
      (parts, i) =>
        new Promise((resolve, reject) =>
          this.waiting_.push({ resolve, reject, parts, reused, idempotent: idempotent[i] }),
        ),
    );
    socket.ref();
    socket.cork();
    for (const parts of requests) for (const part of parts) socket.write(part);
    socket.uncork();
    return promises;
  }

  connect_() {
    const socket = net.connect({ host: this.host_, port: this.port_, noDelay: true });
    // Events of a socket already given up (after an error) must not touch its successor.
    socket.on('data', (data) => this.socket_ === socket && this.on_data_(data));
    socket.on('error', (err) => this.socket_ === socket && this.fail_(err));
    socket.on('close', () => {
      if (this.socket_ === socket) this.fail_(new RuntimeApiError('Runtime API closed the connection', 0));
    });
    this.socket_ = socket;
    this.exchanges_ = 0;
    return socket;
  }

  // The connection is over: an error, or the server closed it (or said it would). Requests it
  // left unanswered, whose reply had not begun, go out again on a new connection: GET /next
  // (idempotent) once, or as often as the connection that dropped it had answered something;
  // any other request once, if it was sent on a connection already used (Node's recipe: a
  // server may close an idle keep-alive connection just as a request is sent on it). The rest
  // fail.
  fail_(err) {
    const began = this.size_ > 0 || this.head_ !== null;
    const answered = this.exchanges_ > 0;
    if (this.socket_ !== null) this.socket_.destroy();
    this.socket_ = null;
    this.chunks_ = [];
    this.size_ = 0;
    this.head_ = null;
    const waiting = this.waiting_;
    this.waiting_ = [];
    const again = [];
    waiting.forEach((w, i) => {
      const retry = w.idempotent ? answered || !w.retried : w.reused && !w.retried;
      if (retry && !(i === 0 && began)) again.push(w);
      else w.reject(err);
    });
    if (again.length === 0) return;
    const promises = this.send(
      again.map((w) => w.parts),
      again.map((w) => w.idempotent),
    );
    for (const w of this.waiting_) w.retried = true;
    promises.forEach((p, i) => p.then(again[i].resolve, again[i].reject));
  }

  on_data_(data) {
    this.chunks_.push(data);
    this.size_ += data.length;
    try {
      while (this.parse_one_()) {}
    } catch (err) {
      this.fail_(err);
    }
  }

  // Takes one complete reply off the received bytes, if there is one.
  parse_one_() {
    if (this.size_ === 0) return false;
    if (this.head_ === null) {
      const buf = this.joined_();
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buf.length > kMaxReplyHeadBytes) throw new RuntimeApiError('reply head too large', 0);
        return false;
      }
      this.head_ = parse_reply_head(buf.toString('latin1', 0, end));
      this.rest_(buf, end + 4);
    }
    if (this.size_ < this.head_.length) return false;
    const { status, headers, length } = this.head_;
    let body = '';
    if (length > 0) {
      const buf = this.joined_();
      body = buf.toString('utf8', 0, length);
      this.rest_(buf, length);
    }
    this.head_ = null;
    const w = this.waiting_.shift();
    if (w === undefined) throw new RuntimeApiError('a reply to no request', status);
    this.exchanges_ += 1;
    if (this.waiting_.length === 0 && this.socket_ !== null) this.socket_.unref();
    w.resolve({ status, headers, body });
    if (/\bclose\b/i.test(headers.connection ?? '')) {
      this.fail_(new RuntimeApiError('Runtime API closed the connection', 0));
      return false;
    }
    return true;
  }

  joined_() {
    if (this.chunks_.length > 1) this.chunks_ = [Buffer.concat(this.chunks_, this.size_)];
    return this.chunks_[0];
  }

  rest_(buf, from) {
    const rest = buf.subarray(from);
    this.chunks_ = rest.length > 0 ? [rest] : [];
    this.size_ = rest.length;
  }
}

export class RapidClient {
  constructor(host_port) {
    const { host, port } = parse_host_port(host_port);
    this.host_ = host;
    this.port_ = port;
    this.connection_ = new Connection(host, port);
    // The GET /next sent along with the last result (see post_).
    this.next_reply_ = null;
    // Streamed responses only (chunked with trailers): Node's http, on its own connection.
    this.agent_ = new http.Agent({ keepAlive: true, maxSockets: 1 });
  }

  // Resolves to { body: string, headers: object with lower-case keys }.
  async next() {
    let reply = this.next_reply_;
    this.next_reply_ = null;
    if (reply === null) {
      const c = this.connection_;
      [reply] = c.send([[c.head('GET', `${kApiPrefix}/invocation/next`, {})]], [true]);
    }
    reply = await reply;
    if (reply.status !== 200) {
      throw new RuntimeApiError(`GET /next answered ${reply.status}: ${reply.body}`, reply.status);
    }
    return reply;
  }

  async post_response(request_id, body_string) {
    const path = `${kApiPrefix}/invocation/${encodeURIComponent(request_id)}/response`;
    await this.post_(path, body_string, { 'Content-Type': 'application/json' });
  }

  // `error_response` is {errorType, errorMessage, trace}; `xray_cause` a JSON string or undefined.
  // `then_next`: false when the runtime exits after this report (a crash): the daemon would
  // hold the 202 of a pipelined POST until the next event, which this process must not take.
  async post_error(request_id, error_response, xray_cause, then_next = true) {
    const path = `${kApiPrefix}/invocation/${encodeURIComponent(request_id)}/error`;
    const headers = { 'Content-Type': 'application/json' };
    if (xray_cause !== undefined && xray_cause.length <= kMaxXrayCauseBytes) {
      headers[kXrayCauseHeader] = header_safe(xray_cause); // \uXXXX keeps it the same JSON
    }
    await this.post_(path, JSON.stringify(error_response), headers, then_next);
  }

  async post_init_error(error_response) {
    const headers = {
      'Content-Type': 'application/json',
      [kErrorTypeHeader]: header_safe(String(error_response.errorType)),
    };
    await this.post_(`${kApiPrefix}/init/error`, JSON.stringify(error_response), headers, false);
  }

  // Opens a streamed /response (chunked, with error trailers declared). Returns the ClientRequest
  // (a Writable; headers go out with the first write) and a promise of the server's reply.
  open_response_stream(request_id, content_type) {
    const path = `${kApiPrefix}/invocation/${encodeURIComponent(request_id)}/response`;
    let req;
    const reply = new Promise((resolve, reject) => {
      req = http.request(
        {
          host: this.host_,
          port: this.port_,
          method: 'POST',
          path,
          agent: this.agent_,
          headers: {
            'Lambda-Runtime-Function-Response-Mode': 'streaming',
            'Transfer-Encoding': 'chunked',
            Trailer: 'Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body',
            'Content-Type': content_type,
          },
        },
        (res) => {
          const chunks = [];
          res.on('data', (chunk) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
    });
    return { request: req, reply };
  }

  // POSTs a result, an error or an init error. After a result or an error the runtime's next
  // request is always GET /next: it goes in the same write, and the daemon answers both in one
  // (its 202 waits for the next event), so the runtime is woken once per invocation.
  async post_(path, body_string, headers, then_next = true) {
    const c = this.connection_;
    const head = c.head('POST', path, headers, Buffer.byteLength(body_string));
    const requests = [[head, body_string]];
    if (then_next) requests.push([c.head('GET', `${kApiPrefix}/invocation/next`, {})]);
    const [reply, next] = c.send(requests, [false, true]);
    if (then_next) {
      next.catch(() => {}); // its failure is reported by whoever awaits it in next()
      this.next_reply_ = next;
    }
    const { status, body } = await reply;
    if (status < 200 || status > 299) {
      throw new RuntimeApiError(`POST ${path} answered ${status}: ${body}`, status);
    }
  }
}

// Header values must be latin1 without control characters, or http.request throws.
export function header_safe(text) {
  return text.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
