// libFuzzer target: chunk parsing (ChunkParser::parse, then check_limits and
// the content's base64), checked against simdjson's DOM parser as a
// reference. Built only with clang, under -DFILEBUILDER_FUZZ=ON.
//
// Invariants:
//   - never crashes, never reads outside the record (ASan), no UB (UBSan);
//   - a record parsed ok is valid JSON to the DOM parser, an object whose
//     four fields (first occurrence) have exactly the values parsed, with
//     partition < partitionCount;
//   - a record the DOM parser reads as valid JSON within the depth limit is
//     never invalid_json or too_deep; one that is valid JSON but not an
//     object is not_an_object; one nested deeper than the limit is too_deep
//     or an earlier field error, never ok;
//   - the parser is reusable: a second parse of the same record gives the
//     same answer;
//   - check_limits agrees with the limits it is given.
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "filebuilder/base64.hpp"
#include "filebuilder/chunk.hpp"
#include "fuzz_support.hpp"

namespace {

using filebuilder::Chunk;
using filebuilder::ErrorCode;
using filebuilder::fuzz::fail;

constexpr const char* target = "chunk";

bool same_chunk(const Chunk& a, const Chunk& b) {
  return a.put_endpoint == b.put_endpoint && a.partition == b.partition &&
         a.partition_count == b.partition_count && a.content == b.content;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static filebuilder::ChunkParser parser;  // reused across inputs, as in production
  static simdjson::dom::parser reference;
  const std::string_view record(reinterpret_cast<const char*>(data), size);

  Chunk chunk;
  const ErrorCode error = parser.parse(record, chunk);
  // Copy the views out before the next parse overwrites them.
  const std::string endpoint(chunk.put_endpoint);
  const std::string content(chunk.content);
  Chunk again;
  if (parser.parse(record, again) != error) fail(target, "a second parse answers differently");
  if (error == ErrorCode::ok &&
      !same_chunk(again, Chunk{endpoint, chunk.partition, chunk.partition_count, content}))
    fail(target, "a second parse gives other fields");

  // The reference: simdjson's DOM parser at a generous depth.
  simdjson::dom::element root;
  const simdjson::error_code dom_error = reference.parse(record).get(root);
  bool too_deep = false;
  if (dom_error == simdjson::SUCCESS) {
    // The depth of the document, computed independently of ChunkParser.
    std::size_t depth = 0;
    const auto measure = [&](auto&& self, simdjson::dom::element e, std::size_t level) -> void {
      if (level > depth) depth = level;
      if (e.is_array()) {
        for (simdjson::dom::element child : simdjson::dom::array(e)) self(self, child, level + 1);
      } else if (e.is_object()) {
        for (simdjson::dom::key_value_pair field : simdjson::dom::object(e))
          self(self, field.value, level + 1);
      }
    };
    measure(measure, root, 1);
    too_deep = depth > filebuilder::max_chunk_depth;
  }

  if (error == ErrorCode::ok) {
    if (dom_error != simdjson::SUCCESS) fail(target, "ok, but not valid JSON to the DOM parser");
    if (too_deep) fail(target, "ok, but nested deeper than the limit");
    simdjson::dom::object object;
    if (root.get_object().get(object) != simdjson::SUCCESS) fail(target, "ok, but not an object");
    std::string_view dom_endpoint;
    std::string_view dom_content;
    std::uint64_t dom_partition = 0;
    std::uint64_t dom_count = 0;
    if (object["putEndpoint"].get_string().get(dom_endpoint) != simdjson::SUCCESS ||
        object["content"].get_string().get(dom_content) != simdjson::SUCCESS ||
        object["partition"].get_uint64().get(dom_partition) != simdjson::SUCCESS ||
        object["partitionCount"].get_uint64().get(dom_count) != simdjson::SUCCESS)
      fail(target, "ok, but the DOM parser does not see the four fields");
    if (dom_endpoint != endpoint || dom_content != content || dom_partition != chunk.partition ||
        dom_count != chunk.partition_count)
      fail(target, "ok, but the fields differ from the DOM parser's");
    if (chunk.partition_count == 0 || chunk.partition >= chunk.partition_count)
      fail(target, "ok, but partition is not below partitionCount");

    // Limits: each is refused exactly when it is broken.
    filebuilder::Limits limits;
    limits.max_partitions = 1 + (size % 7);
    limits.max_part_bytes = size % 13;
    limits.max_file_bytes = size % 11;
    const ErrorCode limit = filebuilder::check_limits(chunk, limits);
    const std::uint64_t bound = filebuilder::base64::decoded_size(content);
    const ErrorCode expected = chunk.partition_count > limits.max_partitions
                                   ? ErrorCode::too_many_partitions
                               : bound > limits.max_part_bytes ? ErrorCode::part_too_large
                               : bound > limits.max_file_bytes ? ErrorCode::file_too_large
                                                               : ErrorCode::ok;
    if (limit != expected) fail(target, "check_limits disagrees with its limits");

    // The content decodes within max_decoded_size, or names its bad position.
    std::string bytes(filebuilder::base64::max_decoded_size(content.size()), '\0');
    const filebuilder::base64::DecodeResult decoded =
        filebuilder::base64::decode(content, bytes.data());
    if (decoded.written > bytes.size()) fail(target, "base64 wrote past max_decoded_size");
    if (decoded.error == ErrorCode::ok && decoded.written > bound)
      fail(target, "base64 decoded more than decoded_size");
    if (decoded.error != ErrorCode::ok && decoded.position > content.size())
      fail(target, "base64 error position past the content");
    return 0;
  }

  if (dom_error == simdjson::SUCCESS && !too_deep) {
    if (error == ErrorCode::invalid_json || error == ErrorCode::too_deep)
      fail(target, "valid JSON within the depth limit, refused as invalid_json or too_deep");
    if (!root.is_object() && error != ErrorCode::not_an_object)
      fail(target, "valid JSON that is not an object, not refused as not_an_object");
  }
  if (dom_error == simdjson::SUCCESS && root.is_object() && error == ErrorCode::not_an_object)
    fail(target, "an object refused as not_an_object");
  if (dom_error != simdjson::SUCCESS && dom_error != simdjson::DEPTH_ERROR &&
      error == ErrorCode::not_an_object)
    fail(target, "invalid JSON refused as not_an_object (it is valid JSON to us?)");
  return 0;
}
