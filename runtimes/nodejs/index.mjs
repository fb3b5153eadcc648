// index.mjs — Lambent's Node.js runtime client (entry point).
// Started by the daemon as `node $LAMBDA_RUNTIME_DIR/nodejs/index.mjs` with cwd = LAMBDA_TASK_ROOT.
// Owns: loading the handler named by _HANDLER, the invoke loop, the `context` object and the
// callback/promise programming model, with the semantics of aws-lambda-ric (Runtime.js,
// CallbackContext.js, InvokeContext.js). Uses only Node's standard library.
// Never: anything but the Runtime API; no timeouts of its own (the daemon enforces deadlines).
//
// Startup cost matters (cold-node target: `node -e 0` + 10 ms), so imports stay minimal.

import {
  JSONStringifyError,
  MalformedStreamingHandler,
  NodeJsExit,
  UnhandledPromiseRejection,
  to_error_response,
  to_xray_cause,
} from './errors.mjs';
import { log_error, patch_console, set_request_id, write_fully } from './logging.mjs';
import { RapidClient } from './rapid_client.mjs';
import { is_async_function, kStreamingSymbol, load_handler } from './user_function.mjs';

const kExitUncaughtException = 129;
const kExitUnhandledRejection = 128;
const kExitInitError = 129;
const kExitRuntimeApiFailure = 1;

const env = process.env;

// --- stdio drain -------------------------------------------------------------------------------
// process.stdout/stderr writes to pipes are asynchronous. We never touch those streams (creating
// one makes the fd non-blocking), but if user code does, whatever it queued must reach the pipe
// before we post a result. Wrap the lazy getters to learn whether the streams were ever created.
const created_streams = [];
for (const name of ['stdout', 'stderr']) {
  const descriptor = Object.getOwnPropertyDescriptor(process, name);
  if (!descriptor?.get || !descriptor.configurable) continue;
  let stream;
  Object.defineProperty(process, name, {
    configurable: true,
    enumerable: descriptor.enumerable,
    get() {
      if (stream === undefined) {
        stream = descriptor.get.call(process);
        created_streams.push(stream);
      }
      return stream;
    },
  });
}

function drain_stdio() {
  const pending = created_streams.filter((s) => s.writableLength > 0 && !s.destroyed);
  if (pending.length === 0) return undefined;
  return Promise.all(
    pending.map(
      (s) =>
        new Promise((resolve) => {
          const done = () => {
            s.off('drain', done);
            s.off('error', done);
            s.off('close', done);
            resolve();
          };
          s.on('drain', done);
          s.on('error', done);
          s.on('close', done);
        }),
    ),
  );
}

async function exit_after_drain(code) {
  await drain_stdio();
  process.exit(code);
}

// Runtime API failures are not recoverable: report on stderr and let the daemon see the exit.
function fatal(err) {
  write_fully(2, `Lambent Node.js runtime: ${err?.stack ?? err}\n`);
  process.exit(kExitRuntimeApiFailure);
}

// --- process-wide hooks ----------------------------------------------------------------------
// One beforeExit listener, retargeted per invocation: it is how "wait for the event loop to be
// empty" is implemented for callback handlers, exactly like the official client.
let before_exit = () => {};
process.on('beforeExit', () => before_exit());

let client;
let current = null; // the invocation whose outcome has not been posted yet, if any
let in_init = true;

async function report_crash(error, exit_code) {
  try {
    if (in_init) {
      await client.post_init_error(to_error_response(error));
    } else if (current !== null) {
      const invocation = current;
      current = null;
      // A streamed response holds the only connection: report through its trailers instead.
      if (invocation.abort_stream) await invocation.abort_stream(error);
      else {
        const response = to_error_response(error);
        await client.post_error(invocation.id, response, to_xray_cause(error), /*then_next=*/ false);
      }
    }
  } catch (err) {
    write_fully(2, `Lambent Node.js runtime: could not report error: ${err?.message ?? err}\n`);
  }
  await exit_after_drain(exit_code);
}

