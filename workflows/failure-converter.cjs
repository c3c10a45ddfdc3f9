// The failure converter of a worker and client with the payload codec (desktop-worker/payload-codec.ts): a
// failure's message and stack trace move into an encoded payload, which the codec encrypts, so a run's failure is
// not plaintext in Temporal's database. CommonJS because Temporal loads it by path twice: `require` in the worker
// and client process, and bundled into the workflow code (deterministic: no Node built-ins).
'use strict';
const { DefaultFailureConverter } = require('@temporalio/common');

exports.failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
