// A webhook receiver as a customer writes it in Node.js: the `standardwebhooks` library from
// npm checks each delivery (NODE_PATH points at the library).
//
// Usage: node receiver.mjs SECRET[,SECRET...] [--fail N] [--hang] [--port P]
// (the same options and output as receiver.py).
import http from "node:http";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { Webhook } = require("standardwebhooks");
const args = process.argv.slice(2);
const webhooks = args[0].split(",").map((secret) => new Webhook(secret));
const option = (name) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : 0);
let fail = option("--fail");
const hang = args.includes("--hang");

const server = http.createServer((request, response) => {
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    const errors = [];
    const verified = webhooks.map((webhook) => {
      try {
        webhook.verify(body, request.headers);
        return true;
      } catch (error) {
        errors.push(`${error.name}: ${error.message}`);
        return false;
      }
    });
    let line;
    let status;
    if (verified.some(Boolean)) {
      status = fail > 0 ? 500 : 204;
      fail = Math.max(fail - 1, 0);
      line = { ok: true, id: request.headers["webhook-id"], body, verified, status };
    } else {
      status = 401;
      line = { ok: false, error: errors[0], status };
    }
    console.log(JSON.stringify(line));
    if (hang) return;
    response.writeHead(status);
    response.end();
  });
});
server.listen(option("--port"), "127.0.0.1", () => console.log(server.address().port));