process.on('uncaughtException', (error) => {
  log_error('Uncaught Exception', error);
  report_crash(error, kExitUncaughtException);
});

process.on('unhandledRejection', (reason, promise) => {
  const error = new UnhandledPromiseRejection(reason, promise);
  log_error('Unhandled Promise Rejection', error);
  report_crash(error, kExitUnhandledRejection);
});

// --- one invocation ----------------------------------------------------------------------------

function parse_json_header(value, name) {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new Error(`Cannot parse ${name} as json: ${err.toString()}`);
  }
}

function serialize_result(result) {
  // JSON.stringify(undefined) and of a bare function yield undefined, not a string.
  return JSON.stringify(result === undefined ? null : result) ?? 'null';
}

class Invocation {
  constructor(id, handler_is_async) {
    this.id = id;
    this.handler_is_async_ = handler_is_async;
    this.finished_ = false; // first of callback/succeed/fail/done wins, later calls are no-ops
    this.wait_for_empty_loop_ = true;
    this.abort_stream = null; // set while a streamed response is open

    const first_call_only =
      (fn) =>
      (...args) => {
        if (this.finished_) return;
        this.finished_ = true;
        fn(...args);
      };
    this.callback = first_call_only((err, result) => this.on_callback_(err, result));
    this.done = first_call_only((err, result) => this.on_done_(err, result));
    this.succeed = first_call_only((result) => this.on_done_(null, result));
    this.fail = first_call_only((err) => this.on_done_(err ?? 'handled', null));
  }

  context(headers) {
    const invocation = this;
    const deadline = Number(headers['lambda-runtime-deadline-ms']);
    return {
      get callbackWaitsForEmptyEventLoop() {
        return invocation.wait_for_empty_loop_;
      },
      set callbackWaitsForEmptyEventLoop(value) {
        invocation.wait_for_empty_loop_ = value;
      },
      succeed: this.succeed,
      fail: this.fail,
      done: this.done,
      functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
      functionName: env.AWS_LAMBDA_FUNCTION_NAME,
      memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
      clientContext: parse_json_header(headers['lambda-runtime-client-context'], 'ClientContext'),
      identity: parse_json_header(headers['lambda-runtime-cognito-identity'], 'CognitoIdentity'),
      invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
      awsRequestId: this.id,
      tenantId: headers['lambda-runtime-aws-tenant-id'],
      getRemainingTimeInMillis: () => deadline - Date.now(),
    };
  }

  // If the loop drains before any outcome: async handlers fail (a promise that never settled),
  // other handlers succeed with null (a callback handler that forgot to call back).
  on_loop_drained() {
    this.finished_ = true;
    before_exit = () => {};
    if (this.handler_is_async_) {
      // The words of the official runtime interface client (aws-lambda-nodejs-runtime-
      // interface-client, src/Errors.js), which users search for.
      this.post_error_(new NodeJsExit(
          'The Lambda runtime client detected an unexpected Node.js exit code. This is most ' +
          'commonly caused by a Promise that was never settled. For more information, see ' +
          'https://nodejs.org/docs/latest/api/process.html#exit-codes'));
    } else {
      this.post_response_(null);
    }
  }

  on_callback_(err, result) {
    before_exit = () => {};
    if (err !== undefined && err !== null) {
      this.post_error_(err);
    } else if (!this.wait_for_empty_loop_) {
      this.post_response_(result);
    } else {
      before_exit = () => {
        before_exit = () => {};
        setImmediate(() => this.post_response_(result));
      };
    }
  }

  on_done_(err, result) {
    before_exit = () => {};
    if (err !== undefined && err !== null) this.post_error_(err);
    else this.post_response_(result);
  }

