/**
 * stardex-webhook's sender for Google Forms, which has no webhook of its own.
 *
 * On every submission it builds one JSON body from the response, signs it the Standard Webhooks
 * way and POSTs it to the function's /google-forms path. A send that may succeed later (the
 * function or the network unavailable, a 5xx, 408, 429) is kept in the Script Properties and sent
 * again by a time-driven trigger, signed afresh each time, for at most MAX_ATTEMPTS tries and
 * MAX_AGE_HOURS hours. A refusal that no retry can change (another 4xx: a wrong key, a body the
 * function cannot read) is logged and reported as the run's error, so Google mails the owner.
 *
 * Install (see docs/senders/google-forms.md): open the form, Extensions > Apps Script, paste
 * this file, set the two Script Properties below, run install() once and authorise it.
 *
 * Script Properties (Project Settings > Script Properties), never in the code:
 *   STARDEX_WEBHOOK_URL  https://<function-url>/google-forms
 *   STARDEX_WEBHOOK_KEY  the signing key, whsec_<base64> (the function's GOOGLE_FORMS_SIGNING_KEY)
 *
 * The body: {provider, formId, formTitle, responseId, submittedAt, respondentEmail,
 * answers: {<question title>: answer}}; an answer is text, a list (checkboxes) or an object of
 * row -> answer (grids). Two questions with one title are sent as "Title" and "Title (2)".
 */

var URL_PROPERTY = 'STARDEX_WEBHOOK_URL';
var KEY_PROPERTY = 'STARDEX_WEBHOOK_KEY';
var PENDING_PREFIX = 'stardex_pending:';
var MAX_ATTEMPTS = 12;
var MAX_AGE_HOURS = 72;
var RETRY_EVERY_MINUTES = 10;
var SUBMIT_HANDLER = 'sendFormResponse';
var RETRY_HANDLER = 'retryPendingSends';

/** Creates the two triggers (once: running it again replaces them) and checks the settings. */
function install() {
  readConfig_(PropertiesService.getScriptProperties());
  var form = FormApp.getActiveForm();
  ScriptApp.getProjectTriggers().forEach(function (trigger) {
    var handler = trigger.getHandlerFunction();
    if (handler === SUBMIT_HANDLER || handler === RETRY_HANDLER) {
      ScriptApp.deleteTrigger(trigger);
    }
  });
  ScriptApp.newTrigger(SUBMIT_HANDLER).forForm(form).onFormSubmit().create();
  ScriptApp.newTrigger(RETRY_HANDLER).timeBased().everyMinutes(RETRY_EVERY_MINUTES).create();
  console.log('stardex-webhook: triggers installed for form ' + form.getId());
}

/** The installable on-form-submit trigger's handler. */
function sendFormResponse(e) {
  var form = e.source || FormApp.getActiveForm();
  var body = buildBody_(form, e.response);
  var store = PropertiesService.getScriptProperties();
  var config;
  try {
    config = readConfig_(store);
  } catch (error) {
    keep_(store, { body: body, attempts: 0, firstTriedAt: Date.now() });  // sent once the settings are fixed
    throw error;
  }
  var outcome = deliver_(config, body);
  if (outcome.retry) {
    if (!keep_(store, { body: body, attempts: 1, firstTriedAt: Date.now(), last: outcome.summary })) {
      throw new Error('stardex-webhook could neither send nor keep response ' + body.responseId + ': ' + outcome.summary);
    }
    console.warn('stardex-webhook: response ' + body.responseId + ' kept for a retry (' + outcome.summary + ')');
  } else if (!outcome.ok) {
    throw new Error('stardex-webhook refused response ' + body.responseId + ': ' + outcome.summary);
  }
}

/** The time-driven trigger's handler: sends every kept response again, signed afresh. */
function retryPendingSends() {
  var lock = LockService.getScriptLock();
  if (!lock.tryLock(10000)) {
    return;  // another run is sending them
  }
  var dropped = [];
  try {
    var store = PropertiesService.getScriptProperties();
    var config = readConfig_(store);
    var kept = store.getProperties();
    Object.keys(kept).filter(function (name) {
      return name.indexOf(PENDING_PREFIX) === 0;
    }).forEach(function (name) {
      var entry;
      try {
        entry = JSON.parse(kept[name]);
      } catch (error) {  // not written by this script: nothing to send
        store.deleteProperty(name);
        dropped.push(name.slice(PENDING_PREFIX.length) + ' (unreadable)');
        return;
      }
      var outcome = deliver_(config, entry.body);
      entry.attempts += 1;
      entry.last = outcome.summary;
      var expired = entry.attempts >= MAX_ATTEMPTS || Date.now() - entry.firstTriedAt > MAX_AGE_HOURS * 3600 * 1000;
      if (outcome.retry && !expired) {
        store.setProperty(name, JSON.stringify(entry));
        return;
      }
      store.deleteProperty(name);
      if (!outcome.ok) {
        dropped.push(entry.body.responseId + ' (' + outcome.summary + ', ' + entry.attempts + ' attempts)');
      }
    });
  } finally {
    lock.releaseLock();
  }
  if (dropped.length) {
    throw new Error('stardex-webhook gave up on response(s) ' + dropped.join(', '));
  }
}

