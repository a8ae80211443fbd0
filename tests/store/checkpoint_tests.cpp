// Checkpoint's order and checks (concepts.hpp), which every CheckpointStore keeps.
#include "filebuilder/concepts.hpp"

#include "support/discard_store.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace filebuilder;

// A StateStore written before checkpoints existed is still one.
static_assert(StateStore<test::DiscardStore>);
static_assert(!CheckpointStore<test::DiscardStore>);

TEST_CASE("checkpoints: ordered by shard end, then the sequence number as a number, then sub") {
  const auto at = [](std::string sequence, std::uint64_t sub = 0, bool end = false) {
    return Checkpoint{std::move(sequence), sub, end};
  };
  CHECK(at("9") < at("10"));
  std::string ten57(57, '0');
  ten57[0] = '1';
  CHECK(at(std::string(56, '9')) < at(ten57));
  CHECK(at("123", 5) < at("124", 0));
  CHECK(at("123", 4) < at("123", 5));
  CHECK(at("123", UINT64_MAX - 1) < at("123", UINT64_MAX));
  CHECK(at("123", 5) == at("123", 5));
  CHECK((at("123", 5) <=> at("123", 5)) == 0);
  CHECK(at(std::string(128, '9'), UINT64_MAX) < at("", 0, true));  // an end is past everything
  CHECK(at("", 0, true) < at("1", 0, true));
  CHECK_FALSE(at("10") < at("9"));
}

TEST_CASE("checkpoints: what a valid sequence number and name are") {
  CHECK(check_checkpoint(Checkpoint{"0", 0, false}) == ErrorCode::ok);
  CHECK(check_checkpoint(Checkpoint{std::string(128, '7'), UINT64_MAX, false}) == ErrorCode::ok);
  CHECK(check_checkpoint(Checkpoint{"", 0, true}) == ErrorCode::ok);
  for (const char* bad : {"", "01", "1a", "-1", " 1", "1\n", "\xd9\xa1"})
    CHECK(check_checkpoint(Checkpoint{bad, 0, false}) == ErrorCode::invalid_checkpoint);
  CHECK(check_checkpoint(Checkpoint{std::string(129, '7'), 0, false}) ==
        ErrorCode::invalid_checkpoint);
  CHECK(check_checkpoint_name("s") == ErrorCode::ok);
  CHECK(check_checkpoint_name(std::string(1024, '/')) == ErrorCode::ok);
  CHECK(check_checkpoint_name("") == ErrorCode::invalid_checkpoint);
  CHECK(check_checkpoint_name(std::string(1025, 'x')) == ErrorCode::invalid_checkpoint);
  CHECK(check_checkpoint("stream", "", Checkpoint{"1", 0, false}) == ErrorCode::invalid_checkpoint);
  CHECK(check_checkpoint("", "shard", Checkpoint{"1", 0, false}) == ErrorCode::invalid_checkpoint);
  CHECK(check_checkpoint("stream", "shard", Checkpoint{"x", 0, false}) ==
        ErrorCode::invalid_checkpoint);
  CHECK(check_checkpoint("stream", "shard", Checkpoint{"1", 0, false}) == ErrorCode::ok);
  CHECK(error_code_name(ErrorCode::invalid_checkpoint) == "invalid_checkpoint");
}
