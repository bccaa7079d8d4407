// Opens N concurrent streaming chat completions through URL at once, waits until every one has its
// first chunk (all N held open at the same time), runs CALLBACK_CMD-free sampling: prints a JSON line
// {"held":N,...} when all are open, then waits for every stream to finish and prints the totals.
// Usage: node streams.mjs URL MODEL N TIMEOUT_S
import http from "node:http";

const [url, model, n = "1000", timeoutS = "120"] = process.argv.slice(2);
const target = new URL(url);
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
const body = JSON.stringify({ model, stream: true, messages: [{ role: "user", content: "hello" }] });
let open = 0, done = 0, failed = 0, chunks = 0, allOpenAt = 0;
const started = Date.now();
const errors = new Map();

function one() {
  return new Promise((resolve) => {
    let first = false;
    const req = http.request(
      { host: target.hostname, port: target.port, path: "/v1/chat/completions", method: "POST", agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } },
      (res) => {
        if (res.statusCode !== 200) {
          failed++;
          errors.set(`HTTP ${res.statusCode}`, (errors.get(`HTTP ${res.statusCode}`) ?? 0) + 1);
          res.resume();
          res.on("end", resolve);
          return;
        }
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d) => {
          chunks++;
          text += d;
          if (!first) {
            first = true;
            if (++open === Number(n)) {
              allOpenAt = Date.now();
              console.log(JSON.stringify({ event: "all_open", held: open, ms: allOpenAt - started }));
            }
          }
        });
        res.on("end", () => {
          if (text.includes("[DONE]")) done++;
          else failed++;
          resolve();
        });
        res.on("error", () => { failed++; resolve(); });
      });
    req.on("error", (e) => {
      failed++;
      errors.set(e.code ?? e.message, (errors.get(e.code ?? e.message) ?? 0) + 1);
      resolve();
    });
    req.end(body);
  });
}

const timer = setTimeout(() => {
  console.log(JSON.stringify({ event: "timeout", open, done, failed }));
  process.exit(1);
}, Number(timeoutS) * 1000);
await Promise.all(Array.from({ length: Number(n) }, one));
clearTimeout(timer);
console.log(JSON.stringify({ event: "finished", requested: Number(n), max_held: open, completed: done, failed, chunks,
  errors: Object.fromEntries(errors), ms: Date.now() - started }));
process.exit(failed === 0 ? 0 : 1);
