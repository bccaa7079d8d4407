// Every parameter honoured or refused: a request goes only to candidate models whose backend protocol
// can carry everything it asked for; what none of them can carry is a 400 naming the parameter, never
// dropped in silence. Which backend takes what is each BackendAdapter's unsupported().
#pragma once

#include <string>
#include <vector>

#include "gateway/chat.h"

namespace tinyroute::gateway {

// Drops from `models` each candidate whose backend cannot carry a parameter of `request`. When that
// leaves none, returns the refusal: the parameter as `front` spells it, the model, and the backend
// protocols that would take it. Empty when a candidate is left (or there were none to begin with).
std::string drop_unable(const Config& config, std::vector<std::string>& models, const ChatRequest& request,
                        const FrontAdapter& front);

} // namespace tinyroute::gateway
