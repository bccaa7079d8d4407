#include "gateway/front-embeddings.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <set>

#include <openssl/evp.h>

namespace tinyroute::gateway {

namespace {

const std::set<std::string> known_fields = {"model", "input", "dimensions", "encoding_format", "user"};

bool token_ids(const json& v) {
  return v.is_number_integer() || (v.is_array() && !v.empty() && v.front().is_number_integer());
}

} // namespace

OpenAIEmbeddings parse_openai_embeddings(const json& body) {
  if (!body.is_object()) bad_request("the request body must be a JSON object");
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (!known_fields.count(it.key())) bad_request("Unrecognized request argument supplied: " + it.key());
  }
  OpenAIEmbeddings out;
  out.model = opt_string(body, "model", "").value_or("");
  if (out.model.empty()) bad_request("'model' is required (an embedding model, or \"auto\")");
  const auto input = body.find("input");
  if (input == body.end() || input->is_null())
    bad_request("'input' is required: a string or an array of strings");
  if (token_ids(*input) || (input->is_array() && std::any_of(input->begin(), input->end(), token_ids)))
    bad_request("'input' as token ids is not supported: tokens differ between backends' models; send text");
  out.request.inputs = string_or_array(body, "input", "");
  if (out.request.inputs.empty()) bad_request("'input' must not be an empty array");
  for (std::size_t i = 0; i < out.request.inputs.size(); ++i) {
    if (out.request.inputs[i].empty())
      bad_request("'input" + (input->is_array() ? "[" + std::to_string(i) + "]" : std::string()) +
                  "' must not be empty");
  }
  if (auto dimensions = opt_int(body, "dimensions", "")) {
    if (*dimensions <= 0) bad_request("'dimensions' must be a positive integer");
    out.request.passthrough["dimensions"] = *dimensions;
  }
  if (auto user = opt_string(body, "user", "")) out.request.passthrough["user"] = *user;
  const std::string encoding = opt_string(body, "encoding_format", "").value_or("float");
  if (encoding != "float" && encoding != "base64")
    bad_request("'encoding_format' must be \"float\" or \"base64\" (got \"" + encoding + "\")");
  out.base64 = encoding == "base64";
  return out;
}

std::string float32_base64(const json& vector) {
  std::string bytes;
  bytes.reserve(vector.size() * 4);
  for (const auto& v : vector) {
    const auto bits = std::bit_cast<std::uint32_t>(v.get<float>());
    for (int shift = 0; shift < 32; shift += 8) bytes += static_cast<char>((bits >> shift) & 0xff);
  }
  std::string out((bytes.size() + 2) / 3 * 4 + 1, '\0'); // EVP_EncodeBlock writes a terminating NUL
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

json render_openai_embeddings(const EmbedResult& result, const std::string& model, bool base64) {
  json data = json::array();
  for (std::size_t i = 0; i < result.embeddings.size(); ++i) {
    const json& vector = result.embeddings[i];
    data.push_back({{"object", "embedding"},
                    {"index", static_cast<int>(i)},
                    {"embedding", base64 ? json(float32_base64(vector)) : vector}});
  }
  return {{"object", "list"},
          {"data", std::move(data)},
          {"model", model},
          {"usage", {{"prompt_tokens", result.prompt_tokens}, {"total_tokens", result.prompt_tokens}}}};
}

} // namespace tinyroute::gateway
