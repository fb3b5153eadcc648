// user_function.mjs — resolves a Lambda handler string to the user's function.
// Owns: handler-string parsing, module lookup in LAMBDA_TASK_ROOT, CommonJS/ESM choice, and the
// Runtime.* init error classification. Semantics follow aws-lambda-ric UserFunction.js.

import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  HandlerNotFound,
  ImportModuleError,
  MalformedHandlerName,
  UserCodeSyntaxError,
} from './errors.mjs';

const require = createRequire(import.meta.url);

// `file.export[.nested]`: the module is everything before the FIRST dot of the last path segment.
const kFunctionExpr = /^([^.]*)\.(.*)$/;

export const kStreamingSymbol = Symbol.for('aws.lambda.runtime.handler.streaming');

function parse_handler(full) {
  if (full.includes('..')) {
    throw new MalformedHandlerName(
      `'${full}' is not a valid handler name. Use absolute paths when specifying root ` +
        'directories in handler names.',
    );
  }
  const base = path.basename(full);
  const module_root = full.slice(0, full.length - base.length);
  const match = kFunctionExpr.exec(base);
  if (!match) throw new MalformedHandlerName('Bad handler');
  return { module_root, module_name: match[1], handler_path: match[2] };
}

function is_file(p) {
  return fs.statSync(p, { throwIfNoEntry: false })?.isFile() ?? false;
}

// Nearest package.json decides whether `.js` is ESM; a node_modules boundary stops the search.
function package_type_is_module(folder) {
  for (;;) {
    if (folder.endsWith('/node_modules')) return false;
    const pj = path.join(folder, 'package.json');
    let text;
    try {
      text = fs.readFileSync(pj, 'utf8');
    } catch {
      text = undefined;
    }
    if (text !== undefined) {
      try {
        return JSON.parse(text)?.type === 'module';
      } catch (err) {
        console.warn(`${pj} cannot be read, it will be ignored for ES module detection purposes.`, err);
        return false;
      }
    }
    const parent = path.dirname(folder);
    if (parent === folder) return false;
    folder = parent;
  }
}

async function import_file(file) {
  return import(pathToFileURL(file).href);
}

// require() for CommonJS; import() when the resolved file is ESM (require of ESM fails on Node 20).
async function load_resolved(file) {
  if (file.endsWith('.mjs') || (file.endsWith('.js') && package_type_is_module(path.dirname(file)))) {
    return import_file(file);
  }
  try {
    return require(file);
  } catch (err) {
    if (err?.code === 'ERR_REQUIRE_ESM') return import_file(file);
    throw err;
  }
}

async function load_module(app_root, module_root, module_name) {
  const base = path.resolve(app_root, module_root, module_name);
  // An extensionless file or a directory (package.json "main" or index.js), through require().
  if (fs.existsSync(base)) {
    const resolved = require.resolve(base);
    return load_resolved(resolved);
  }
  if (is_file(`${base}.js`)) {
    const as_module = package_type_is_module(path.dirname(base));
    return as_module ? import_file(`${base}.js`) : require(`${base}.js`);
  }
  if (is_file(`${base}.mjs`)) return import_file(`${base}.mjs`);
  if (is_file(`${base}.cjs`)) return require(`${base}.cjs`);
  // Last resort: Node resolution from the task root (e.g. a package in node_modules). This throws
  // MODULE_NOT_FOUND with the message users know from Lambda ("Cannot find module 'x'...").
  const resolved = require.resolve(module_name, {
    paths: [app_root, path.join(app_root, module_root)],
  });
  return load_resolved(resolved);
}

function resolve_nested(object, handler_path) {
  return handler_path.split('.').reduce((nested, key) => nested?.[key], object);
}

// Resolves `handler_string` under `app_root`; throws Runtime.* errors for the known init failures
// and rethrows anything else user code threw while loading.
export async function load_handler(app_root, handler_string) {
  const { module_root, module_name, handler_path } = parse_handler(handler_string);
  let user_module;
  try {
    user_module = await load_module(app_root, module_root, module_name);
  } catch (err) {
    if (err instanceof SyntaxError) {
      throw new UserCodeSyntaxError(String(err));
    }
    if (err?.code === 'MODULE_NOT_FOUND' || err?.code === 'ERR_MODULE_NOT_FOUND') {
      throw new ImportModuleError(String(err));
    }
    throw err;
  }
  const handler = resolve_nested(user_module, handler_path);
  if (!handler) throw new HandlerNotFound(`${handler_string} is undefined or not exported`);
  if (typeof handler !== 'function') throw new HandlerNotFound(`${handler_string} is not a function`);
  return handler;
}

export function is_async_function(fn) {
  return fn?.constructor?.name === 'AsyncFunction';
}
