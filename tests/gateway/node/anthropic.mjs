// Drives tinyroute with the official Anthropic SDK.
// usage: node anthropic.mjs <baseURL> <model> [basic|expect-error|count-tokens]
import Anthropic from '@anthropic-ai/sdk';

const [baseURL, model, mode = 'basic'] = process.argv.slice(2);
const client = new Anthropic({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
const messages = [{ role: 'user', content: 'Say hello.' }];

if (mode === 'basic') {
  const msg = await client.messages.create({ model, max_tokens: 8, system: 'Be brief.', messages });
  console.log(JSON.stringify({ kind: 'complete', model: msg.model, type: msg.type, stop_reason: msg.stop_reason,
    text: msg.content.filter((b) => b.type === 'text').map((b) => b.text).join(''), usage: msg.usage }));
  const stream = client.messages.stream({ model, max_tokens: 8, messages });
  const events = [];
  let text = '';
  stream.on('text', (t) => { text += t; });
  for await (const ev of stream) events.push(ev.type);
  const final = await stream.finalMessage();
  console.log(JSON.stringify({ kind: 'stream', events: [...new Set(events)], text, stop_reason: final.stop_reason }));
} else if (mode === 'expect-error') {
  try {
    await client.messages.create({ model, max_tokens: 8, messages });
    console.log(JSON.stringify({ kind: 'error', status: 200 }));
  } catch (e) {
    console.log(JSON.stringify({ kind: 'error', status: e.status, type: e.error?.error?.type, message: e.message }));
  }
} else if (mode === 'count-tokens') {
  // messages.countTokens, and what a real answer to the same request says it read.
  const system = 'Be brief.';
  const long = [{ role: 'user', content: 'Say hello to everyone in the room, one by one, by name.' }];
  const { data, response } = await client.messages.countTokens({ model, system, messages }).withResponse();
  const longer = await client.messages.countTokens({ model, system, messages: long });
  const answer = await client.messages.create({ model, max_tokens: 1, system, messages });
  console.log(JSON.stringify({ kind: 'count', input_tokens: data.input_tokens, longer: longer.input_tokens,
    answered_input_tokens: answer.usage.input_tokens, source: response.headers.get('x-tinyroute-token-count'),
    header_model: response.headers.get('x-tinyroute-model') }));
}
