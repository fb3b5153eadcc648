// errors.mjs — error types the runtime reports and their wire shapes.
// The shapes follow aws-lambda-ric (Errors.js, XRayError.js): `{errorType, errorMessage, trace}`,
// with `trace` (not `stackTrace`) holding the stack split into lines.

class RuntimeError extends Error {}

function define(short_name) {
  const cls = class extends RuntimeError {};
  Object.defineProperty(cls, 'name', { value: short_name });
  cls.prototype.name = `Runtime.${short_name}`;
  return cls;
}

export const ImportModuleError = define('ImportModuleError');
export const HandlerNotFound = define('HandlerNotFound');
export const MalformedHandlerName = define('MalformedHandlerName');
export const UserCodeSyntaxError = define('UserCodeSyntaxError');
export const MalformedStreamingHandler = define('MalformedStreamingHandler');
export const JSONStringifyError = define('JSONStringifyError');
export const NodeJsExit = define('NodeJsExit');

export class UnhandledPromiseRejection extends RuntimeError {
  constructor(reason, promise) {
    super(reason);
    this.reason = reason;
    this.promise = promise;
  }
}
UnhandledPromiseRejection.prototype.name = 'Runtime.UnhandledPromiseRejection';

// Objects that quack like errors (e.g. from another realm, or hand-made) are reported as errors.
function looks_like_error(value) {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof value.name === 'string' &&
    typeof value.message === 'string' &&
    typeof value.stack === 'string' &&
    value.name !== '' &&
    value.message !== '' &&
    value.stack !== ''
  );
}

export function is_error(value) {
  return value instanceof Error || looks_like_error(value);
}

export function into_error(value) {
  return value instanceof Error ? value : new Error(value);
}

// Non-errors become `{errorType: typeof value, errorMessage: String(value), trace: []}`, as in the
// official client (so `throw "x"` reports errorType "string").
export function to_error_response(error) {
  try {
    if (is_error(error)) {
      return {
        errorType: error.name,
        errorMessage: error.message,
        trace: typeof error.stack === 'string' ? error.stack.split('\n') : [],
      };
    }
    return { errorType: typeof error, errorMessage: error.toString(), trace: [] };
  } catch {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or ' +
        'more of its message, name, and stack',
    };
  }
}

// The X-Ray cause document the official client sends alongside /error.
const kFrameWithLabel = /^\s*at (.*) \((.*):(\d+):\d+\)$/;
const kFrameWithoutLabel = /^\s*at (.*):(\d+):\d+$/;

export function to_xray_cause(error) {
  try {
    const stack = [];
    const paths = new Set();
    if (is_error(error)) {
      for (const line of error.stack.split('\n').slice(1)) {
        let m = kFrameWithLabel.exec(line);
        let frame;
        if (m) frame = { label: m[1], path: m[2], line: Number(m[3]) };
        else if ((m = kFrameWithoutLabel.exec(line))) {
          frame = { label: 'anonymous', path: m[1], line: Number(m[2]) };
        } else continue;
        stack.push(frame);
        paths.add(frame.path);
      }
    }
    const exception = is_error(error)
      ? { type: error.name, message: error.message, stack }
      : { type: typeof error, message: String(error), stack };
    return JSON.stringify({
      working_directory: process.cwd(),
      exceptions: [exception],
      paths: [...paths],
    });
  } catch {
    return undefined;
  }
}

// Text-format log rendering of an error: a tab, then JSON with name/message/stack made visible.
export function to_formatted(error) {
  const with_visible_fields = (_key, value) => {
    if (!(value instanceof Error)) return value;
    const out = Object.assign(
      { errorType: value.name, errorMessage: value.message, code: value.code },
      value,
    );
    if (typeof value.stack === 'string') out.stack = value.stack.split('\n');
    return out;
  };
  try {
    return '\t' + JSON.stringify(error, with_visible_fields);
  } catch {
    return '\t' + JSON.stringify(to_error_response(error));
  }
}
