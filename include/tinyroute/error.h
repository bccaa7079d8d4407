// tinyroute errors: one style across the library. Every failure a caller can cause is thrown as
// tinyroute::Error with a stable code and a message that says what was wrong and what to do.
// Futures returned by the library carry the same exception.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace tinyroute {

enum class ErrorCode {
  invalid_argument,         // a caller passed something malformed
  model_not_found,          // the model file does not exist
  not_gguf,                 // the file is not a GGUF file at all
  corrupt_model,            // a GGUF file that is truncated or inconsistent
  unsupported_architecture, // a valid GGUF that llama.cpp/tinyroute cannot run
  context_overflow,         // a request longer than the context can hold
  grammar_invalid,          // a GBNF grammar that does not parse
  unknown_prefix,           // a request names a prefix that was never added
  engine_stopped,           // the engine shut down before the work ran
  cancelled,                // the caller cancelled the request (its CancelToken) before it completed
  deadline_exceeded,        // the internal model did not decide by the caller's deadline (AnalyzeOptions)
  io,                       // reading or writing a file failed
  config_invalid,           // a config file that does not parse or validate (message has file:line)
  internal_model_forbidden, // the internal model was named where an answer model is required
  no_candidate,             // no configured model can serve a request
  download_failed,          // tinyroute pull could not fetch a file
  checksum_mismatch,        // a downloaded file does not match its expected sha256
  internal,                 // a bug or an unexpected llama.cpp failure
};

std::string_view error_code_name(ErrorCode code);

class Error : public std::runtime_error {
public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

private:
  ErrorCode code_;
};

} // namespace tinyroute
