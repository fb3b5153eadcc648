// streaming.mjs — response streaming for handlers wrapped in awslambda.streamifyResponse.
// Loaded only when the handler streams. Wire format as aws-lambda-ric (ResponseStream.js,
// HttpResponseStream.js): a chunked /response with `Lambda-Runtime-Function-Response-Mode:
// streaming`; a failure after the stream started is reported in the chunked trailers
// `Lambda-Runtime-Function-Error-Type` and `Lambda-Runtime-Function-Error-Body` (base64 JSON).

import { to_error_response } from './errors.mjs';
import { header_safe } from './rapid_client.mjs';

const kDefaultContentType = 'application/octet-stream';

function make_response_stream(request) {
  request.setContentType = (content_type) => {
    if (request.headersSent) throw new Error('Cannot set content-type, too late.');
    request.setHeader('Content-Type', content_type);
  };
  return request;
}

function end_with_error(request, error) {
  const body = Buffer.from(JSON.stringify(to_error_response(error))).toString('base64');
  if (request.writableEnded) return;
  request.addTrailers({
    'Lambda-Runtime-Function-Error-Type': header_safe(String(to_error_response(error).errorType)),
    'Lambda-Runtime-Function-Error-Body': body,
  });
  request.end();
}

// `awslambda.HttpResponseStream`: prefixes the stream with the JSON prelude of an HTTP integration
// response (status, headers, cookies), which ends with 8 NUL bytes. Defined by index.mjs at startup
// because user modules may capture it at load time, before this module is loaded.
export function http_response_stream_from(stream, prelude) {
  stream.setContentType('application/vnd.awslambda.http-integration-response');
  stream.write(JSON.stringify(prelude ?? {}));
  stream.write(Buffer.alloc(8));
  return stream;
}

// Runs one streaming invocation. Resolves once the Runtime API answered the stream; rejects only
// for Runtime API failures.
// `on_open(abort)` receives a function that ends the stream with an error (for crashes reported
// from outside the handler) and resolves when the trailers were written.
export async function run_streaming(client, request_id, handler, event, context, on_error, on_open) {
  const { request, reply } = client.open_response_stream(request_id, kDefaultContentType);
  const stream = make_response_stream(request);
  on_open(
    (error) =>
      new Promise((resolve) => {
        request.once('finish', resolve).once('close', resolve).once('error', resolve);
        end_with_error(request, error);
        if (request.writableFinished) resolve();
      }),
  );
  try {
    const result = handler(event, stream, context);
    if (result === null || typeof result !== 'object' || typeof result.then !== 'function') {
      throw new Error('Streaming does not support non-async handlers.');
    }
    await result;
    if (!request.writableEnded) throw new Error('Response stream is not finished.');
  } catch (error) {
    on_error(error);
    end_with_error(request, error);
  }
  const { status, body } = await reply;
  if (status < 200 || status > 299) {
    throw new Error(`streamed POST /response answered ${status}: ${body}`);
  }
}
