// libFuzzer target: Firehose transformation events through
// source::EventHandler (event_fuzzer.hpp says what is checked). Built only
// with clang, under -DFILEBUILDER_FUZZ=ON.
#include "event_fuzzer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return filebuilder::fuzz::run_event_fuzzer(data, size, true);
}
