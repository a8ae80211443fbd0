// RedisStore against a real redis-server on 127.0.0.1: the conformance suite,
// then what only Redis has (keys, TTLs, several store objects, reconnects,
// a full server, the URL).
#include "filebuilder/store/redis.hpp"

#include "filebuilder/reassembler.hpp"
#include "store/conformance.hpp"
#include "support/chunks.hpp"
#include "support/fake_uploader.hpp"
#include "support/redis.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace filebuilder;
using filebuilder::test::RedisServer;
using filebuilder::test::RedisServerOptions;
using filebuilder::test::RedisValue;
using filebuilder::test::conformance::read_all;
using filebuilder::test::conformance::unique_endpoint;

namespace {

/// One server for the conformance cases and the tests that only need a
/// server: endpoints (and prefixes) are unique per case.
RedisServer& shared_server() {
  static RedisServer server;
  return server;
}

RedisStoreOptions options_for(const RedisServer& server, std::string prefix = "filebuilder:") {
  RedisStoreOptions options;
  options.port = server.port();
  options.prefix = std::move(prefix);
  options.reconnect_backoff = std::chrono::milliseconds(0);
  options.connect_timeout = std::chrono::milliseconds(1000);
  return options;
}

/// A prefix no other test case uses.
std::string unique_prefix(std::string_view name) {
  static std::atomic<unsigned> counter{0};
  std::string prefix = "fbtest-";
  prefix += name;
  prefix += '-';
  prefix += std::to_string(counter++);
  prefix += ':';
  return prefix;
}

PartInfo part(std::string_view endpoint, std::uint64_t index, std::uint64_t count) {
  return PartInfo{endpoint, index, count, UINT64_MAX};
}

std::atomic<long long> fake_ms{1'000'000'000'000};
Clock::time_point fake_now() {
  return Clock::time_point{} + std::chrono::milliseconds(fake_ms.load());
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

long long integer_of(const RedisValue& value) {
  return value.type == REDIS_REPLY_INTEGER ? value.integer : std::stoll(value.str);
}

}  // namespace

// clang-format off
FILEBUILDER_STORE_CONFORMANCE("redis", [] {
  return std::make_unique<RedisStore>(options_for(shared_server()));
})
// clang-format on

TEST_CASE("redis: keys live under the prefix only, and every key has a TTL") {
  RedisServer server;  // its own, so that SCAN sees exactly this test's keys
  RedisStoreOptions options = options_for(server, "fbkeys:");
  options.expire_after = std::chrono::seconds(1000);
  options.done_mark_ttl = std::chrono::seconds(500);
  options.claim_lease = std::chrono::seconds(60);
  RedisStore store(options);

  const std::string partial = "https://bucket.example.com/partial?X-Amz-Signature=1";
  const std::string finished = "https://bucket.example.com/finished?X-Amz-Signature=2";
  const std::string pending = "https://bucket.example.com/pending?X-Amz-Signature=3";
  REQUIRE(store.put_part(part(partial, 0, 3), "a").error == ErrorCode::ok);
  REQUIRE(store.put_part(part(partial, 2, 3), "c").error == ErrorCode::ok);
  REQUIRE(store.put_part(part(finished, 0, 1), "f").complete);
  REQUIRE(store.claim(finished) == ClaimStatus::claimed);
  REQUIRE(store.finish(finished) == ErrorCode::ok);
  REQUIRE(store.put_part(part(pending, 0, 1), "p").complete);
  REQUIRE(store.claim(pending) == ClaimStatus::claimed);
  REQUIRE(store.release(pending, Clock::now() + std::chrono::hours(1)) == ErrorCode::ok);

  const std::string a = sha256_hex(partial), b = sha256_hex(finished), c = sha256_hex(pending);
  const std::set<std::string> expected = {"fbkeys:f:" + a,  "fbkeys:p:" + a, "fbkeys:d:" + b,
                                          "fbkeys:f:" + c,  "fbkeys:p:" + c, "fbkeys:touched",
                                          "fbkeys:pending", "fbkeys:done"};
  const std::vector<std::string> found = server.keys();
  CHECK(std::set<std::string>(found.begin(), found.end()) == expected);
  CHECK(found.size() == expected.size());

  for (const std::string& key : found) {
    const long long ttl = server.command({"TTL", key}).integer;
    INFO(key, " TTL ", ttl);
    CHECK(ttl > 0);
    if (starts_with(key, "fbkeys:f:") || starts_with(key, "fbkeys:p:")) {
      CHECK(ttl <= 1000);
      CHECK(ttl >= 990);
    }
    if (starts_with(key, "fbkeys:d:") || key == "fbkeys:done") {
      CHECK(ttl <= 500);
      CHECK(ttl >= 490);
    }
    if (key == "fbkeys:touched" || key == "fbkeys:pending") {
      CHECK(ttl <= 1000 + 60 + 60);
      CHECK(ttl >= 1000);
    }
  }

  // The file hash holds the endpoint (for the upload) and the bookkeeping.
  const RedisValue meta = server.command({"HMGET", "fbkeys:f:" + a, "endpoint", "count", "bytes"});
  REQUIRE(meta.elements.size() == 3);
  CHECK(meta.elements[0].str == partial);
  CHECK(meta.elements[1].str == "3");
  CHECK(meta.elements[2].str == "2");
  CHECK(server.command({"HLEN", "fbkeys:p:" + a}).integer == 2);
  CHECK(server.command({"HGET", "fbkeys:p:" + a, "2"}).str == "c");
  CHECK(server.command({"HGET", "fbkeys:f:" + c, "pending"}).str == "1");

  // Without ?prefix= the keys start with filebuilder:.
  RedisStore plain(options_for(server));
  const std::string other = unique_endpoint("plain");
  REQUIRE(plain.put_part(part(other, 0, 2), "x").error == ErrorCode::ok);
  const std::vector<std::string> all = server.keys();
  CHECK(std::count_if(all.begin(), all.end(), [](const std::string& key) {
          return starts_with(key, "filebuilder:");
        }) == 3);  // f:, p:, touched
  CHECK(all.size() == expected.size() + 3);
}

TEST_CASE("redis: two store objects racing on the same file: one claim wins, no part lost") {
  RedisServer& server = shared_server();
  const std::string prefix = unique_prefix("race");
  RedisStore first(options_for(server, prefix));
  RedisStore second(options_for(server, prefix));
  const std::string e = unique_endpoint("race");
  constexpr int parts = 400;
  std::atomic<int> claims{0};
  std::atomic<int> stored{0};
  std::atomic<int> errors{0};
  auto writer = [&](RedisStore& store, int start) {
    for (int i = 0; i < parts; ++i) {
      const int index = (i + start) % parts;
      std::string bytes = "part-";
      bytes += std::to_string(index);
      const PutOutcome put =
          store.put_part(part(e, static_cast<std::uint64_t>(index), parts), bytes);
      if (put.error != ErrorCode::ok) ++errors;
      if (put.status == PutStatus::stored) ++stored;
      if (put.complete && store.claim(e) == ClaimStatus::claimed) ++claims;
    }
  };
  std::thread t1(writer, std::ref(first), 0), t2(writer, std::ref(second), parts / 2);
  std::thread t3(writer, std::ref(first), parts / 3), t4(writer, std::ref(second), parts / 5);
  t1.join();
  t2.join();
  t3.join();
  t4.join();
  CHECK(errors == 0);
  CHECK(stored == parts);  // each part stored exactly once, the rest duplicates
  CHECK(claims == 1);
  std::string expected;
  for (int i = 0; i < parts; ++i) expected += "part-" + std::to_string(i);
  const RedisValue bytes = server.command({"HGET", prefix + "f:" + sha256_hex(e), "bytes"});
  CHECK(bytes.str == std::to_string(expected.size()));
  CHECK(server.command({"HLEN", prefix + "p:" + sha256_hex(e)}).integer == parts);
  Result<std::unique_ptr<BodyReader>> body = second.open_body(e);
  REQUIRE(body.ok());
  CHECK(read_all(*body.value_unsafe(), 1000) == expected);
  CHECK(first.finish(e) == ErrorCode::ok);
  CHECK(second.claim(e) == ClaimStatus::finished);
}

TEST_CASE("redis: parts are binary-safe, and big parts are read in bounded ranges") {
  RedisServer& server = shared_server();
  RedisStoreOptions options = options_for(server, unique_prefix("binary"));
  options.read_buffer_bytes = 1000;  // parts above this are read a range at a time
  RedisStore store(options);

  std::string every_byte;
  for (int i = 0; i < 256; ++i) every_byte += static_cast<char>(i);
  std::mt19937 random(42);
  std::string big(5000, '\0');
  for (char& c : big) c = static_cast<char>(random() & 0xFF);
  const std::vector<std::string> parts = {
      every_byte, std::string(3, '\0'), "*1\r\n$-1\r\n", "", big, std::string(1000, '\xff'), "z"};
  const std::string e = unique_endpoint("binary");
  std::string expected;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const PutOutcome put = store.put_part(part(e, i, parts.size()), parts[i]);
    REQUIRE(put.error == ErrorCode::ok);
    CHECK(put.complete == (i + 1 == parts.size()));
    expected += parts[i];
  }
  // A duplicate is compared byte for byte on the server.
  CHECK(store.put_part(part(e, 0, parts.size()), every_byte).status == PutStatus::duplicate);
  std::string almost = every_byte;
  almost[0] = '\x01';
  CHECK(store.put_part(part(e, 0, parts.size()), almost).error == ErrorCode::partition_conflict);
  CHECK(store.put_part(part(e, 1, parts.size()), std::string(2, '\0')).error ==
        ErrorCode::partition_conflict);

