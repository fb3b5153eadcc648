// logging.mjs — console patching in the format of aws-lambda-ric's LogPatch.js.
// Owns: the current request id for log lines, console.* replacement, synchronous stdout writes.
// Never: the Runtime API.
//
// Lines are written with fs.writeSync(1, ...) rather than process.stdout: writes to a pipe through
// process.stdout are asynchronous in Node, and the daemon attributes to an invocation whatever is
// in the pipe when the response arrives, so every line must be in the pipe before we POST.

import fs from 'node:fs';
import { format } from 'node:util';
import { into_error, to_formatted } from './errors.mjs';

// Shared through a global symbol like the official client, so a second copy of this module (or
// user code that knows the symbol) sees the same id.
const kRequestIdSymbol = Symbol.for('aws.lambda.runtime.requestId');

export function set_request_id(id) {
  globalThis[kRequestIdSymbol] = id;
}

function request_id() {
  return globalThis[kRequestIdSymbol];
}

const kLevels = Object.freeze({
  TRACE: { name: 'TRACE', priority: 1 },
  DEBUG: { name: 'DEBUG', priority: 2 },
  INFO: { name: 'INFO', priority: 3 },
  WARN: { name: 'WARN', priority: 4 },
  ERROR: { name: 'ERROR', priority: 5 },
  FATAL: { name: 'FATAL', priority: 6 },
});

const kSleepCell = new Int32Array(new SharedArrayBuffer(4));

// Writes all of `text` to `fd`. fd 1 is blocking unless user code touched process.stdout (libuv
// then makes the pipe non-blocking), so EAGAIN is possible when the reader is slow: wait briefly
// and retry rather than drop the line. A closed stdout (EPIPE, EBADF) drops the line.
export function write_fully(fd, text) {
  let buf = null;
  let offset = 0;
  for (;;) {
    try {
      if (buf === null) {
        const written = fs.writeSync(fd, text);
        if (written === Buffer.byteLength(text)) return;
        buf = Buffer.from(text);
        offset = written;
      } else {
        offset += fs.writeSync(fd, buf, offset);
        if (offset >= buf.length) return;
      }
    } catch (err) {
      if (err.code !== 'EAGAIN') return;
      if (buf === null) buf = Buffer.from(text);
      Atomics.wait(kSleepCell, 0, 0, 1);
    }
  }
}

function error_fields(value) {
  return {
    errorType: value?.constructor?.name ?? 'UnknownError',
    errorMessage: value.message,
    stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack,
  };
}

function json_error_replacer(_key, value) {
  return value instanceof Error ? Object.assign(error_fields(value), value) : value;
}

function format_json(level, params) {
  const record = { timestamp: new Date().toISOString(), level: level.name, requestId: request_id() };
  if (params.length === 1) {
    record.message = params[0];
    try {
      return JSON.stringify(record, json_error_replacer);
    } catch {
      record.message = format(params[0]);
      return JSON.stringify(record);
    }
  }
  record.message = format(...params);
  const first_error = params.find((p) => p instanceof Error);
  if (first_error !== undefined) Object.assign(record, error_fields(first_error));
  return JSON.stringify(record);
}

function format_text(level, params) {
  return `${new Date().toISOString()}\t${request_id()}\t${level.name}\t${format(...params)}`;
}

// Newlines become \r so that one console call stays one log event downstream.
function make_logger(formatter) {
  return (level, params) => write_fully(1, formatter(level, params).replace(/\n/g, '\r') + '\n');
}

let log_error_impl = null;

// Logs an error the runtime itself reports ("Invoke Error", "Uncaught Exception").
export function log_error(message, error) {
  log_error_impl(message, error);
}

export function patch_console(env) {
  const json = env.AWS_LAMBDA_LOG_FORMAT?.toUpperCase() === 'JSON';
  const log = make_logger(json ? format_json : format_text);
  const threshold = kLevels[env.AWS_LAMBDA_LOG_LEVEL?.toUpperCase()] ?? kLevels.TRACE;
  const nop = () => {};
  const method = (level) =>
    level.priority >= threshold.priority ? (...params) => log(level, params) : nop;

  console.trace = method(kLevels.TRACE);
  console.debug = method(kLevels.DEBUG);
  console.info = method(kLevels.INFO);
  console.log = console.info;
  console.warn = method(kLevels.WARN);
  console.error = method(kLevels.ERROR);
  console.fatal = (...params) => log(kLevels.FATAL, params);

  log_error_impl = json
    ? (_message, error) => console.error(into_error(error))
    : (message, error) => console.error(message, to_formatted(into_error(error)));
}