  post_response_(result) {
    let body;
    try {
      body = serialize_result(result);
    } catch (err) {
      const error = new JSONStringifyError('Unable to stringify response body');
      error.cause = err;
      this.post_error_(error);
      return;
    }
    this.finish_((client_) => client_.post_response(this.id, body));
  }

  post_error_(error) {
    log_error('Invoke Error', error);
    const response = to_error_response(error);
    const cause = to_xray_cause(error);
    this.finish_((client_) => client_.post_error(this.id, response, cause));
  }

  // A streaming invocation is complete when the Runtime API answered the streamed POST.
  async stream_(body, headers) {
    before_exit = () => {}; // the open POST keeps the loop alive; no callback semantics
    let context;
    let event;
    try {
      context = this.context(headers);
      event = JSON.parse(body);
    } catch (err) {
      this.post_error_(err);
      return;
    }
    await streaming.run_streaming(
      client,
      this.id,
      handler,
      event,
      context,
      (error) => log_error('Invoke Error', error),
      (abort) => (this.abort_stream = abort),
    );
    if (current !== this) return;
    current = null;
    await drain_stdio();
    schedule_next();
  }

  finish_(post) {
    if (current !== this) return; // a crash already reported this invocation
    current = null;
    const drained = drain_stdio();
    const send = () => post(client).then(schedule_next, fatal);
    if (drained === undefined) send();
    else drained.then(send);
  }
}

function is_promise(value) {
  return value !== null && typeof value === 'object' && typeof value.then === 'function';
}

let handler;
let handler_is_async = false;
let streaming = null; // ./streaming.mjs, loaded only for streaming handlers

async function handle_once() {
  const { body, headers } = await client.next();
  const id = headers['lambda-runtime-aws-request-id'];
  if (!id) throw new Error('invocation id is missing or invalid');
  set_request_id(id);
  const trace_id = headers['lambda-runtime-trace-id'];
  if (trace_id) env._X_AMZN_TRACE_ID = trace_id;
  else delete env._X_AMZN_TRACE_ID;

  const invocation = new Invocation(id, handler_is_async);
  current = invocation;
  if (streaming !== null) {
    await invocation.stream_(body, headers);
    return;
  }
  before_exit = () => invocation.on_loop_drained();
  try {
    const context = invocation.context(headers);
    const event = JSON.parse(body);
    const result = handler(event, context, invocation.callback);
    if (is_promise(result)) result.then(invocation.succeed, invocation.fail);
  } catch (err) {
    invocation.callback(err);
  }
}

function schedule_next() {
  setImmediate(() => handle_once().catch(fatal));
}

// --- startup -----------------------------------------------------------------------------------

patch_console(env);
try {
  client = new RapidClient(env.AWS_LAMBDA_RUNTIME_API);
} catch (err) {
  fatal(err);
}

// The global the official runtime provides for response streaming.
globalThis.awslambda ??= {
  streamifyResponse(fn, options) {
    fn[kStreamingSymbol] = 'response';
    if (typeof options?.highWaterMark === 'number') {
      fn[Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark')] = options.highWaterMark;
    }
    return fn;
  },
  HttpResponseStream: {
    from: (stream, prelude) => streaming.http_response_stream_from(stream, prelude),
  },
};

try {
  handler = await load_handler(env.LAMBDA_TASK_ROOT ?? process.cwd(), env._HANDLER ?? '');
  handler_is_async = is_async_function(handler);
  const mode = handler[kStreamingSymbol];
  if (mode !== undefined && mode !== null && mode !== false) {
    if (mode !== 'response') {
      throw new MalformedStreamingHandler('Only response streaming is supported.');
    }
    streaming = await import('./streaming.mjs');
  }
} catch (error) {
  log_error('Uncaught Exception', error);
  try {
    await client.post_init_error(to_error_response(error));
  } catch (err) {
    write_fully(2, `Lambent Node.js runtime: could not report init error: ${err?.message}\n`);
  }
  await exit_after_drain(kExitInitError);
}
in_init = false;
schedule_next();