  REQUIRE(store.claim(e) == ClaimStatus::claimed);
  Result<std::unique_ptr<BodyReader>> opened = store.open_body(e);
  REQUIRE(opened.ok());
  BodyReader& body = *opened.value_unsafe();
  CHECK(body.size() == expected.size());
  for (std::size_t step : {std::size_t{1}, std::size_t{7}, std::size_t{999}, std::size_t{4096},
                           std::size_t{1} << 20}) {
    INFO("step ", step);
    CHECK(read_all(body, step) == expected);
  }
  // One read copies from at most one fetched part or range: never more than
  // read_buffer_bytes, whatever the destination's size.
  std::string out(expected.size(), '\0');
  const std::uint64_t big_start = 256 + 3 + 9;
  Result<std::size_t> read = body.read_at(big_start + 10, std::span<char>(out.data(), out.size()));
  REQUIRE(read.ok());
  CHECK(read.value_unsafe() == 1000);
  CHECK(std::string_view(out.data(), 1000) == std::string_view(big).substr(10, 1000));
  CHECK(sha256_hex(body) == sha256_hex(expected));
  CHECK(store.finish(e) == ErrorCode::ok);
  // The file is gone: the reader says so instead of returning stale bytes.
  char byte = 0;
  CHECK(body.read_at(0, std::span<char>(&byte, 1)).error() == ErrorCode::store_unavailable);
}

