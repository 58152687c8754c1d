// Prints the builder headers @polymarket/builder-signing-sdk produces for one job read as JSON on stdin:
//   {"mode": "local", "creds": {"key", "secret", "passphrase"}, "method", "path", "body"?, "timestamp"?}
//   {"mode": "remote", "url", "token"?, "method", "path", "body"?, "timestamp"?}
// Output on stdout: {"headers": <object the SDK returned, or null when it returned undefined>}.
// A missing or null body/timestamp is passed to the SDK as undefined, which is what the relayer client
// does (the SDK then omits the key from its remote request); "" is passed through as an empty body.
import { BuilderConfig } from "@polymarket/builder-signing-sdk";

function optional(value) {
  return value === null ? undefined : value;
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

function config(job) {
  if (job.mode === "local") return new BuilderConfig({ localBuilderCreds: job.creds });
  if (job.mode === "remote") {
    const remote = { url: job.url };
    if (optional(job.token) !== undefined) remote.token = job.token;
    return new BuilderConfig({ remoteBuilderConfig: remote });
  }
  throw new Error(`unknown mode ${JSON.stringify(job.mode)}`);
}

const job = JSON.parse(await readStdin());
const headers = await config(job).generateBuilderHeaders(
  job.method,
  job.path,
  optional(job.body),
  optional(job.timestamp),
);
process.stdout.write(JSON.stringify({ headers: headers === undefined ? null : headers }) + "\n");
