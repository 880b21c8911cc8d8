// Hearth node runtime: loads one user handler and serves the worker protocol.
//
// Owns: the frames on fd 3 (docs/protocol.md is normative), turning INVOKE
// frames into (event, context), and handler results into RESULT frames, for
// Lambda's three handler styles: async (a promise), sync (a value) and
// callback (event, context, callback). CommonJS (.js, .cjs) and ES modules
// (.mjs) both load.
// Must never: write anything but frames to fd 3, answer before the
// function's output is written (on Linux, writes to a pipe are synchronous
// in node, so console.log has reached fd 1 when it returns), load per
// invocation, or rely on __filename or argv. It runs as
// `node --preserve-symlinks -e <this file>` from a read-only code directory.
// Node's standard library only.
//
// Pre-built mode (HEARTH_PREBUILT=1 at start; docs/runtimes.md): node and
// this file are loaded (and primed) before there is a function;
// specializeIfPrebuilt() then reads the SPECIALIZE frame off fd 3's socket,
// takes the function's environment and enters /var/task again before the
// handler is loaded.
'use strict';

const fs = require('fs');
const net = require('net');
const path = require('path');
const url = require('url');

const FD = 3;
const HEADER_LEN = 12; // magic u8, type u8, flags u16, meta_len u32, body_len u32 (big-endian)
const MAGIC = 0x48;
const READY = 1, INVOKE = 2, RESULT = 3, ERROR = 4, INIT_ERROR = 5, SPECIALIZE = 6;
const MAX_META = 1 << 20;
const MAX_BODY = 64 << 20;
const MAX_MESSAGE = 64 * 1024;
const JSON_TYPE = 'application/json';
const TEXT_TYPE = 'text/plain; charset=utf-8';
const BINARY_TYPE = 'application/octet-stream';
const TASK_DIR = '/var/task'; // where the sandbox mounts the code; fixed
const EX_SOFTWARE = 70; // a pre-built runtime's first frame was not a well-formed SPECIALIZE
// The code folder through a magic link: its absolute ancestors may be
// closed to this uid (--preserve-symlinks keeps node from resolving it).
// Set by main(), after a pre-built runtime has entered the folder.
let CODE = null;

class MarshalError extends Error {}

let sock = null;

function die(why) {
  try { fs.writeSync(2, 'hearth-node: ' + why + '\n'); } catch (e) { /* nothing left to tell */ }
  process.exit(2);
}

function prebuiltFail(why) {
  try { fs.writeSync(2, 'hearth-node: pre-built: ' + why + '\n'); } catch (e) { /* nothing left to tell */ }
  process.exit(EX_SOFTWARE);
}

function envItemOk(item) {
  return typeof item === 'string' && item.indexOf('=') >= 1 && !item.includes('\0') &&
    Buffer.from(item, 'utf8').toString('utf8') === item;
}

// The environment list of the SPECIALIZE frame's meta; exit 70 for anything else.
function specializeEnv(header, meta) {
  const magic = header.readUInt8(0), type = header.readUInt8(1), flags = header.readUInt16BE(2);
  const metaLen = header.readUInt32BE(4), bodyLen = header.readUInt32BE(8);
  if (magic !== MAGIC || type !== SPECIALIZE || flags !== 0 || bodyLen !== 0 || metaLen > MAX_META) {
    prebuiltFail('first frame is not a SPECIALIZE: header ' + header.toString('hex'));
  }
  if (!meta) return null; // the header is fine: wait for the rest
  let env;
  try {
    env = JSON.parse(utf8(meta)).env;
  } catch (e) {
    env = undefined;
  }
  if (!Array.isArray(env)) prebuiltFail('SPECIALIZE metadata is not an object with an "env" list');
  for (const item of env) {
    if (!envItemOk(item)) prebuiltFail('SPECIALIZE env item ' + JSON.stringify(item).slice(0, 200) + ' is not KEY=VALUE');
  }
  return env;
}

