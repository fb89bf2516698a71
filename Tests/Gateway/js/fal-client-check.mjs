// Drives a FalHints gateway with @fal-ai/client exactly as an app would drive fal, configured only with fal's own
// proxy setting (the README's), and checks every call: fal.run, fal.stream, fal.queue.*, fal.subscribe (polling and
// streaming), fal.storage.upload and Blob inputs, webhooks, x-fal-no-retry, errors. Exits non-zero on the first broken
// expectation and prints a JSON summary on success.
// Usage: node fal-client-check.mjs <gateway url> <api key> <model id> <gated app id> <gated key> <hold gate> <file app id>
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import { fal, ApiError } from "@fal-ai/client";

const [gatewayUrl, apiKey, model, gatedApp, gatedKey, holdGate, fileApp] = process.argv.slice(2);
const configure = (credentials) => fal.config({ credentials, proxyUrl: { url: `${gatewayUrl}/api/fal/proxy`, when: "always" } });
configure(apiKey);

function expect(condition, message) {
  if (!condition) {
    throw new Error(`expectation failed: ${message}`);
  }
}

async function expectApiError(call, status, errorType, what) {
  try {
    await call();
  } catch (error) {
    expect(error instanceof ApiError, `${what}: an ApiError, not ${error}`);
    expect(error.status === status, `${what}: status ${status}, not ${error.status} (${JSON.stringify(error.body)})`);
    expect(error.body.error_type === errorType, `${what}: error_type ${errorType}, not ${JSON.stringify(error.body)}`);
    expect(typeof error.body.detail === "string" && error.body.detail.length > 0, `${what}: a detail that names the problem`);
    return error;
  }
  throw new Error(`expectation failed: ${what} is refused`);
}

const app = "falhints/any-model";
const summary = {};

// fal.queue: submit with a hint, status, subscribeToStatus with queue updates, result, the image behind its URL.
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

// fal.subscribe, polling: the hinted repeat goes to the runner that loaded the model.
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

// fal.subscribe, streaming its status (server-sent events), with x-fal-no-retry.
const streamedUpdates = [];
const streamed = await fal.subscribe(app, {
  input: { model, prompt: "status over server-sent events" },
  hint: model,
  mode: "streaming",
  headers: { "x-fal-no-retry": "1" },
  onQueueUpdate: (update) => streamedUpdates.push(update.status),
});
expect(streamed.data.image.content_type === "image/png", "subscribe in streaming mode returns the output");
expect(streamedUpdates.at(-1) === "COMPLETED", `streamed queue updates end COMPLETED, not ${streamedUpdates.join(",")}`);
summary.streamingSubscribe = { requestId: streamed.requestId, updates: streamedUpdates };

// fal.run: the synchronous call answers the output itself, not a queue envelope.
const ran = await fal.run(app, { input: { model, prompt: "a red fox" } });
expect(ran.data.image && ran.data.image.width === 128 && ran.data.image.url.startsWith(gatewayUrl), `run returns the output, not ${JSON.stringify(ran.data).slice(0, 120)}`);
expect(typeof ran.requestId === "string" && ran.requestId.length > 0, "run carries the request id");
expect(ran.data.image.url === first.data.image.url, "run renders the same image as the queue for the same model and prompt");
summary.run = { requestId: ran.requestId };

// fal.stream: the app's /stream endpoint sends the image after every denoising step; done() is the final one.
const stream = await fal.stream(app, { input: { model, prompt: "a red fox" } });
const events = [];
for await (const event of stream) {
  events.push(event);
}
const final = await stream.done();
expect(events.length >= 2, `stream yields partial outputs before the final one, not ${events.length} events`);
expect(events.every((e, i) => e.step === i + 1 && e.steps === events.length && e.image.content_type === "image/png"), `stream events are the steps in order: ${JSON.stringify(events.map((e) => e.step))}`);
expect(final.step === final.steps && final.image.url === first.data.image.url, "the stream's last event is the final image, the queue's image");
expect(new Set(events.map((e) => e.image.url)).size === events.length, "every step's image differs");
summary.stream = { requestId: stream.requestId, steps: events.map((e) => e.step) };

