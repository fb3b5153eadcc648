// rapid_client.mjs — the Runtime API (2018-06-01) over one keep-alive connection.
// Owns: HTTP framing of /next, /response, /error and /init/error.
// Never: user code, logging format, invoke semantics.
//
// Failures of the Runtime API itself (connection refused, non-2xx replies) are not recoverable
// for a runtime: the official clients exit, and the daemon treats the exit as the environment's
// death. Callers therefore get rejections only for conditions they may want to log first.

import http from 'node:http';

const kApiPrefix = '/2018-06-01/runtime';
const kErrorTypeHeader = 'Lambda-Runtime-Function-Error-Type';
const kXrayCauseHeader = 'Lambda-Runtime-Function-XRay-Error-Cause';
// Python and Go cap the X-Ray cause header at 1 MiB; a larger header is dropped, not truncated.
const kMaxXrayCauseBytes = 1024 * 1024;

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

export class RapidClient {
  constructor(host_port) {
    const { host, port } = parse_host_port(host_port);
    this.host_ = host;
    this.port_ = port;
    // One socket, reused for every exchange, as the official clients do. Idle keep-alive sockets
    // are unref'd by the agent, so a pending beforeExit still fires between exchanges.
    this.agent_ = new http.Agent({ keepAlive: true, maxSockets: 1 });
  }

  // Resolves to { body: string, headers: object with lower-case keys }.
  async next() {
    const reply = await this.request_('GET', `${kApiPrefix}/invocation/next`, undefined, undefined);
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
  async post_error(request_id, error_response, xray_cause) {
    const path = `${kApiPrefix}/invocation/${encodeURIComponent(request_id)}/error`;
    const headers = { 'Content-Type': 'application/json' };
    if (xray_cause !== undefined && xray_cause.length <= kMaxXrayCauseBytes) {
      headers[kXrayCauseHeader] = xray_cause;
    }
    await this.post_(path, JSON.stringify(error_response), headers);
  }

  async post_init_error(error_response) {
    const headers = {
      'Content-Type': 'application/json',
      [kErrorTypeHeader]: header_safe(String(error_response.errorType)),
    };
    await this.post_(`${kApiPrefix}/init/error`, JSON.stringify(error_response), headers);
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

  async post_(path, body_string, headers) {
    const reply = await this.request_('POST', path, headers, body_string);
    if (reply.status < 200 || reply.status > 299) {
      throw new RuntimeApiError(`POST ${path} answered ${reply.status}: ${reply.body}`, reply.status);
    }
  }

  async request_(method, path, headers, body) {
    try {
      return await this.request_once_(method, path, headers, body);
    } catch (err) {
      // The server may close an idle keep-alive connection just as we reuse it; then the request
      // never reached it and one retry on a fresh connection is safe (Node's documented recipe).
      if (err.reused_socket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
        return this.request_once_(method, path, headers, body);
      }
      throw err;
    }
  }

  request_once_(method, path, headers, body) {
    return new Promise((resolve, reject) => {
      const options = {
        host: this.host_,
        port: this.port_,
        method,
        path,
        agent: this.agent_,
        headers: headers ?? {},
      };
      if (body !== undefined) options.headers['Content-Length'] = Buffer.byteLength(body);
      const req = http.request(options, (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () => {
          const text =
            chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode, headers: res.headers, body: text });
        });
        res.on('error', reject);
      });
      req.on('error', (err) => {
        err.reused_socket = req.reusedSocket;
        reject(err);
      });
      req.end(body);
    });
  }
}

// Header values must be latin1 without control characters, or http.request throws.
export function header_safe(text) {
  return text.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
