# Locate llama.cpp and define tinyroute::llama, tinyroute::ggml and the paths tests need:
#   TINYROUTE_LLAMA_SERVER, TINYROUTE_LLAMA_QUANTIZE, TINYROUTE_LLAMA_BENCH, TINYROUTE_VOCAB_GGUF.
#
# Order: an explicit -DTINYROUTE_LLAMA_SOURCE=<dir> (built in-tree), else find_package(llama) for a
# system or cached install, else scripts/fetch-llama.sh (pinned source, built once into a cache).
set(TINYROUTE_VOCAB_GGUF "" CACHE FILEPATH "Llama SPM vocabulary GGUF (models/ggml-vocab-llama-spm.gguf)")

if(TINYROUTE_LLAMA_SOURCE)
  message(STATUS "tinyroute: building llama.cpp from ${TINYROUTE_LLAMA_SOURCE}")
  set(BUILD_SHARED_LIBS OFF CACHE BOOL "" FORCE)
  set(LLAMA_BUILD_TESTS OFF CACHE BOOL "" FORCE)
  set(LLAMA_BUILD_EXAMPLES OFF CACHE BOOL "" FORCE)
  set(LLAMA_BUILD_COMMON ON CACHE BOOL "" FORCE) # tools (llama-server, llama-quantize) need common
  set(LLAMA_BUILD_TOOLS ON CACHE BOOL "" FORCE)
  set(LLAMA_BUILD_SERVER ON CACHE BOOL "" FORCE)
  set(LLAMA_BUILD_APP OFF CACHE BOOL "" FORCE)
  set(LLAMA_BUILD_UI OFF CACHE BOOL "" FORCE)
  set(LLAMA_USE_PREBUILT_UI OFF CACHE BOOL "" FORCE)
  set(LLAMA_OPENSSL OFF CACHE BOOL "" FORCE)
  # SYSTEM: llama.cpp headers are third-party; their warnings must not fail tinyroute's -Werror.
  add_subdirectory(${TINYROUTE_LLAMA_SOURCE} ${CMAKE_BINARY_DIR}/llama.cpp EXCLUDE_FROM_ALL SYSTEM)
  add_library(tinyroute::llama ALIAS llama)
  add_library(tinyroute::ggml ALIAS ggml)
  set(TINYROUTE_LLAMA_SERVER $<TARGET_FILE:llama-server>)
  set(TINYROUTE_LLAMA_QUANTIZE $<TARGET_FILE:llama-quantize>)
  set(TINYROUTE_LLAMA_BENCH $<TARGET_FILE:llama-bench>)
  set(TINYROUTE_LLAMA_TOOL_TARGETS llama-server llama-quantize llama-bench)
  if(NOT TINYROUTE_VOCAB_GGUF)
    set(TINYROUTE_VOCAB_GGUF ${TINYROUTE_LLAMA_SOURCE}/models/ggml-vocab-llama-spm.gguf)
  endif()
  return()
endif()

find_package(llama CONFIG QUIET)
if(NOT llama_FOUND)
  message(STATUS "tinyroute: no installed llama.cpp found; running scripts/fetch-llama.sh")
  execute_process(
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/scripts/fetch-llama.sh
    OUTPUT_VARIABLE _tr_llama_out
    RESULT_VARIABLE _tr_llama_rc)
  if(NOT _tr_llama_rc EQUAL 0)
    message(FATAL_ERROR "scripts/fetch-llama.sh failed (exit ${_tr_llama_rc}); see its messages above")
  endif()
  string(STRIP "${_tr_llama_out}" _tr_llama_out)
  string(REGEX REPLACE ".*\n" "" _tr_llama_prefix "${_tr_llama_out}")
  list(PREPEND CMAKE_PREFIX_PATH ${_tr_llama_prefix})
  set(TINYROUTE_LLAMA_PREFIX ${_tr_llama_prefix} CACHE PATH "llama.cpp install used by tinyroute" FORCE)
  find_package(llama CONFIG REQUIRED)
endif()
message(STATUS "tinyroute: llama.cpp from ${llama_DIR}")
add_library(tinyroute::llama INTERFACE IMPORTED)
target_link_libraries(tinyroute::llama INTERFACE llama)
add_library(tinyroute::ggml INTERFACE IMPORTED)
target_link_libraries(tinyroute::ggml INTERFACE ggml::ggml)

get_filename_component(_tr_prefix "${llama_DIR}/../../.." ABSOLUTE)
find_program(TINYROUTE_LLAMA_SERVER llama-server HINTS ${_tr_prefix}/bin)
find_program(TINYROUTE_LLAMA_QUANTIZE llama-quantize HINTS ${_tr_prefix}/bin)
find_program(TINYROUTE_LLAMA_BENCH llama-bench HINTS ${_tr_prefix}/bin)
if(NOT TINYROUTE_VOCAB_GGUF)
  find_file(TINYROUTE_VOCAB_GGUF_FOUND ggml-vocab-llama-spm.gguf
            HINTS ${_tr_prefix}/share/tinyroute ${_tr_prefix}/share/llama.cpp/models)
  if(TINYROUTE_VOCAB_GGUF_FOUND)
    set(TINYROUTE_VOCAB_GGUF ${TINYROUTE_VOCAB_GGUF_FOUND})
  endif()
endif()
