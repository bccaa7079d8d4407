// A program that only classifies: it links tinyroute-route and nothing above it. tests/layers runs it
// on a generated model and checks that neither hiredis, libcurl nor libssl came along.
#include <iostream>
#include <memory>
#include <string>

#include "tinyroute/classify.h"
#include "tinyroute/error.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: classify-only MODEL.gguf\n";
    return 2;
  }
  try {
    const tinyroute::Config config = tinyroute::parse_config(std::string("internal_model:\n"
                                                                         "  model: ") +
                                                                 argv[1] +
                                                                 "\n"
                                                                 "  threads: 1\n"
                                                                 "categories:\n"
                                                                 "  - name: coding\n"
                                                                 "    description: Writing or fixing code.\n"
                                                                 "  - name: chat\n"
                                                                 "    description: Everything else.\n"
                                                                 "models:\n"
                                                                 "  - name: big\n"
                                                                 "    provider: ollama\n"
                                                                 "    base_url: http://127.0.0.1:11434\n"
                                                                 "    categories: [coding, chat]\n"
                                                                 "default_category: chat\n",
                                                             "classify-only.yaml");
    tinyroute::EngineParams params = tinyroute::engine_default_params();
    params.model_path = argv[1];
    params.n_threads = 1;
    tinyroute::TaskRouter router(std::make_shared<tinyroute::Engine>(params), config);
    const tinyroute::ClassifyResult r = router.classify_task("Fix the null pointer in parse()").get();
    if (r.category != "coding" && r.category != "chat") {
      std::cerr << "not a configured category: " << r.category << "\n";
      return 1;
    }
    std::cout << r.category << " " << r.confidence << "\n";
    return 0;
  } catch (const tinyroute::Error& e) {
    std::cerr << "classify-only: " << e.what() << "\n";
    return 1;
  }
}