/** The JSON body of one response. */
function buildBody_(form, response) {
  var answers = {};
  response.getItemResponses().forEach(function (itemResponse, index) {
    var item = itemResponse.getItem();
    var title = String(item.getTitle() || '').trim() || 'Question ' + (index + 1);
    var name = title;
    for (var copy = 2; Object.prototype.hasOwnProperty.call(answers, name); copy++) {
      name = title + ' (' + copy + ')';
    }
    answers[name] = answerOf_(item, itemResponse.getResponse());
  });
  return {
    provider: 'google_forms',
    formId: form.getId(),
    formTitle: form.getTitle(),
    responseId: response.getId(),
    submittedAt: response.getTimestamp().toISOString(),
    respondentEmail: response.getRespondentEmail() || null,
    answers: answers
  };
}

/** A grid's answer (one entry per row, null for a row left empty) as row -> answer. */
function answerOf_(item, value) {
  var type = item.getType();
  var rows = null;
  if (type === FormApp.ItemType.GRID) {
    rows = item.asGridItem().getRows();
  } else if (type === FormApp.ItemType.CHECKBOX_GRID) {
    rows = item.asCheckboxGridItem().getRows();
  }
  if (!rows || !Array.isArray(value)) {
    return value;
  }
  var byRow = {};
  rows.forEach(function (row, index) {
    if (value[index] !== null && value[index] !== undefined) {
      byRow[row] = value[index];
    }
  });
  return byRow;
}

/** One signed POST: {ok} when accepted, {retry} when a later try may succeed. */
function deliver_(config, body) {
  var request = signedRequest_(config, body, Date.now());
  var response;
  try {
    response = UrlFetchApp.fetch(config.url, request);
  } catch (error) {  // DNS, TLS, connection refused, timeout
    return { ok: false, retry: true, summary: 'network error: ' + error.message };
  }
  var status = response.getResponseCode();
  var summary = ('HTTP ' + status + ' ' + reasonOf_(response)).trim();
  if (status >= 200 && status < 300) {
    return { ok: true, retry: false, summary: summary };
  }
  var never = status >= 400 && status < 500 && status !== 408 && status !== 429;
  return { ok: false, retry: !never, summary: summary };
}

/** The options of UrlFetchApp.fetch for the body, signed at `now` (ms). */
function signedRequest_(config, body, now) {
  var bytes = Utilities.newBlob(JSON.stringify(body)).getBytes();  // UTF-8, sent exactly as signed
  var id = body.responseId;
  var timestamp = String(Math.floor(now / 1000));
  var signed = Utilities.newBlob(id + '.' + timestamp + '.').getBytes().concat(bytes);
  var signature = Utilities.base64Encode(Utilities.computeHmacSha256Signature(signed, config.key));
  return {
    method: 'post',
    contentType: 'application/json',
    payload: bytes,
    headers: { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': 'v1,' + signature },
    muteHttpExceptions: true,
    followRedirects: false
  };
}

/** The function's `reason` from its JSON answer ("" when it has none). */
function reasonOf_(response) {
  try {
    return String(JSON.parse(response.getContentText()).reason || '');
  } catch (error) {
    return '';
  }
}

/** Keeps a send for the retry trigger, under its response id; false when it cannot be kept. */
function keep_(store, entry) {
  try {
    store.setProperty(PENDING_PREFIX + entry.body.responseId, JSON.stringify(entry));
    return true;
  } catch (error) {  // a value over 9 kB, or the 500 kB of Script Properties used up
    console.error('stardex-webhook: response ' + entry.body.responseId + ' could not be kept: ' + error.message);
    return false;
  }
}

/** The URL and the key bytes from the Script Properties, or an error that says what to set. */
function readConfig_(store) {
  var url = String(store.getProperty(URL_PROPERTY) || '').trim();
  var key = String(store.getProperty(KEY_PROPERTY) || '').trim();
  if (!/^https:\/\/[^\s\/]+\/\S*$/.test(url) && !/^http:\/\/(localhost|127\.0\.0\.1)(:\d+)?\/\S*$/.test(url)) {
    throw new Error('set the Script Property ' + URL_PROPERTY + ' to https://<function-url>/google-forms');
  }
  if (!/^whsec_[A-Za-z0-9+\/]+={0,2}$/.test(key)) {
    throw new Error('set the Script Property ' + KEY_PROPERTY + ' to the signing key, whsec_<base64>');
  }
  return { url: url, key: Utilities.base64Decode(key.slice('whsec_'.length)) };
}