TEST_CASE("redis: a stopped server makes calls unavailable, the store reconnects after restart") {
  RedisServer server(RedisServerOptions{.append_only = true, .password = {}});
  RedisStore store(options_for(server, unique_prefix("restart")));
  const std::string e = unique_endpoint("restart");
  REQUIRE(store.put_part(part(e, 0, 3), "one,").error == ErrorCode::ok);
  REQUIRE(store.put_part(part(e, 1, 3), "two,").error == ErrorCode::ok);
  const std::string other = unique_endpoint("restart-other");
  REQUIRE(store.put_part(part(other, 0, 1), "o").complete);

  server.stop();
  CHECK(store.put_part(part(e, 2, 3), "three").error == ErrorCode::store_unavailable);
  CHECK(store.claim(other) == ClaimStatus::unavailable);
  CHECK(store.open_body(other).error() == ErrorCode::store_unavailable);
  CHECK(store.release(other, Clock::now()) == ErrorCode::store_unavailable);
  CHECK(store.finish(other) == ErrorCode::store_unavailable);
  CHECK(store.claim_pending(10, Clock::now()).empty());
  CHECK(store.ping() == ErrorCode::store_unavailable);
  CHECK(store.last_error().find("redis") != std::string::npos);

  server.start();  // same port, same AOF
  const PutOutcome last = store.put_part(part(e, 2, 3), "three");
  CHECK(last.error == ErrorCode::ok);
  CHECK(last.status == PutStatus::stored);
  CHECK(last.complete);  // the parts stored before the restart are still there
  REQUIRE(store.claim(e) == ClaimStatus::claimed);
  Result<std::unique_ptr<BodyReader>> body = store.open_body(e);
  REQUIRE(body.ok());
  CHECK(read_all(*body.value_unsafe()) == "one,two,three");
  CHECK(store.finish(e) == ErrorCode::ok);

  // A restart between two calls: the broken connection is noticed by the
  // next call, which reconnects and runs (every script is safe to rerun).
  server.restart();
  CHECK(store.claim(e) == ClaimStatus::finished);
  server.restart();
  CHECK(store.claim(other) == ClaimStatus::claimed);
  server.restart();
  CHECK(store.put_part(part(other, 0, 1), "o").status == PutStatus::duplicate);
  server.restart();
  CHECK(store.release(other, Clock::now()) == ErrorCode::ok);
  // A big write into a connection the server closed fails with EPIPE: an
  // error, retried on a new connection, not a SIGPIPE that ends the process.
  server.restart();
  const std::string big = unique_endpoint("restart-big");
  CHECK(store.put_part(part(big, 0, 1), std::string(std::size_t{16} << 20, 'b')).complete);
  CHECK(
      server.command({"HGET", store.options().prefix + "f:" + sha256_hex(other), "failures"}).str ==
      "1");
}

TEST_CASE("redis: after a failed connect, calls fail at once for reconnect_backoff") {
  std::uint16_t port = 0;
  {
    RedisServer gone;
    port = gone.port();
  }
  RedisStoreOptions options;
  options.port = port;
  options.reconnect_backoff = std::chrono::hours(1);
  RedisStore store(options);
  CHECK(store.put_part(part("https://h/x", 0, 1), "x").error == ErrorCode::store_unavailable);
  const std::string why = store.last_error();
  CHECK(why.find("connect") != std::string::npos);
  // Within the backoff: no new attempt, the same reason.
  CHECK(store.claim("https://h/x") == ClaimStatus::unavailable);
  CHECK(store.last_error() == why);
}

