// Drives a FalHints gateway with @fal-ai/client exactly as an app would drive fal, except that the
// requestMiddleware points fal's URLs at the gateway. Exits non-zero on the first broken expectation
// and prints a JSON summary on success.
// Usage: node fal-client-check.mjs <gateway url> <api key> <model id> <gated app id> <gated key> <hold gate>
import { fal, ApiError } from "@fal-ai/client";

const [gatewayUrl, apiKey, model, gatedApp, gatedKey, holdGate] = process.argv.slice(2);
const gateway = new URL(gatewayUrl);
fal.config({
  credentials: apiKey,
  requestMiddleware: async (request) => {
    const url = new URL(request.url);
    url.protocol = gateway.protocol;
    url.host = gateway.host;
    return { ...request, url: url.toString() };
  },
});

function expect(condition, message) {
  if (!condition) {
    throw new Error(`expectation failed: ${message}`);
  }
}

const app = "falhints/any-model";
const summary = {};

// submit with a hint, then status, subscribeToStatus with queue updates, result.
const submitted = await fal.queue.submit(app, { input: { model, prompt: "a red fox" }, hint: model, priority: "normal" });
expect(typeof submitted.request_id === "string" && submitted.request_id.length > 0, "submit returns a request_id");
expect(submitted.status_url.endsWith(`/requests/${submitted.request_id}/status`), "submit returns a status_url");
const updates = [];
const done = await fal.queue.subscribeToStatus(app, {
  requestId: submitted.request_id,
  logs: true,
  onQueueUpdate: (update) => updates.push(update.status),
});
expect(done.status === "COMPLETED", `subscribeToStatus ends COMPLETED, not ${done.status}`);
expect(updates.length > 0, "onQueueUpdate was called");
const status = await fal.queue.status(app, { requestId: submitted.request_id, logs: true });
expect(status.status === "COMPLETED" && Array.isArray(status.logs) && status.logs.length > 0, "status reports COMPLETED with logs");
const first = await fal.queue.result(app, { requestId: submitted.request_id });
expect(first.requestId === submitted.request_id, "result carries the request id");
expect(first.data.image.content_type === "image/png", "the output image is a PNG");
const image = await fetch(first.data.image.url, { headers: { Authorization: `Key ${apiKey}` } });
const bytes = new Uint8Array(await image.arrayBuffer());
expect(image.ok && image.headers.get("content-type") === "image/png", "the image URL serves a PNG");
expect(bytes.length === first.data.image.file_size && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47, "the image has the size the output states and a PNG signature");
summary.first = { requestId: submitted.request_id, runner: status.runner_id, hintHit: status.hint_hit, updates };

// subscribe: submit and wait in one call; the hinted repeat goes to the runner that loaded the model.
const repeatUpdates = [];
const repeat = await fal.subscribe(app, {
  input: { model, prompt: "the same model again" },
  hint: model,
  logs: true,
  onQueueUpdate: (update) => repeatUpdates.push(update.status),
});
expect(repeat.data.image.url.startsWith(gatewayUrl), "subscribe returns the output with gateway file URLs");
const repeatStatus = await fal.queue.status(app, { requestId: repeat.requestId });
expect(repeatStatus.hint_hit === true, "the hinted repeat was a hit");
expect(repeatStatus.runner_id === status.runner_id, "the hinted repeat ran on the runner that loaded the model");
summary.repeat = { requestId: repeat.requestId, runner: repeatStatus.runner_id, hintHit: repeatStatus.hint_hit, updates: repeatUpdates };

// cancel: a request that runs until its gate opens (it never does) is cancelled while in progress.
const held = await fal.queue.submit(gatedApp, { input: { key: gatedKey, hold: holdGate }, hint: gatedKey });
let heldStatus;
for (let i = 0; i < 200; i++) {
  heldStatus = await fal.queue.status(gatedApp, { requestId: held.request_id });
  if (heldStatus.status === "IN_PROGRESS") break;
  await new Promise((resolve) => setTimeout(resolve, 50));
}
expect(heldStatus.status === "IN_PROGRESS", `the held request runs, not ${heldStatus.status}`);
await fal.queue.cancel(gatedApp, { requestId: held.request_id });
const cancelled = await fal.queue.subscribeToStatus(gatedApp, { requestId: held.request_id });
expect(cancelled.status === "COMPLETED", "the cancelled request completes");
try {
  await fal.queue.result(gatedApp, { requestId: held.request_id });
  expect(false, "the result of a cancelled request is an error");
} catch (error) {
  expect(error instanceof ApiError, `a cancelled request's result is an ApiError, not ${error}`);
  expect(error.body.error_code === "cancelled", `the error names the cancellation, not ${JSON.stringify(error.body)}`);
  summary.cancel = { requestId: held.request_id, status: error.status, body: error.body };
}

// a wrong key is refused with 401.
fal.config({ credentials: "not-the-key", requestMiddleware: async (request) => {
  const url = new URL(request.url);
  url.protocol = gateway.protocol;
  url.host = gateway.host;
  return { ...request, url: url.toString() };
} });
try {
  await fal.queue.submit(app, { input: { model, prompt: "x" }, hint: model });
  expect(false, "a wrong key is refused");
} catch (error) {
  expect(error instanceof ApiError && error.status === 401, `a wrong key gets 401, not ${error}`);
}
console.log(JSON.stringify(summary));
