// A deployed OfficeStatus client, as a non-Python program sees the server: the frozen
// .proto of one release, loaded with @grpc/proto-loader and called with @grpc/grpc-js.
//
//   node tests/node/legacy_client.mjs <release: 3|4|5> <host:port> < script.json
//
// The script is a JSON array of calls, run in order:
//
//   [{"rpc": "Login", "request": {"user_name": "alice", "client_version": "5.1.3"}},
//    {"rpc": "Heartbeat", "request": {"session_id": "$session"}},
//    {"rpc": "Logout", "request": {"session_id": "$session"}, "expect_error": false}]
//
// "$session" is the session_id of the last Login reply (an error if it gave none).
// One JSON line is printed per call: {"rpc", "reply"}, decoded as the release decodes it
// (an enum value the release does not define stays a bare number), or {"rpc", "error":
// {"code", "details"}}. The exit status is 0 only if every call succeeded, or failed where
// the script said "expect_error": true. Anything else (bad arguments, an rpc or request
// field the release does not define, an unexpected error) prints why on stderr, exits 1.

import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
// node_modules of the repository root, wherever this is run from.
const require = createRequire(join(ROOT, "package.json"));
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const DEADLINE_MS = 5000;
const CODE_NAMES = Object.fromEntries(Object.entries(grpc.status).map(([k, v]) => [v, k]));

function fail(why) {
  process.stderr.write(`legacy_client: ${why}\n`);
  process.exit(1);
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

function withSession(value, session) {
  if (value === "$session") {
    if (!session) fail("$session used, but no Login reply gave a session_id");
    return session;
  }
  if (Array.isArray(value)) return value.map((v) => withSession(v, session));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withSession(v, session)]));
  }
  return value;
}

function call(client, rpc, request) {
  const deadline = new Date(Date.now() + DEADLINE_MS);
  return new Promise((resolve) => {
    client[rpc](request, { deadline }, (err, reply) => {
      if (err) resolve({ rpc, error: { code: CODE_NAMES[err.code], details: err.details } });
      else resolve({ rpc, reply });
    });
  });
}

async function main() {
  const [release, address] = process.argv.slice(2);
  if (!/^[0-9]+$/.test(release ?? "") || !address) {
    fail("usage: legacy_client.mjs <release> <host:port> < script.json");
  }
  const frozen = join(ROOT, "proto", "frozen", `v${release}`);
  const proto = join(frozen, "officestatus", "licensing", "seat_service.proto");
  const definition = protoLoader.loadSync(proto, {
    keepCase: true,
    enums: String,
    longs: Number,
    defaults: true,
  });
  const SeatService = grpc.loadPackageDefinition(definition).officestatus.licensing.SeatService;
  const script = JSON.parse(await readStdin());
  if (!Array.isArray(script)) fail("the script must be a JSON array of calls");

  const client = new SeatService(address, grpc.credentials.createInsecure());
  let session;
  let ok = true;
  try {
    for (const step of script) {
      if (!Object.hasOwn(SeatService.service, step.rpc ?? "")) {
        fail(`release ${release} defines no rpc ${JSON.stringify(step.rpc)}`);
      }
      // A field the release does not define would be dropped without a word: refuse it.
      const request = withSession(step.request ?? {}, session);
      const known = SeatService.service[step.rpc].requestType.type.field.map((f) => f.name);
      const unknown = Object.keys(request).filter((name) => !known.includes(name));
      if (unknown.length) fail(`release ${release} ${step.rpc} has no field ${unknown.join(", ")}`);
      const result = await call(client, step.rpc, request);
      process.stdout.write(`${JSON.stringify(result)}\n`);
      if (step.rpc === "Login" && result.reply) session = result.reply.session_id;
      if (Boolean(result.error) !== Boolean(step.expect_error)) {
        ok = false;
        const what = result.error ? "error" : "success";
        process.stderr.write(`legacy_client: ${step.rpc}: unexpected ${what}\n`);
        break;
      }
    }
  } finally {
    client.close();
  }
  process.exitCode = ok ? 0 : 1;
}

main().catch((err) => fail(err?.stack ?? String(err)));