// The first frame, off the socket: {env, rest} (rest: bytes after it).
// EOF before it: exit 0 (never claimed); inside it: exit 70.
function readSpecialize() {
  return new Promise((resolve) => {
    let got = Buffer.alloc(0);
    const onEnd = () => (got.length ? prebuiltFail('EOF inside the SPECIALIZE frame') : process.exit(0));
    const onData = (chunk) => {
      got = got.length ? Buffer.concat([got, chunk]) : chunk;
      if (got.length < HEADER_LEN) return;
      const header = got.subarray(0, HEADER_LEN), end = HEADER_LEN + header.readUInt32BE(4);
      const env = specializeEnv(header, got.length >= end ? got.subarray(HEADER_LEN, end) : null);
      if (!env) return;
      sock.pause(); // serve() resumes it: nothing is lost in between
      sock.removeListener('data', onData);
      sock.removeListener('end', onEnd);
      resolve({env, rest: got.subarray(end)});
    };
    sock.on('data', onData);
    sock.on('end', onEnd);
  });
}

// In a pre-built runtime, waits for SPECIALIZE, then becomes the function's
// worker: exactly its environment (process.env writes through to the C
// environ, so child processes agree) and the code folder, mounted over
// /var/task after this process first entered it.
async function specializeIfPrebuilt() {
  if (process.env.HEARTH_PREBUILT !== '1') return Buffer.alloc(0);
  await primeForClaim();
  sock.write(frame(READY, {prebuilt: true})); // loaded: it may be given a function now
  const {env, rest} = await readSpecialize();
  // Only what changes: touching TZ (the same "UTC" in both) makes node
  // reload its time zone data, ~20 ms.
  const next = new Map();
  for (const item of env) {
    const eq = item.indexOf('=');
    next.set(item.slice(0, eq), item.slice(eq + 1));
  }
  for (const key of Object.keys(process.env)) {
    if (!next.has(key)) delete process.env[key];
  }
  for (const [key, value] of next) {
    if (process.env[key] !== value) process.env[key] = value;
  }
  try {
    process.chdir(TASK_DIR);
  } catch (e) {
    prebuiltFail('cannot enter ' + TASK_DIR + ': ' + message(e));
  }
  return rest;
}

// Runs, once, what a claim and a first call will run, while nobody waits:
// node compiles a function the first time it runs, so the loader, the
// event and context builders and the frame writer are compiled here, not
// on the cold start's path. The folder (in the sandbox's own /tmp) goes
// again before the claim.
async function primeForClaim() {
  const dir = '/tmp/.hearth-prime-' + process.pid, file = path.join(dir, 'prime.js');
  try {
    fs.mkdirSync(dir, 0o700);
    fs.writeFileSync(file, 'exports.handler = async (event) => event;\n');
    const mod = require(file);
    delete require.cache[file];
    await answer(mod.handler, {request_id: 'prime', trigger: 'invoke'}, Buffer.from('{}'));
  } catch (e) {
    /* a claim works without it, a little slower */
  } finally {
    try { fs.rmSync(dir, {recursive: true, force: true}); } catch (e) { /* nothing to undo */ }
  }
}

function frame(type, meta, body) {
  const metaBuf = Buffer.from(JSON.stringify(meta), 'utf8');
  const bodyBuf = body || Buffer.alloc(0);
  const header = Buffer.alloc(HEADER_LEN);
  header.writeUInt8(MAGIC, 0);
  header.writeUInt8(type, 1);
  header.writeUInt16BE(0, 2);
  header.writeUInt32BE(metaBuf.length, 4);
  header.writeUInt32BE(bodyBuf.length, 8);
  return Buffer.concat([header, metaBuf, bodyBuf]);
}

function message(err) {
  const text = err && err.message !== undefined ? String(err.message) : String(err);
  return text.slice(0, MAX_MESSAGE);
}

function errorType(err) {
  return (err && (err.name || (err.constructor && err.constructor.name))) || 'Error';
}

// Before anything is loaded the socket is not set up: write the one frame
// synchronously and go.
function initError(type, text) {
  fs.writeSync(FD, frame(INIT_ERROR, {error_type: type, message: text.slice(0, MAX_MESSAGE)}));
  process.exit(1);
}

