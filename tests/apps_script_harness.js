// Runs apps_script/google_forms.gs under Node with small stand-ins for the Apps Script services it
// calls (Utilities, UrlFetchApp, PropertiesService, ScriptApp, FormApp, LockService), built on
// Node's crypto and following the Apps Script reference: bytes are Java-style signed (-128..127),
// Script Properties hold strings of at most 9 kB, UrlFetchApp.fetch is synchronous.
//
// Input (stdin, JSON): {run: "sendFormResponse" | "retryPendingSends" | "install",
//   form: {id, title, items: [{title, type, rows?}]}, response: {id, timestamp, respondentEmail,
//   answers: [<response of item i>]}, properties: {...}, now: <ms, optional>,
//   fetch: [<per call: {"status": 503, "body": "..."}, {"error": "..."}, or {"live": true}>]}.
// A call without a planned outcome, or with {"live": true}, is really sent (HTTP, synchronously
// through a child node process) and the script sees the server's answer.
// Output (stdout, JSON): {requests: [{url, method, headers, contentType, payload_base64,
//   muteHttpExceptions, followRedirects}], answers: [{status} | {error}], properties, triggers,
//   logs, error}.
'use strict';

const childProcess = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const vm = require('vm');

const SCRIPT = path.join(__dirname, '..', 'apps_script', 'google_forms.gs');
const PROPERTY_VALUE_LIMIT = 9 * 1024;

const input = JSON.parse(fs.readFileSync(0, 'utf8'));
const output = { requests: [], answers: [], properties: {}, triggers: [], logs: [], error: null };

const signed = (buffer) => Array.from(buffer, (byte) => (byte > 127 ? byte - 256 : byte));
const unsigned = (bytes) => (typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : Buffer.from(bytes.map((b) => b & 0xff)));

const Utilities = {
  newBlob: (data) => ({ getBytes: () => signed(Buffer.from(String(data), 'utf8')) }),
  computeHmacSha256Signature: (value, key) =>
    signed(crypto.createHmac('sha256', unsigned(key)).update(unsigned(value)).digest()),
  base64Encode: (data) => unsigned(data).toString('base64'),
  base64Decode: (text) => {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw new Error('Could not decode string.');
    return signed(Buffer.from(text, 'base64'));
  },
};

const properties = new Map(Object.entries(input.properties || {}));
const scriptProperties = {
  getProperty: (name) => (properties.has(name) ? properties.get(name) : null),
  getProperties: () => Object.fromEntries(properties),
  getKeys: () => Array.from(properties.keys()),
  setProperty: (name, value) => {
    const text = String(value);
    if (Buffer.byteLength(name) + Buffer.byteLength(text) > PROPERTY_VALUE_LIMIT) throw new Error('Argument too large: value');
    properties.set(name, text);
    return scriptProperties;
  },
  deleteProperty: (name) => {
    properties.delete(name);
    return scriptProperties;
  },
};
const PropertiesService = { getScriptProperties: () => scriptProperties };

const planned = (input.fetch || []).slice();
const UrlFetchApp = {
  fetch: (url, params) => {
    const payload = unsigned(params.payload);
    output.requests.push({
      url,
      method: params.method,
      headers: params.headers,
      contentType: params.contentType,
      payload_base64: payload.toString('base64'),
      muteHttpExceptions: params.muteHttpExceptions,
      followRedirects: params.followRedirects,
    });
    const plan = planned.shift() || { live: true };
    const answer = plan.live ? send(url, params, payload) : plan;
    output.answers.push(answer.error ? { error: answer.error } : { status: answer.status });
    if (answer.error) throw new Error(answer.error);
    if (answer.status >= 400 && !params.muteHttpExceptions) throw new Error(`Request failed, returned code ${answer.status}`);
    return { getResponseCode: () => answer.status, getContentText: () => answer.body || '' };
  },
};

