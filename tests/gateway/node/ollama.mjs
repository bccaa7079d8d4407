// Drives tinyroute with the official Ollama JS client. usage: node ollama.mjs <host> <model> [basic|expect-error]
import { Ollama } from 'ollama';

const [host, model, mode = 'basic'] = process.argv.slice(2);
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
}