async function loadHandler(spec) {
  const dot = spec.lastIndexOf('.');
  if (dot <= 0 || dot === spec.length - 1) {
    initError('HandlerNotFound', 'handler ' + JSON.stringify(spec) + ' is not of the form file.function');
  }
  const file = spec.slice(0, dot), name = spec.slice(dot + 1);
  const candidates = ['.js', '.mjs', '.cjs'].map((ext) => path.join(CODE, file + ext));
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found) {
    initError('ImportModuleError', 'cannot find module ' + JSON.stringify(file) + ' (.js, .mjs or .cjs)');
  }
  let mod;
  try {
    mod = found.endsWith('.mjs') ? await import(url.pathToFileURL(found).href) : require(found);
  } catch (err) {
    console.error(err && err.stack ? err.stack : String(err));
    initError('ImportModuleError', errorType(err) + ': ' + message(err));
  }
  let fn = mod ? mod[name] : undefined;
  if (fn === undefined && mod && mod.default && typeof mod.default === 'object') {
    fn = mod.default[name]; // a CommonJS module imported as ESM
  }
  if (typeof fn !== 'function') {
    initError('HandlerNotFound', 'module ' + JSON.stringify(file) + ' has no function ' + JSON.stringify(name));
  }
  return fn;
}

function makeEvent(meta, body) {
  const http = meta.trigger === 'http' && meta.http && typeof meta.http === 'object' ? meta.http : null;
  const text = utf8(body);
  if (http) {
    const event = {
      method: http.method || '', path: http.path || '/', query: http.query || {},
      headers: http.headers || {},
      body: text !== null ? text : body.toString('base64'), isBase64Encoded: text === null,
    };
    if ('resource' in http) { // a call through one of the function's routes
      event.resource = http.resource;
      event.pathParameters = http.pathParameters === undefined ? null : http.pathParameters;
    }
    return event;
  }
  if (body.length === 0) return {};
  if (text === null) return body;
  try { return JSON.parse(text); } catch (e) { return text; }
}

// The text of a UTF-8 buffer, or null when it is not UTF-8.
function utf8(buf) {
  try {
    return new TextDecoder('utf-8', {fatal: true}).decode(buf);
  } catch (e) {
    return null;
  }
}

// The INVOKE's attempt number: 1 for a synchronous call or a missing or bad value.
function attemptOf(meta) {
  const n = meta.attempt;
  return Number.isSafeInteger(n) && n >= 1 ? n : 1;
}

function makeContext(meta) {
  const deadline = Number(meta.deadline_ms) || 0;
  // invocationId and attempt are set for asynchronous invocations (trigger
  // "async"): the id is the same for every attempt, and delivery is at least
  // once, so a handler keys its side effects on it.
  const invocationId = meta.invocation_id === undefined || meta.invocation_id === null
    ? null : String(meta.invocation_id);
  return {
    awsRequestId: String(meta.request_id || ''),
    requestId: String(meta.request_id || ''),
    functionName: String(meta.function || ''),
    functionVersion: String(meta.version || ''),
    memoryLimitInMB: String(meta.memory_mb || ''),
    invokedFunctionArn: undefined,
    invocationId,
    attempt: attemptOf(meta),
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
}

function toJson(value) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new MarshalError('the result is not JSON serializable: ' + message(err));
  }
  return Buffer.from(text === undefined ? 'null' : text, 'utf8');
}

function encodePlain(result) {
  if (typeof result === 'string') return [TEXT_TYPE, Buffer.from(result, 'utf8')];
  if (Buffer.isBuffer(result) || result instanceof Uint8Array) return [BINARY_TYPE, Buffer.from(result)];
  return [JSON_TYPE, toJson(result)];
}

