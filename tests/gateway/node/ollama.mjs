// Drives tinyroute with the official Ollama JS client.
// usage: node ollama.mjs <host> <model> [basic|expect-error|surface <embed-model> <category>]
import { Ollama } from 'ollama';

const [host, model, mode = 'basic', embedModel, category] = process.argv.slice(2);
const client = new Ollama({ host });
const messages = [{ role: 'user', content: 'Say hello.' }];

if (mode === 'basic') {
  const r = await client.chat({ model, messages, stream: false, options: { num_predict: 8, temperature: 0 } });
  console.log(JSON.stringify({ kind: 'complete', model: r.model, done: r.done, done_reason: r.done_reason,
    content: r.message.content, eval_count: r.eval_count }));
  const parts = await client.chat({ model, messages, stream: true, options: { num_predict: 8 } });
  let text = '', lines = 0, done = false;
  for await (const part of parts) { lines++; text += part.message.content; done = part.done; }
  console.log(JSON.stringify({ kind: 'stream', lines, text, done }));
  const g = await client.generate({ model, prompt: 'Say hello.', stream: false, options: { num_predict: 8 } });
  console.log(JSON.stringify({ kind: 'generate', done: g.done, response: g.response }));
  const gs = await client.generate({ model, prompt: 'Say hello.', stream: true, options: { num_predict: 8 } });
  let gtext = '', gdone = false;
  for await (const part of gs) { gtext += part.response; gdone = part.done; }
  console.log(JSON.stringify({ kind: 'generate-stream', done: gdone, response: gtext }));
  const tags = await client.list();
  console.log(JSON.stringify({ kind: 'tags', names: tags.models.map((m) => m.name) }));
} else if (mode === 'expect-error') {
  try {
    await client.chat({ model, messages, stream: false });
    console.log(JSON.stringify({ kind: 'error', status: 200 }));
  } catch (e) {
    console.log(JSON.stringify({ kind: 'error', status: e.status_code, message: e.error ?? e.message }));
  }
} else if (mode === 'surface') {
  // Every endpoint a deployment's agents touch, as the official client calls them.
  const out = (o) => console.log(JSON.stringify(o));
  out({ kind: 'version', version: (await client.version()).version });
  const tags = await client.list();
  out({ kind: 'tags', names: tags.models.map((m) => m.name), details: tags.models[0].details,
    modified_at: tags.models[0].modified_at, size: tags.models[0].size });
  const shown = {};
  for (const m of tags.models) shown[m.name] = (await client.show({ model: m.name })).capabilities;
  out({ kind: 'show', capabilities: shown });
  try {
    await client.show({ model: 'missing-model:1b' });
    out({ kind: 'show-missing', status: 200 });
  } catch (e) {
    out({ kind: 'show-missing', status: e.status_code, error: e.error });
  }
  out({ kind: 'ps', count: (await client.ps()).models.length });
  const e = await client.embed({ model: embedModel, input: ['hello', 'world'] });
  out({ kind: 'embed', count: e.embeddings.length, dims: e.embeddings[0].length });
  const legacy = await client.embeddings({ model: embedModel, prompt: 'hello' });
  out({ kind: 'embeddings', dims: legacy.embedding.length });
  // A high-priority agent: the header on every call, options translated for the model's backend (the
  // runner's keep_alive and num_ctx reach Ollama backends only; others say so in x-tinyroute-unapplied).
  const urgent = new Ollama({ host, headers: { 'X-Request-Priority': 'high' } });
  const c = await urgent.chat({ model, messages, stream: false, keep_alive: '10m',
    options: { num_ctx: 2048, num_predict: 8, temperature: 0.1, top_k: 20 } });
  // A sampling option that another kind of backend does not have: refused by name, never dropped.
  try {
    await urgent.chat({ model, messages, stream: false, options: { repeat_penalty: 1.1 } });
    out({ kind: 'chat-ollama-only', status: 200 });
  } catch (err) {
    out({ kind: 'chat-ollama-only', status: err.status_code, error: err.error });
  }
  out({ kind: 'chat-options', done: c.done, done_reason: c.done_reason, eval_count: c.eval_count,
    content: c.message.content });
  const cs = await urgent.chat({ model, messages, stream: true, options: { num_predict: 8 } });
  let lines = 0, done = false;
  for await (const part of cs) { lines++; done = part.done; }
  out({ kind: 'chat-stream', lines, done });
  // The MLX-server dialect: a category instead of a model, a top-level max_tokens.
  const g = await client.generate({ category, prompt: 'Write a loop.', max_tokens: 4, stream: false });
  out({ kind: 'generate-category', done: g.done, model: g.model, eval_count: g.eval_count });
  const gs = await client.generate({ category, prompt: 'Write a loop.', max_tokens: 4, stream: true });
  let glines = 0, gdone = false;
  for await (const part of gs) { glines++; gdone = part.done; }
  out({ kind: 'generate-category-stream', lines: glines, done: gdone });
}
