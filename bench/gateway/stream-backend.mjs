// A slow OpenAI-compatible streaming backend for the 1,000-streams benchmark: every POST to
// /v1/chat/completions answers with server-sent events, one chunk every INTERVAL ms, COUNT chunks,
// then [DONE]. Real sockets, real chunked encoding; only the "model" is a loop.
// Usage: node stream-backend.mjs PORT [INTERVAL_MS] [COUNT]
import http from "node:http";

const [port, interval = "500", count = "20"] = process.argv.slice(2);
const server = http.createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    if (req.method !== "POST" || !req.url.startsWith("/v1/chat/completions")) {
      res.writeHead(404, { "content-type": "application/json" });
      res.end('{"error":{"message":"not found"}}');
      return;
    }
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    let sent = 0;
    const chunk = (delta, finish) =>
      `data: ${JSON.stringify({
        id: "chatcmpl-bench",
        object: "chat.completion.chunk",
        created: 0,
        model: "bench-upstream",
        choices: [{ index: 0, delta, finish_reason: finish }],
      })}\n\n`;
    res.write(chunk({ role: "assistant", content: "" }, null));
    const timer = setInterval(() => {
      if (++sent >= Number(count)) {
        clearInterval(timer);
        res.end(chunk({}, "stop") + "data: [DONE]\n\n");
        return;
      }
      res.write(chunk({ content: "tok " }, null));
    }, Number(interval));
    res.on("close", () => clearInterval(timer));
  });
});
server.keepAliveTimeout = 60000;
server.maxConnections = 100000;
server.listen(Number(port), "127.0.0.1", () => console.log(`stream backend on ${port}`));