TEST_CASE("redis: password and database from the URL") {
  RedisServer server(RedisServerOptions{.append_only = false, .password = "s3cr@t:/pw"});
  // The password in the URL is percent-encoded.
  const std::string url =
      "redis://:s3cr%40t%3A%2Fpw@127.0.0.1:" + std::to_string(server.port()) + "/3?prefix=fbauth:";
  Result<RedisStoreOptions> parsed = parse_redis_url(url);
  REQUIRE(parsed.ok());
  RedisStore store(parsed.value_unsafe());
  CHECK(store.ping() == ErrorCode::ok);
  const std::string e = unique_endpoint("auth");
  REQUIRE(store.put_part(part(e, 0, 2), "x").error == ErrorCode::ok);
  const std::vector<std::string> in_db3 = server.keys(3);
  CHECK(std::find(in_db3.begin(), in_db3.end(), "fbauth:f:" + sha256_hex(e)) != in_db3.end());
  CHECK(server.keys(0).empty());

  RedisStoreOptions wrong = parsed.value_unsafe();
  wrong.password = "nope";
  RedisStore refused(wrong);
  CHECK(refused.put_part(part(e, 1, 2), "y").error == ErrorCode::store_unavailable);
  CHECK(refused.last_error().find("AUTH") != std::string::npos);
  RedisStoreOptions none = parsed.value_unsafe();
  none.password.clear();
  RedisStore anonymous(none);
  CHECK(anonymous.claim(e) == ClaimStatus::unavailable);
}

