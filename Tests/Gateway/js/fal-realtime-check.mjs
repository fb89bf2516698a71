// Drives a FalHints gateway's realtime API with @fal-ai/client's fal.realtime.connect, as an app would drive fal's: the
// README's setting (fal's proxy for the token call, and a WebSocket that opens the gateway where fal's client would open
// wss://fal.run). Checks MessagePack inputs and outputs in order, fal's default and a custom token provider, an error that
// leaves the connection open, and a bad token. Exits non-zero on the first broken expectation; prints a JSON summary.
// Usage: node --experimental-websocket fal-realtime-check.mjs <gateway url> <api key> <model id>
import { fal, ApiError } from "@fal-ai/client";

const [gatewayUrl, apiKey, model] = process.argv.slice(2);
const gateway = new URL(gatewayUrl);

// fal's client opens wss://fal.run/{owner}/{app}/realtime; the gateway serves fal.run's calls under /run.
const FalWebSocket = globalThis.WebSocket;
globalThis.WebSocket = class extends FalWebSocket {
  constructor(url, protocols) {
    super(String(url).replace(/^wss:\/\/fal\.run\//, `${gateway.protocol === "https:" ? "wss" : "ws"}://${gateway.host}/run/`), protocols);
  }
};
fal.config({ credentials: apiKey, proxyUrl: { url: `${gatewayUrl}/api/fal/proxy`, when: "always" } });

function expect(condition, message) {
  if (!condition) {
    throw new Error(`expectation failed: ${message}`);
  }
}

// One connection; ask() sends an input and settles with the next answer (the gateway answers in order).
function open(app, options = {}) {
  const pending = [];
  const connection = fal.realtime.connect(app, {
    throttleInterval: 0,
    onResult: (result) => pending.shift()?.resolve(result),
    onError: (error) => pending.shift()?.reject(error),
    ...options,
  });
  const ask = (input) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within 30 s to ${JSON.stringify(input)}`)), 30000);
    pending.push({
      resolve: (value) => { clearTimeout(timer); resolve(value); },
      reject: (error) => { clearTimeout(timer); reject(error); },
    });
    connection.send(input);
  });
  return { ask, close: () => connection.close() };
}

async function png(url) {
  const response = await fetch(url, { headers: { Authorization: `Key ${apiKey}` } });
  const bytes = new Uint8Array(await response.arrayBuffer());
  return response.ok && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47;
}

const app = "falhints/any-model";
const summary = {};

// fal's default token provider (POST rest.fal.ai/tokens/ through the proxy), several inputs on one connection.
const warn = console.warn;
console.warn = () => {};
const first = open(app);
const fox = await first.ask({ model, prompt: "a red fox" });
const heron = await first.ask({ model, prompt: "a heron" });
console.warn = warn;
expect(fox.image && fox.image.content_type === "image/png" && fox.image.url.startsWith(gatewayUrl), `a realtime output with a gateway image, not ${JSON.stringify(fox).slice(0, 160)}`);
expect(await png(fox.image.url), "the realtime output's image is a PNG the gateway serves");
expect(heron.image.url !== fox.image.url, "each input gets its own output, in order");

// An input the app refuses is an error for that input only; the connection goes on.
let refused;
try {
  await first.ask({ model: "tiny/does-not-exist", prompt: "nothing" });
} catch (error) {
  refused = error;
}
expect(refused instanceof ApiError && /model_not_found|not found/i.test(refused.message), `an unknown model is an ApiError naming it, not ${refused}`);
const again = await first.ask({ model, prompt: "a red fox" });
expect(again.image.url === fox.image.url, "after an error the connection still answers, the same image for the same model and prompt");
first.close();
summary.defaultToken = { outputs: [fox.image.url, heron.image.url], error: refused.message };

// A custom token provider, as fal recommends for browsers: the server asks the gateway for a token with its key.
let asked;
const custom = open(app, {
  tokenProvider: async (endpoint) => {
    asked = endpoint;
    const response = await fetch(`${gatewayUrl}/tokens/`, {
      method: "POST",
      headers: { Authorization: `Key ${apiKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({ allowed_apps: ["any-model"], token_expiration: 60 }),
    });
    expect(response.ok, `the gateway issues a token, not ${response.status}`);
    return await response.json();
  },
  tokenExpirationSeconds: 60,
});
const viaCustom = await custom.ask({ model, prompt: "a lighthouse" });
expect(viaCustom.image.content_type === "image/png", "a connection with a custom token provider answers");
expect(asked === `${app}/realtime`, `the token provider is asked for the realtime endpoint, not ${asked}`);
custom.close();
summary.customToken = { endpoint: asked };

// A token the gateway did not issue: the connection is refused with fal's close code for it.
const bogus = open(app, { tokenProvider: async () => "not-a-token" });
let unauthorized;
try {
  await bogus.ask({ model, prompt: "never runs" });
} catch (error) {
  unauthorized = error;
}
bogus.close();
expect(unauthorized instanceof ApiError && unauthorized.status === 1008, `a bad token closes the connection with 1008, not ${unauthorized && unauthorized.status} ${unauthorized}`);
summary.badToken = { status: unauthorized.status };

console.log(JSON.stringify(summary));
process.exit(0);
