// OpenAI Responses front: POST /v1/responses <-> ChatRequest / ChatEvent. `input` is a string or a
// list of items (messages with input_text / input_image parts, function_call and function_call_output),
// `instructions` the system message, tools the flat {type: function, name, parameters}. The answer is a
// Response object, or SSE with the Responses event types: response.created, response.in_progress,
// response.output_item.added, response.content_part.added, response.output_text.delta / .done,
// response.content_part.done, response.function_call_arguments.delta / .done, response.output_item.done,
// then response.completed (response.incomplete when max_output_tokens cut it short; error and
// response.failed when the upstream broke off). Nothing is stored: previous_response_id and store: true
// are refused with a 400 naming them.
#pragma once

#include "gateway/chat.h"

namespace tinyroute::gateway {
// make_responses_front() is declared with the other fronts in chat.h.
} // namespace tinyroute::gateway
