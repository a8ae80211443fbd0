// Checkpoint's order and checks (concepts.hpp), which every CheckpointStore keeps.
#include "filebuilder/concepts.hpp"
#include "filebuilder/detail/checkpoint.hpp"

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

TEST_CASE("checkpoints: the text form durable stores keep reads back exactly, and only that") {
  for (const Checkpoint& checkpoint :
       {Checkpoint{"0", 0, false},
        Checkpoint{"49590338271490256608559692538361571095921575989136588898", 3, false},
        Checkpoint{std::string(128, '9'), UINT64_MAX, false}, Checkpoint{"", 0, true},
        Checkpoint{"12", 1, true}}) {
    const std::string text = detail::format_checkpoint(checkpoint);
    CAPTURE(text);
    Checkpoint back{"junk", 9, false};
    REQUIRE(detail::parse_checkpoint(text, back));
    CHECK(back == checkpoint);
  }
  CHECK(detail::format_checkpoint(Checkpoint{"123", 45, false}) == "0 123 45");
  CHECK(detail::format_checkpoint(Checkpoint{"", 0, true}) == "1  0");
  for (const char* bad : {"", "0", "0 1", "0 1 ", "0  0", "2 1 0", "0 01 0", "0 1 01", "0 1 -1",
                          "0 1 18446744073709551616", "0 1 0 ", " 0 1 0", "0 1 0\n", "0 1a 0",
                          "01 1 0", "0 1  0", "1 0 x"}) {
    CAPTURE(bad);
    Checkpoint out{"kept", 1, false};
    CHECK_FALSE(detail::parse_checkpoint(bad, out));
    CHECK(out == Checkpoint{"kept", 1, false});  // untouched
  }
}