TEST_CASE("redis: a full server refuses new parts with store_full, still lets files finish") {
  RedisServer server;
  RedisStore store(options_for(server, unique_prefix("full")));
  const std::string complete = unique_endpoint("full-complete");
  REQUIRE(store.put_part(part(complete, 0, 1), std::string(100'000, 'c')).complete);
  const long long used = [&] {
    const std::string info = server.command({"INFO", "memory"}).str;
    const std::size_t at = info.find("used_memory:") + 12;
    return std::stoll(info.substr(at, info.find('\r', at) - at));
  }();
  REQUIRE(server.command({"CONFIG", "SET", "maxmemory", std::to_string(used + 2'000'000)}).str ==
          "OK");
  const std::string e = unique_endpoint("full");
  ErrorCode error = ErrorCode::ok;
  std::size_t stored = 0;
  for (std::uint64_t i = 0; i < 100 && error == ErrorCode::ok; ++i) {
    error = store.put_part(part(e, i, 1000), std::string(200'000, 'x')).error;
    if (error == ErrorCode::ok) ++stored;
  }
  CHECK(error == ErrorCode::store_full);
  CHECK(stored >= 1);
  CHECK(stored < 100);
  // Nothing half-written: the refused part is absent, the count is right.
  const std::string hash = sha256_hex(e);
  CHECK(integer_of(server.command({"HGET", store.options().prefix + "f:" + hash, "bytes"})) ==
        static_cast<long long>(stored * 200'000));
  CHECK(server.command({"HLEN", store.options().prefix + "p:" + hash}).integer ==
        static_cast<long long>(stored));
  // A duplicate is still recognised, and a complete file can be uploaded and dropped.
  CHECK(store.put_part(part(e, 0, 1000), std::string(200'000, 'x')).status == PutStatus::duplicate);
  CHECK(store.claim(complete) == ClaimStatus::claimed);
  CHECK(store.release(complete, Clock::now()) == ErrorCode::ok);
  CHECK(store.claim(complete) == ClaimStatus::claimed);
  CHECK(store.finish(complete) == ErrorCode::ok);
  CHECK(store.put_part(part(complete, 0, 1), "c").status == PutStatus::finished);

  REQUIRE(server.command({"CONFIG", "SET", "maxmemory", "0"}).str == "OK");
  CHECK(store.put_part(part(e, stored, 1000), std::string(200'000, 'x')).error == ErrorCode::ok);
}

TEST_CASE("redis: a pending file whose claimant died comes back after the lease") {
  RedisServer& server = shared_server();
  RedisStoreOptions options = options_for(server, unique_prefix("lease"));
  options.now = &fake_now;
  options.claim_lease = std::chrono::seconds(300);
  RedisStore store(options);
  const std::string e = unique_endpoint("lease");
  REQUIRE(store.put_part(part(e, 0, 1), "x").complete);
  REQUIRE(store.claim(e) == ClaimStatus::claimed);
  const Clock::time_point now = fake_now();
  REQUIRE(store.release(e, now + std::chrono::seconds(10)) == ErrorCode::ok);
  CHECK(store.claim_pending(10, now).empty());
  const std::vector<PendingFile> first = store.claim_pending(10, now + std::chrono::seconds(20));
  REQUIRE(first.size() == 1);
  CHECK(first[0].endpoint == e);
  CHECK(first[0].failures == 1);
  // Taken once: not again while the lease runs.
  CHECK(store.claim_pending(10, now + std::chrono::seconds(100)).empty());
  // The claimant died without finish or release: after the lease it is due again.
  const std::vector<PendingFile> again = store.claim_pending(10, now + std::chrono::seconds(400));
  REQUIRE(again.size() == 1);
  CHECK(again[0].endpoint == e);
  CHECK(again[0].failures == 1);

  // A file claimed by a redelivered record is not handed out meanwhile.
  fake_ms += 1'000'000;
  REQUIRE(store.release(e, fake_now()) == ErrorCode::ok);
  REQUIRE(store.claim(e) == ClaimStatus::claimed);
  CHECK(store.claim_pending(10, fake_now() + std::chrono::seconds(1)).empty());
  CHECK(store.finish(e) == ErrorCode::ok);
  CHECK(store.claim_pending(10, fake_now() + std::chrono::hours(1)).empty());
  CHECK(server.command({"ZCARD", options.prefix + "pending"}).integer == 0);
}

TEST_CASE("redis: claim_pending takes due files oldest first, within max, skipping stale entries") {
  RedisServer& server = shared_server();
  RedisStoreOptions options = options_for(server, unique_prefix("due"));
  options.now = &fake_now;
  RedisStore store(options);
  const Clock::time_point now = fake_now();
  std::vector<std::string> files;
  for (int i = 0; i < 4; ++i) {
    files.push_back(unique_endpoint("due"));
    REQUIRE(store.put_part(part(files.back(), 0, 1), "x").complete);
    REQUIRE(store.claim(files.back()) == ClaimStatus::claimed);
  }
  REQUIRE(store.release(files[1], now + std::chrono::seconds(5)) == ErrorCode::ok);
  REQUIRE(store.release(files[0], now + std::chrono::seconds(10)) == ErrorCode::ok);
  REQUIRE(store.release(files[2], now + std::chrono::seconds(15)) == ErrorCode::ok);
  REQUIRE(store.release(files[3], now + std::chrono::seconds(60)) == ErrorCode::ok);
  // files[0]'s parts vanish behind the store's back (as by a TTL): a stale entry.
  REQUIRE(server
              .command({"DEL", options.prefix + "f:" + sha256_hex(files[0]),
                        options.prefix + "p:" + sha256_hex(files[0])})
              .integer == 2);
  const std::vector<PendingFile> one = store.claim_pending(1, now + std::chrono::seconds(30));
  REQUIRE(one.size() == 1);
  CHECK(one[0].endpoint == files[1]);
  const std::vector<PendingFile> rest = store.claim_pending(10, now + std::chrono::seconds(30));
  REQUIRE(rest.size() == 1);
  CHECK(rest[0].endpoint == files[2]);
  // The stale entry is gone; files[1], files[2] (leased) and files[3] remain.
  CHECK(server.command({"ZCARD", options.prefix + "pending"}).integer == 3);
  CHECK(store.release(files[0], now) == ErrorCode::store_unavailable);  // the file is gone
}

TEST_CASE("redis: expire(now) drops by age for the given now, keeps leased files, cleans indexes") {
  RedisServer& server = shared_server();
  RedisStoreOptions options = options_for(server, unique_prefix("expire"));
  options.now = &fake_now;
  options.expire_after = std::chrono::seconds(100);
  options.done_mark_ttl = std::chrono::seconds(50);
  options.claim_lease = std::chrono::seconds(3600);
  RedisStore store(options);
  const std::string old_file = unique_endpoint("old"), leased = unique_endpoint("leased");
  const std::string done = unique_endpoint("done");
  REQUIRE(store.put_part(part(old_file, 0, 2), "x").error == ErrorCode::ok);
  REQUIRE(store.put_part(part(leased, 0, 1), "y").complete);
  REQUIRE(store.claim(leased) == ClaimStatus::claimed);
  REQUIRE(store.put_part(part(done, 0, 1), "z").complete);
  REQUIRE(store.claim(done) == ClaimStatus::claimed);
  REQUIRE(store.finish(done) == ErrorCode::ok);
  const Clock::time_point now = fake_now();
  CHECK(store.expire(now + std::chrono::seconds(40)) == 0);
  CHECK(store.put_part(part(done, 0, 1), "z").status == PutStatus::finished);
  CHECK(store.expire(now + std::chrono::seconds(101)) == 1);  // old_file; leased is kept
  CHECK(store.put_part(part(done, 0, 1), "z").status == PutStatus::stored);  // mark gone
  CHECK(store.put_part(part(old_file, 1, 2), "w").complete == false);        // starts afresh
  CHECK(store.claim(leased) == ClaimStatus::busy);
  // The lease is over: leased goes, with the two files started afresh above.
  CHECK(store.expire(now + std::chrono::seconds(3601)) == 3);
  CHECK(store.claim(leased) == ClaimStatus::incomplete);
  CHECK(server.command({"ZCARD", options.prefix + "touched"}).integer == 0);
  CHECK(server.command({"ZCARD", options.prefix + "done"}).integer == 0);
}

TEST_CASE("redis: files that expired by TTL leave no index entries after expire()") {
  RedisServer& server = shared_server();
  RedisStoreOptions options = options_for(server, unique_prefix("ttl"));
  options.expire_after = std::chrono::seconds(1);
  RedisStore store(options);
  const std::string e = unique_endpoint("ttl");
  REQUIRE(store.put_part(part(e, 0, 1), "x").complete);
  // Pending without a claim (a claim would extend the TTL to the lease).
  REQUIRE(store.release(e, Clock::now()) == ErrorCode::ok);
  const std::string file = options.prefix + "f:" + sha256_hex(e);
  const long long ttl = server.command({"PTTL", file}).integer;
  CHECK(ttl > 0);
  CHECK(ttl <= 1000);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (server.command({"EXISTS", file}).integer == 1 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  REQUIRE(server.command({"EXISTS", file}).integer == 0);
  CHECK(store.expire(Clock::now()) == 0);  // nothing left to drop, only index entries
  CHECK(server.command({"ZCARD", options.prefix + "touched"}).integer == 0);
  CHECK(server.command({"ZCARD", options.prefix + "pending"}).integer == 0);
}

TEST_CASE("redis: scripts flushed from the server's cache run again through EVAL") {
  RedisServer& server = shared_server();
  RedisStore store(options_for(server, unique_prefix("noscript")));
  const std::string e = unique_endpoint("noscript");
  REQUIRE(store.put_part(part(e, 0, 2), "a").error == ErrorCode::ok);
  REQUIRE(server.command({"SCRIPT", "FLUSH"}).str == "OK");
  CHECK(store.put_part(part(e, 1, 2), "b").complete);
  CHECK(store.claim(e) == ClaimStatus::claimed);
  Result<std::unique_ptr<BodyReader>> body = store.open_body(e);
  REQUIRE(body.ok());
  CHECK(read_all(*body.value_unsafe()) == "ab");
  CHECK(store.finish(e) == ErrorCode::ok);
}

TEST_CASE("redis: two Reassemblers share a RedisStore: one upload, a failed one retried by flush") {
  RedisStore store(options_for(shared_server(), unique_prefix("reassembler")));
  test::FakeUploader uploader;
  ReassemblerOptions options;
  options.pending_retry_base = std::chrono::seconds(0);  // a failed upload is due at once
  Reassembler first(store, uploader, options);
  Reassembler second(store, uploader, options);
  const std::string e = "https://bucket.example.com/reassembled.bin?X-Amz-Signature=abc";
  std::string bytes;
  for (int i = 0; i < 3000; ++i) bytes += static_cast<char>(i * 7);
  uploader.script(e, {UploadStatus::retryable});

  CHECK(first.process(test::chunk(e, 2, 3, bytes.substr(2000))).outcome == Outcome::accepted);
  CHECK(second.process(test::chunk(e, 0, 3, bytes.substr(0, 1000))).outcome == Outcome::accepted);
  const RecordOutcome completing = first.process(test::chunk(e, 1, 3, bytes.substr(1000, 1000)));
  CHECK(completing.outcome == Outcome::failed);  // the scripted 503: parts kept, pending
  CHECK(completing.error == ErrorCode::upload_failed);
  REQUIRE(uploader.calls.size() == 1);
  CHECK(uploader.calls[0].body == bytes);

  // The other consumer's next flush retries the pending upload.
  (void)second.flush();
  REQUIRE(second.retried().size() == 1);
  CHECK(second.retried()[0].outcome == Outcome::uploaded);
  REQUIRE(uploader.calls.size() == 2);
  CHECK(uploader.calls[1].url == e);
  CHECK(uploader.calls[1].body == bytes);
  CHECK(first.process(test::chunk(e, 1, 3, bytes.substr(1000, 1000))).outcome ==
        Outcome::duplicate);
  (void)first.flush();
  CHECK(first.retried().empty());
  CHECK(uploader.calls.size() == 2);
}

TEST_CASE("redis: parse_redis_url") {
  RedisStoreOptions o;
  REQUIRE(parse_redis_url("redis://cache.internal:6380/2").get(o) == ErrorCode::ok);
  CHECK(o.host == "cache.internal");
  CHECK(o.port == 6380);
  CHECK(o.db == 2);
  CHECK(o.password.empty());
  CHECK(o.username.empty());
  CHECK(o.prefix == "filebuilder:");

  REQUIRE(parse_redis_url("redis://:pa%3Ass@10.0.0.5:6379/0?prefix=app%3A1:").get(o) ==
          ErrorCode::ok);
  CHECK(o.host == "10.0.0.5");
  CHECK(o.password == "pa:ss");
  CHECK(o.db == 0);
  CHECK(o.prefix == "app:1:");

  REQUIRE(parse_redis_url("REDIS://user:pw@localhost").get(o) == ErrorCode::ok);
  CHECK(o.username == "user");
  CHECK(o.password == "pw");
  CHECK(o.host == "localhost");
  CHECK(o.port == 6379);
  CHECK(o.db == 0);

  REQUIRE(parse_redis_url("redis://[::1]:7000/").get(o) == ErrorCode::ok);
  CHECK(o.host == "::1");
  CHECK(o.port == 7000);
  REQUIRE(parse_redis_url("redis://h:1?prefix=p").get(o) == ErrorCode::ok);
  CHECK(o.prefix == "p");
  CHECK(o.db == 0);

  std::string why;
  CHECK(parse_redis_url("rediss://h:6379", &why).error() == ErrorCode::invalid_config);
  CHECK(why.find("TLS") != std::string::npos);
  for (const char* bad : {"",
                          "redis:",
                          "redis://",
                          "http://h:6379",
                          "memory:",
                          "redis://:6379",
                          "redis://h:",
                          "redis://h:0",
                          "redis://h:65536",
                          "redis://h:12x",
                          "redis://h:6379/x",
                          "redis://h/1/2",
                          "redis://h/-1",
                          "redis://pw@h",
                          "redis://:@h",
                          "redis://h?prefix=",
                          "redis://h?prefix",
                          "redis://h?db=1",
                          "redis://h?prefix=a&prefix=b",
                          "redis://:%zz@h",
                          "redis://h?prefix=%4",
                          "redis://h#frag",
                          "redis://[::1",
                          "redis://[]:1",
                          "redis://[::1]x",
                          "redis://h o:1",
                          "redis://h/99999999999"}) {
    INFO("url: ", bad);
    why.clear();
    CHECK(parse_redis_url(bad, &why).error() == ErrorCode::invalid_config);
    CHECK_FALSE(why.empty());
  }
}

// ---------------------------------------------------------------------------
// Checkpoints

namespace {

struct RedisCheckpoints {
  static auto make() { return std::make_unique<RedisStore>(options_for(shared_server())); }
};
}  // namespace

FILEBUILDER_CHECKPOINT_CONFORMANCE("redis", RedisCheckpoints);

using namespace test::checkpoints;  // at, sequence, load, list

TEST_CASE("redis: checkpoints: one hash per stream, no TTL, kept across objects and restarts") {
  RedisServer server(RedisServerOptions{.append_only = true, .password = {}});
  RedisStore store(options_for(server, "fbckpt:"));
  const std::string stream = "orders/../stream", shard = "shardId-000000000001\n";
  REQUIRE(store.save_checkpoint(stream, shard, at(sequence(5), 2)) == ErrorCode::ok);
  REQUIRE(store.save_checkpoint(stream, "shardId-000000000000", Checkpoint{"", 0, true}) ==
          ErrorCode::ok);
  const std::string key = "fbckpt:c:" + sha256_hex(stream);
  CHECK(server.keys() == std::vector<std::string>{key});
  CHECK(server.command({"TTL", key}).integer == -1);  // checkpoints never expire
  CHECK(server.command({"HGET", key, shard}).str == "0 " + sequence(5) + " 2");
  CHECK(server.command({"HGET", key, "shardId-000000000000"}).str == "1  0");
  CHECK(server.command({"HLEN", key}).integer == 2);

  RedisStore other(options_for(server, "fbckpt:"));
  CHECK(load(other, stream, shard) == at(sequence(5), 2));
  server.restart();  // the AOF keeps them; both objects reconnect
  CHECK(load(store, stream, shard) == at(sequence(5), 2));
  CHECK(load(other, stream, "shardId-000000000000") == Checkpoint{"", 0, true});
  CHECK(other.save_checkpoint(stream, shard, at(sequence(4))) == ErrorCode::ok);  // behind
  CHECK(load(store, stream, shard) == at(sequence(5), 2));
  // Another prefix is another store.
  RedisStore apart(options_for(server, "fbother:"));
  CHECK(load(apart, stream, shard) == std::nullopt);
}

TEST_CASE("redis: checkpoint calls are store_unavailable while the server is down") {
  RedisServer server(RedisServerOptions{.append_only = true, .password = {}});
  RedisStore store(options_for(server, unique_prefix("checkpoint-down")));
  REQUIRE(store.save_checkpoint("stream", "shard", at(sequence(7))) == ErrorCode::ok);
  server.stop();
  CHECK(store.save_checkpoint("stream", "shard", at(sequence(8))) == ErrorCode::store_unavailable);
  CHECK(store.load_checkpoint("stream", "shard").error() == ErrorCode::store_unavailable);
  CHECK(store.list_checkpoints("stream").error() == ErrorCode::store_unavailable);
  CHECK(store.last_error().find("redis") != std::string::npos);
  server.start();
  CHECK(load(store, "stream", "shard") == at(sequence(7)));  // the failed save changed nothing
  CHECK(store.save_checkpoint("stream", "shard", at(sequence(8))) == ErrorCode::ok);
  server.restart();  // noticed by the next call, which reconnects once and runs
  CHECK(store.save_checkpoint("stream", "shard", at(sequence(9))) == ErrorCode::ok);
  server.restart();
  CHECK(list(store, "stream") == std::vector<ShardCheckpoint>{{"shard", at(sequence(9))}});
}

TEST_CASE("redis: two store objects racing checkpoint saves end at the greatest, never behind") {
  RedisServer& server = shared_server();
  const std::string prefix = unique_prefix("checkpoint-race");
  constexpr std::uint64_t saves = 400;
  std::atomic<int> errors{0};
  const auto saver = [&](std::uint64_t parity) {
    RedisStore store(options_for(server, prefix));  // a connection of its own
    for (std::uint64_t i = 0; i < saves; ++i) {
      const Checkpoint checkpoint = at(sequence(2 * i + parity), i);
      if (store.save_checkpoint("stream", "shard", checkpoint) != ErrorCode::ok) ++errors;
      // Both ascending, interleaved: each save must find the store at or past it.
      Result<std::optional<Checkpoint>> now = store.load_checkpoint("stream", "shard");
      if (!now.ok() || !now.value_unsafe() || *now.value_unsafe() < checkpoint) ++errors;
    }
  };
  std::thread first(saver, 0), second(saver, 1);
  first.join();
  second.join();
  CHECK(errors == 0);
  RedisStore store(options_for(server, prefix));
  CHECK(load(store, "stream", "shard") == at(sequence(2 * saves - 1), saves - 1));
}

TEST_CASE("redis: a checkpoint value that does not parse is never guessed, and a save heals it") {
  RedisServer& server = shared_server();
  const std::string prefix = unique_prefix("checkpoint-garbage");
  RedisStore store(options_for(server, prefix));
  REQUIRE(store.save_checkpoint("stream", "shard", at(sequence(8))) == ErrorCode::ok);
  const std::string key = prefix + "c:" + sha256_hex("stream");
  for (const std::string& bad : {std::string("garbage"), std::string("0 01 0"),
                                 std::string("0 1 0 "), std::string("2 1 0"), std::string()}) {
    CAPTURE(bad);
    REQUIRE(server.command({"HSET", key, "shard", bad}).type == REDIS_REPLY_INTEGER);
    CHECK(store.load_checkpoint("stream", "shard").error() == ErrorCode::store_unavailable);
    CHECK(store.list_checkpoints("stream").error() == ErrorCode::store_unavailable);
  }
  REQUIRE(store.save_checkpoint("stream", "shard", at("1")) == ErrorCode::ok);
  CHECK(load(store, "stream", "shard") == at("1"));
  // A key of another type under the name: refused by the server, never overwritten.
  REQUIRE(server.command({"DEL", key}).integer == 1);
  REQUIRE(server.command({"SET", key, "x"}).str == "OK");
  CHECK(store.save_checkpoint("stream", "shard", at("2")) == ErrorCode::store_unavailable);
  CHECK(store.load_checkpoint("stream", "shard").error() == ErrorCode::store_unavailable);
  CHECK(store.list_checkpoints("stream").error() == ErrorCode::store_unavailable);
  CHECK(server.command({"GET", key}).str == "x");
}

TEST_CASE("redis: the checkpoint script runs again through EVAL after SCRIPT FLUSH") {
  RedisServer& server = shared_server();
  RedisStore store(options_for(server, unique_prefix("checkpoint-noscript")));
  REQUIRE(store.save_checkpoint("stream", "shard", at(sequence(1))) == ErrorCode::ok);
  REQUIRE(server.command({"SCRIPT", "FLUSH"}).str == "OK");
  CHECK(store.save_checkpoint("stream", "shard", at(sequence(2))) == ErrorCode::ok);
  CHECK(store.save_checkpoint("stream", "shard", at(sequence(1))) == ErrorCode::ok);
  CHECK(load(store, "stream", "shard") == at(sequence(2)));
}
