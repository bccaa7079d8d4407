#include "tinyroute/error.h"

namespace tinyroute {

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
  case ErrorCode::invalid_argument:
    return "invalid_argument";
  case ErrorCode::model_not_found:
    return "model_not_found";
  case ErrorCode::not_gguf:
    return "not_gguf";
  case ErrorCode::corrupt_model:
    return "corrupt_model";
  case ErrorCode::unsupported_architecture:
    return "unsupported_architecture";
  case ErrorCode::context_overflow:
    return "context_overflow";
  case ErrorCode::grammar_invalid:
    return "grammar_invalid";
  case ErrorCode::unknown_prefix:
    return "unknown_prefix";
  case ErrorCode::engine_stopped:
    return "engine_stopped";
  case ErrorCode::cancelled:
    return "cancelled";
  case ErrorCode::deadline_exceeded:
    return "deadline_exceeded";
  case ErrorCode::io:
    return "io";
  case ErrorCode::internal:
    return "internal";
  case ErrorCode::config_invalid:
    return "config_invalid";
  case ErrorCode::internal_model_forbidden:
    return "internal_model_forbidden";
  case ErrorCode::no_candidate:
    return "no_candidate";
  case ErrorCode::download_failed:
    return "download_failed";
  case ErrorCode::checksum_mismatch:
    return "checksum_mismatch";
  }
  return "unknown";
}

} // namespace tinyroute
