// Drives tinyroute's /v1/responses with the official OpenAI SDK. Prints one JSON object per line.
// usage: node responses.mjs <baseURL> <model> basic             create, raw stream, stream helper
//        node responses.mjs <baseURL> <model> tools <answerer>  a function call from <model>, its output
//                                                               sent back to <answerer>
//        node responses.mjs <baseURL> <model> errors            typed errors for what is refused
import OpenAI from 'openai';

const [baseURL, model, mode = 'basic', answerer = model] = process.argv.slice(2);
const client = new OpenAI({ baseURL: baseURL + '/v1', apiKey: 'unused', maxRetries: 0, timeout: 60000 });
const print = (o) => console.log(JSON.stringify(o));
const weather = {
  type: 'function', name: 'get_weather', description: 'The weather in a city.',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

// The events of a raw stream, checked as they come: one response id, sequence numbers counting up.
async function collect(stream) {
  const types = [];
  let text = '', args = '', ids = new Set(), ordered = true, last = -1, final = null;
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.sequence_number !== last + 1) ordered = false;
    last = ev.sequence_number;
    if (ev.response) ids.add(ev.response.id);
    if (ev.type === 'response.output_text.delta') text += ev.delta;
    if (ev.type === 'response.function_call_arguments.delta') args += ev.delta;
    if (['response.completed', 'response.incomplete', 'response.failed'].includes(ev.type)) final = ev.response;
  }
  return { types, text, args, ordered, one_id: ids.size === 1, final };
}

if (mode === 'basic') {
  const args = { model, input: 'Say hello.', instructions: 'Be brief.', max_output_tokens: 8, temperature: 0,
    metadata: { ticket: 't-1' } };
  const { data, response } = await client.responses.create(args).withResponse();
  print({ kind: 'complete', object: data.object, id: data.id, status: data.status, model: data.model,
    incomplete: data.incomplete_details, output_types: data.output.map((o) => o.type), output_text: data.output_text,
    usage: data.usage, metadata: data.metadata, instructions: data.instructions,
    header_model: response.headers.get('x-tinyroute-model'),
    header_source: response.headers.get('x-tinyroute-decision-source') });

  const raw = await collect(await client.responses.create({ ...args, stream: true }));
  const finalText = raw.final?.output?.find((o) => o.type === 'message')?.content?.[0]?.text;
  print({ kind: 'stream', types: raw.types, text: raw.text, ordered: raw.ordered, one_id: raw.one_id,
    status: raw.final?.status, final_text: finalText, usage: raw.final?.usage, metadata: raw.final?.metadata });

  // The SDK's stream helper rebuilds the response from the events (it throws on a malformed sequence).
  const helper = client.responses.stream(args);
  let deltas = '';
  helper.on('response.output_text.delta', (e) => { deltas += e.delta; });
  const final = await helper.finalResponse();
  print({ kind: 'helper', output_text: final.output_text, deltas, status: final.status, id: final.id });
} else if (mode === 'tools') {
  const input = [{ role: 'user', content: 'What is the weather in Paris?' }];
  const asked = { model, input, tools: [weather], tool_choice: 'required', max_output_tokens: 64 };
  const whole = await client.responses.create(asked);
  const call = whole.output.find((o) => o.type === 'function_call');
  print({ kind: 'call', status: whole.status, output_types: whole.output.map((o) => o.type), name: call?.name,
    call_id: call?.call_id, arguments: call ? JSON.parse(call.arguments) : null, id_prefix: call?.id?.slice(0, 3) });

  const helper = client.responses.stream(asked);
  const seen = [];
  helper.on('event', (e) => seen.push(e.type));
  const streamed = await helper.finalResponse();
  const scall = streamed.output.find((o) => o.type === 'function_call');
  print({ kind: 'call-stream', types: seen, name: scall?.name, arguments: scall ? JSON.parse(scall.arguments) : null });

  // The round trip: the call and its output go back as items. What the answering model read is its
  // prompt: the same conversation sent as chat completions must read as many tokens, a different
  // function output a different number.
  const back = (output) => [...input, call, { type: 'function_call_output', call_id: call.call_id, output }];
  const answered = await client.responses.create({ model: answerer, input: back('sunny, 21 C'), tools: [weather],
    max_output_tokens: 4, temperature: 0 });
  const other = await client.responses.create({ model: answerer, input: back('heavy rain for three more days'),
    tools: [weather], max_output_tokens: 4, temperature: 0 });
  const chat = await client.chat.completions.create({
    model: answerer, max_tokens: 4, temperature: 0,
    tools: [{ type: 'function', function: { name: weather.name, description: weather.description,
      parameters: weather.parameters } }],
    messages: [{ role: 'user', content: 'What is the weather in Paris?' },
      { role: 'assistant', content: null, tool_calls: [{ id: call.call_id, type: 'function',
        function: { name: call.name, arguments: call.arguments } }] },
      { role: 'tool', tool_call_id: call.call_id, content: 'sunny, 21 C' }],
  });
  print({ kind: 'roundtrip', status: answered.status, model: answered.model, responses_tokens: answered.usage.input_tokens,
    chat_tokens: chat.usage.prompt_tokens, other_tokens: other.usage.input_tokens,
    output_types: answered.output.map((o) => o.type) });
} else if (mode === 'errors') {
  const out = { kind: 'errors' };
  const attempt = async (name, args) => {
    try {
      await client.responses.create({ model, input: 'hi', ...args });
      out[name] = { status: 200 };
    } catch (e) {
      out[name] = { status: e.status, type: e.type ?? e.error?.type, message: e.message, cls: e.constructor.name };
    }
  };
  await attempt('internal', { model: 'tinyllama-1.1b-chat' });
  await attempt('previous', { previous_response_id: 'resp_123' });
  await attempt('store', { store: true });
  await attempt('hosted_tool', { tools: [{ type: 'web_search' }] });
  print(out);
}