// A real, synchronous POST (UrlFetchApp blocks the script): a child node process sends it.
function send(url, params, payload) {
  const child = `
    const chunks = [];
    process.stdin.on('data', (c) => chunks.push(c)).on('end', () => {
      const { url, headers, payload } = JSON.parse(Buffer.concat(chunks));
      const body = Buffer.from(payload, 'base64');
      const request = require(url.startsWith('https:') ? 'https' : 'http').request(url, { method: 'POST',
        headers: { ...headers, 'Content-Length': body.length } }, (response) => {
        const parts = [];
        response.on('data', (c) => parts.push(c)).on('end', () => process.stdout.write(JSON.stringify(
          { status: response.statusCode, body: Buffer.concat(parts).toString('utf8') })));
      });
      request.on('error', (error) => process.stdout.write(JSON.stringify({ error: error.message })));
      request.end(body);
    });`;
  const headers = { ...params.headers, 'Content-Type': params.contentType };
  const done = childProcess.spawnSync(process.execPath, ['-e', child], {
    input: JSON.stringify({ url, headers, payload: payload.toString('base64') }), timeout: 30000,
  });
  return done.status === 0 && done.stdout.length ? JSON.parse(done.stdout) : { error: `no answer (${done.stderr})` };
}

const ItemType = Object.freeze(Object.fromEntries(
  ['CHECKBOX', 'CHECKBOX_GRID', 'DATE', 'DATETIME', 'DURATION', 'FILE_UPLOAD', 'GRID', 'LIST', 'MULTIPLE_CHOICE',
    'PARAGRAPH_TEXT', 'RATING', 'SCALE', 'TEXT', 'TIME'].map((name) => [name, name])));

const formSpec = input.form || { id: 'form-id', title: 'Form', items: [] };
const form = { getId: () => formSpec.id, getTitle: () => formSpec.title };
const FormApp = { ItemType, getActiveForm: () => form };

function item(spec, index) {
  const rows = () => {
    if (!spec.rows) throw new Error(`Item ${index} is not a grid`);
    return spec.rows.slice();
  };
  return {
    getTitle: () => spec.title,
    getType: () => ItemType[spec.type],
    asGridItem: () => {
      if (spec.type !== 'GRID') throw new Error('not a grid item');
      return { getRows: rows };
    },
    asCheckboxGridItem: () => {
      if (spec.type !== 'CHECKBOX_GRID') throw new Error('not a checkbox grid item');
      return { getRows: rows };
    },
  };
}

function formResponse(spec) {
  return {
    getId: () => spec.id,
    getTimestamp: () => new Date(spec.timestamp),
    getRespondentEmail: () => spec.respondentEmail || '',
    // Items left unanswered have no item response, as in Apps Script.
    getItemResponses: () => formSpec.items
      .map((itemSpec, index) => ({ itemSpec, index, answer: spec.answers[index] }))
      .filter(({ answer }) => answer !== null && answer !== undefined)
      .map(({ itemSpec, index, answer }) => ({ getItem: () => item(itemSpec, index), getResponse: () => answer })),
  };
}

const triggers = [];
function builder(handler) {
  const create = (details) => {
    triggers.push({ handler, ...details });
    return { getHandlerFunction: () => handler };
  };
  return {
    forForm: (target) => ({ onFormSubmit: () => ({ create: () => create({ kind: 'onFormSubmit', form: target.getId() }) }) }),
    timeBased: () => ({ everyMinutes: (minutes) => ({ create: () => create({ kind: 'timeBased', everyMinutes: minutes }) }) }),
  };
}
const ScriptApp = {
  getProjectTriggers: () => triggers.map((t) => ({ getHandlerFunction: () => t.handler, trigger: t })),
  deleteTrigger: (handle) => triggers.splice(triggers.indexOf(handle.trigger), 1),
  newTrigger: builder,
};
for (const existing of input.triggers || []) triggers.push({ ...existing });

const LockService = { getScriptLock: () => ({ tryLock: () => true, waitLock: () => undefined, releaseLock: () => undefined }) };

const now = input.now;
const RealDate = Date;
class ScriptDate extends RealDate {
  constructor(...args) {
    if (args.length === 0 && now !== undefined) super(now);
    else super(...args);
  }

  static now() {
    return now === undefined ? RealDate.now() : now;
  }
}

const log = (level) => (...parts) => output.logs.push({ level, message: parts.map(String).join(' ') });
const context = vm.createContext({
  Utilities, UrlFetchApp, PropertiesService, ScriptApp, FormApp, LockService, Date: ScriptDate,
  console: { log: log('log'), info: log('info'), warn: log('warn'), error: log('error') },
});
vm.runInContext(fs.readFileSync(SCRIPT, 'utf8'), context, { filename: SCRIPT });

try {
  const event = { source: form, response: formResponse(input.response || { answers: [] }), authMode: 'FULL', triggerUid: '1' };
  context[input.run](event);
} catch (error) {
  output.error = String(error && error.message);
}
output.properties = Object.fromEntries(properties);
output.triggers = triggers;
process.stdout.write(JSON.stringify(output));