// fal.storage.upload, then a Blob input (which the client uploads first) that the app reads.
const text = `uploaded ${Date.now()}`;
const uploadedUrl = await fal.storage.upload(new Blob([text], { type: "text/plain" }));
expect(uploadedUrl.startsWith(`${gatewayUrl}/files/`), `upload returns a gateway file URL, not ${uploadedUrl}`);
const uploaded = await fetch(uploadedUrl, { headers: { Authorization: `Key ${apiKey}` } });
expect(uploaded.ok && (await uploaded.text()) === text, "the uploaded file is served back");
const blobBytes = new Uint8Array([...Array(50000).keys()].map((i) => (i * 7) % 251));
const echoed = await fal.subscribe(fileApp, { input: { file_url: new Blob([blobBytes], { type: "application/octet-stream" }) } });
expect(echoed.data.size === blobBytes.length, `the app read the uploaded Blob whole, not ${JSON.stringify(echoed.data)}`);
expect(echoed.data.sha256 === createHash("sha256").update(blobBytes).digest("hex"), "the app read the uploaded bytes unchanged");
await expectApiError(() => fal.storage.upload(new Blob([new Uint8Array(300000)])), 413, "bad_request", "a file over the size limit");
summary.storage = { url: uploadedUrl, echoed: echoed.data };

// Webhooks: the result is posted when the request ends; a failed delivery is retried.
const deliveries = [];
let delivered;
const received = new Promise((resolve) => { delivered = resolve; });
const receiver = createServer((request, response) => {
  let body = "";
  request.on("data", (chunk) => { body += chunk; });
  request.on("end", () => {
    deliveries.push(body);
    response.statusCode = deliveries.length === 1 ? 500 : 200;
    response.end();
    if (deliveries.length === 2) delivered(JSON.parse(body));
  });
});
await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
const hooked = await fal.queue.submit(app, {
  input: { model, prompt: "a webhook" },
  webhookUrl: `http://127.0.0.1:${receiver.address().port}/hook`,
});
let timer;
const hook = await Promise.race([received, new Promise((_, reject) => { timer = setTimeout(() => reject(new Error("no webhook within 30 s")), 30000); })]);
clearTimeout(timer);
receiver.close();
receiver.closeAllConnections();
expect(hook.request_id === hooked.request_id && hook.status === "OK" && hook.error === null, `the webhook names the request and its success: ${JSON.stringify(hook).slice(0, 200)}`);
expect(hook.payload.image.content_type === "image/png" && hook.payload.image.url.startsWith(gatewayUrl), "the webhook carries the output");
expect(deliveries.length === 2, `the failed delivery was retried once, not ${deliveries.length - 1} times`);
await expectApiError(() => fal.queue.submit(app, { input: { model, prompt: "x" }, webhookUrl: "http://192.0.2.10/hook" }), 400, "bad_request", "a webhook to a host not allowed");
summary.webhook = { requestId: hooked.request_id, deliveries: deliveries.length };

// fal.queue.cancel: a request that runs until its gate opens (it never does) is cancelled while in progress.
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
const cancelError = await expectApiError(() => fal.queue.result(gatedApp, { requestId: held.request_id }), 400, "client_cancelled", "the result of a cancelled request");
expect(cancelError.body.error_code === "cancelled", `the error names the cancellation, not ${JSON.stringify(cancelError.body)}`);
summary.cancel = { requestId: held.request_id, status: cancelError.status, body: cancelError.body };

// Errors in fal's shape: an unknown request, an app no silo serves (at once), a bad header, a wrong key.
await expectApiError(() => fal.queue.result(app, { requestId: "no-such-request" }), 404, "request_not_found", "an unknown request");
const unknownStarted = Date.now();
await expectApiError(() => fal.queue.submit("nobody/nothing", { input: {} }), 404, "app_not_found", "an app no silo serves");
await expectApiError(() => fal.run("nobody/nothing", { input: {} }), 404, "app_not_found", "a direct call to an app no silo serves");
summary.unknownAppMs = Date.now() - unknownStarted;
await expectApiError(() => fal.queue.submit(app, { input: { model, prompt: "x" }, headers: { "x-fal-no-retry": "maybe" } }), 400, "bad_request", "a bad x-fal-no-retry");
configure("not-the-key");
await expectApiError(() => fal.queue.submit(app, { input: { model, prompt: "x" }, hint: model }), 401, "unauthorized", "a wrong key");
console.log(JSON.stringify(summary));
