// Drives tinyroute with the official OpenAI SDK. Prints one JSON object per line for the gtest.
// usage: node openai.mjs <baseURL> <model> [basic|concurrent N|expect-error|embeddings]
import OpenAI from 'openai';

const [baseURL, model, mode = 'basic', n = '200'] = process.argv.slice(2);
const client = new OpenAI({ baseURL: baseURL + '/v1', apiKey: 'unused', maxRetries: 0, timeout: 60000 });
const messages = [{ role: 'user', content: 'Say hello.' }];

if (mode === 'basic') {
  const { data, response } = await client.chat.completions
    .create({ model, messages, max_tokens: 8, temperature: 0 })
    .withResponse();
  console.log(JSON.stringify({ kind: 'complete', model: data.model, content: data.choices[0].message.content,
    finish: data.choices[0].finish_reason, usage: data.usage,
    header_model: response.headers.get('x-tinyroute-model'),
    header_source: response.headers.get('x-tinyroute-decision-source') }));
  const stream = await client.chat.completions.create({ model, messages, max_tokens: 8, temperature: 0, stream: true,
    stream_options: { include_usage: true } });
  let text = '', chunks = 0, finish = null, usage = null;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    const c = chunk.choices[0];
    if (!c) continue;
    text += c.delta?.content ?? '';
    if (c.finish_reason) finish = c.finish_reason;
  }
  console.log(JSON.stringify({ kind: 'stream', chunks, text, finish, usage }));
} else if (mode === 'concurrent') {
  const one = async () => {
    const stream = await client.chat.completions.create({ model, messages, max_tokens: 4, stream: true });
    let finish = null;
    for await (const chunk of stream) if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
    return finish;
  };
  const results = await Promise.allSettled(Array.from({ length: Number(n) }, one));
  const ok = results.filter((r) => r.status === 'fulfilled' && r.value).length;
  const errors = results.filter((r) => r.status === 'rejected').map((r) => String(r.reason)).slice(0, 3);
  console.log(JSON.stringify({ kind: 'concurrent', ok, total: results.length, errors }));
} else if (mode === 'stream-error') {
  // A stream that the upstream breaks off: the SDK must surface an error, not hang.
  let text = '';
  try {
    const stream = await client.chat.completions.create({ model, messages, stream: true });
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    console.log(JSON.stringify({ kind: 'stream-error', error: null, text }));
  } catch (e) {
    console.log(JSON.stringify({ kind: 'stream-error', error: String(e.message ?? e), text }));
  }
} else if (mode === 'expect-error') {
  try {
    await client.chat.completions.create({ model, messages });
    console.log(JSON.stringify({ kind: 'error', status: 200 }));
  } catch (e) {
    console.log(JSON.stringify({ kind: 'error', status: e.status, type: e.error?.type, message: e.message }));
  }
} else if (mode === 'embeddings') {
  // The SDK asks for base64 unless told otherwise and decodes it; floats must agree with it.
  const input = ['first text', 'second, longer text'];
  const { data, response } = await client.embeddings.create({ model, input }).withResponse();
  const floats = await client.embeddings.create({ model, input, encoding_format: 'float' });
  const one = await client.embeddings.create({ model, input: 'first text', encoding_format: 'float' });
  let maxDiff = 0;
  data.data.forEach((d, i) => d.embedding.forEach((v, k) => {
    maxDiff = Math.max(maxDiff, Math.abs(v - floats.data[i].embedding[k]));
  }));
  console.log(JSON.stringify({ kind: 'embeddings', object: data.object, model: data.model, count: data.data.length,
    indexes: data.data.map((d) => d.index), dims: data.data.map((d) => d.embedding.length),
    float_dims: floats.data.map((d) => d.embedding.length), max_diff: maxDiff,
    same_as_single: one.data[0].embedding.every((v, k) => Math.abs(v - floats.data[0].embedding[k]) < 1e-5),
    differ: floats.data[0].embedding.some((v, k) => v !== floats.data[1].embedding[k]),
    usage: data.usage, header_model: response.headers.get('x-tinyroute-model') }));
}
