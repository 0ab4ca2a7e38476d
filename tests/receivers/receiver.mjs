// A webhook receiver as a customer writes it in Node.js: the `standardwebhooks` library from
// npm checks each delivery. Usage: node receiver.mjs SECRET (NODE_PATH points at the library).
// Prints its port, then one JSON line per delivery: {"ok": true, "id", "body"} or
// {"ok": false, "error"}; answers 204 or 401.
import http from "node:http";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { Webhook } = require("standardwebhooks");
const webhook = new Webhook(process.argv[2]);

const server = http.createServer((request, response) => {
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    let line;
    try {
      webhook.verify(body, request.headers);
      line = { ok: true, id: request.headers["webhook-id"], body };
      response.writeHead(204);
    } catch (error) {
      line = { ok: false, error: `${error.name}: ${error.message}` };
      response.writeHead(401);
    }
    console.log(JSON.stringify(line));
    response.end();
  });
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