function encodeHttp(result) {
  const status = Number(result.statusCode);
  if (!Number.isInteger(status)) throw new MarshalError('statusCode must be an integer');
  if (status < 200 || status > 599) throw new MarshalError('statusCode ' + status + ' is outside 200-599');
  const raw = result.headers || {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new MarshalError('headers must be an object');
  const headers = {};
  let contentType = null;
  for (const [k, v] of Object.entries(raw)) {
    if (k.toLowerCase() === 'content-type') contentType = String(v);
    else headers[k] = String(v);
  }
  let type, data;
  const body = result.body;
  if (body === undefined || body === null) {
    [type, data] = [TEXT_TYPE, Buffer.alloc(0)];
  } else if (typeof body === 'string' && result.isBase64Encoded) {
    [type, data] = [BINARY_TYPE, Buffer.from(body, 'base64')];
  } else if (typeof body === 'string' || Buffer.isBuffer(body)) {
    [type, data] = encodePlain(body);
  } else {
    [type, data] = [JSON_TYPE, toJson(body)];
  }
  const meta = {content_type: contentType || type, status};
  if (Object.keys(headers).length) meta.headers = headers;
  return [meta, data];
}

function resultFrame(meta, result) {
  try {
    let out, data;
    if (meta.trigger === 'http' && result && typeof result === 'object' && 'statusCode' in result) {
      [out, data] = encodeHttp(result);
    } else {
      const [type, bytes] = encodePlain(result);
      [out, data] = [{content_type: type}, bytes];
    }
    return frame(RESULT, out, data);
  } catch (err) {
    console.error('MarshalError: ' + message(err));
    return frame(ERROR, {error_type: 'MarshalError', message: message(err)});
  }
}

// Runs the handler in whichever style it is written: a promise, a value,
// or (with three parameters) a callback.
function call(handler, event, context) {
  if (handler.length >= 3) {
    return new Promise((resolve, reject) => {
      const done = (err, value) => (err ? reject(err) : resolve(value));
      try {
        const r = handler(event, context, done);
        if (r && typeof r.then === 'function') r.then(resolve, reject);
      } catch (err) {
        reject(err);
      }
    });
  }
  return Promise.resolve().then(() => handler(event, context));
}

async function answer(handler, meta, body) {
  try {
    const result = await call(handler, makeEvent(meta, body), makeContext(meta));
    return resultFrame(meta, result);
  } catch (err) {
    console.error(err && err.stack ? err.stack : String(err));
    return frame(ERROR, {error_type: errorType(err), message: message(err)});
  }
}

// Cuts the byte stream of fd 3 into INVOKE frames, one answered at a time.
function serve(handler, rest) {
  let pending = rest;
  let busy = false;
  const next = async () => {
    if (busy || pending.length < HEADER_LEN) return;
    const magic = pending.readUInt8(0), type = pending.readUInt8(1), flags = pending.readUInt16BE(2);
    const metaLen = pending.readUInt32BE(4), bodyLen = pending.readUInt32BE(8);
    if (magic !== MAGIC || flags !== 0) die('protocol error: bad frame header');
    if (type !== INVOKE) die('protocol error: unexpected frame type ' + type);
    if (metaLen > MAX_META || bodyLen > MAX_BODY) die('protocol error: frame too large');
    if (pending.length < HEADER_LEN + metaLen + bodyLen) return;
    let meta;
    try {
      meta = metaLen ? JSON.parse(pending.subarray(HEADER_LEN, HEADER_LEN + metaLen).toString('utf8')) : {};
    } catch (e) {
      meta = null;
    }
    if (!meta || typeof meta !== 'object' || Array.isArray(meta)) die('protocol error: INVOKE metadata is not a JSON object');
    const body = Buffer.from(pending.subarray(HEADER_LEN + metaLen, HEADER_LEN + metaLen + bodyLen));
    pending = pending.subarray(HEADER_LEN + metaLen + bodyLen);
    busy = true;
    const out = await answer(handler, meta, body);
    sock.write(out);
    busy = false;
    next();
  };
  sock.on('data', (chunk) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    next();
  });
  sock.on('end', () => process.exit(0));
  sock.resume();
  next();
}

async function main() {
  try {
    fs.fstatSync(FD);
  } catch (e) {
    die('fd ' + FD + ' is not open: this program runs under hearthd (see docs/protocol.md)');
  }
  sock = new net.Socket({fd: FD, readable: true, writable: true});
  sock.on('error', () => process.exit(0)); // the daemon is gone: same as EOF
  const rest = await specializeIfPrebuilt();
  CODE = fs.existsSync('/proc/self/cwd') ? '/proc/self/cwd' : process.cwd();
  const handler = await loadHandler(process.env.HEARTH_HANDLER || '');
  sock.write(frame(READY, {runtime: 'node', runtime_version: process.versions.node}));
  serve(handler, rest);
}

main();
