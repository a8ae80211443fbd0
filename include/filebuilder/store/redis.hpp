// filebuilder: RedisStore, a durable StateStore shared by threads and processes
// (component filebuilder::redis: hiredis, found with pkg-config).
//
//   Result<RedisStoreOptions> options = parse_redis_url("redis://:secret@cache:6379/2?prefix=fb:");
//   RedisStore store(options.value_unsafe());
//
// Every step that changes more than one value is one Lua script run on the
// server (EVALSHA of a script loaded with SCRIPT LOAD on connect; EVAL when the
// server answers NOSCRIPT), so consumers in several processes can never both
// upload a file, lose a part, or see half a change. Keys, with H the SHA-256 (hex)
// of the endpoint and P the prefix ("filebuilder:" by default):
//
//   P f:H      hash  endpoint, count (partitionCount), bytes, touched, lease,
//                    owner, pending, failures, retry_at (times: ms since the epoch)
//   P p:H      hash  the parts: field = partition index (decimal), value = bytes;
//                    its HLEN is the number of parts present
//   P d:H      string the done-mark, with a TTL of done_mark_ttl
//   P pending  zset  H scored by retry_at: pending uploads (claim_pending)
//   P touched  zset  H scored by the last put: the age index of expire(now)
//   P done     zset  H scored by the finish time: the age index of done-marks
//   P c:S      hash  the checkpoints of one stream (CheckpointStore), S = SHA-256
//                    (hex) of the stream name: field = shard name (binary-safe),
//                    value = "<shard_end 0|1> <sequence number> <sub-sequence>"
//
// Every key but the checkpoints has a TTL: f and p expire_after past the last
// put (never less than the claim lease while claimed), d done_mark_ttl, the
// indexes as long as their longest member. An abandoned file therefore
// disappears by itself even if nobody calls expire(). expire(now) applies the
// same ages for the given `now` through the two indexes, in bounded batches,
// and removes index entries whose file is gone: with the real clock it mostly
// cleans up after the TTLs.
//
// Checkpoints never expire (a few bytes per shard). A save is one script that
// compares the stored value with the new one as numbers (by length, then
// bytewise: sequence numbers have 56+ digits and sub-sequences 20, beyond
// Lua's doubles) and writes only a greater one, so savers racing end at the
// greatest.
//
// Standalone Redis (or a Sentinel-managed primary) only: the scripts build
// some keys from index members, which Redis Cluster does not allow. Configure
// the server with `maxmemory-policy noeviction` (the default): with an evicting
// policy Redis may drop parts, since every key has a TTL. A full server (OOM)
// makes put_part return store_full; claim, finish and release still work then,
// so complete files can be uploaded and their memory freed.
//
// Times (leases, retry_at, touched) come from options.now, i.e. the consumers'
// clocks, which should agree to well within the claim lease (NTP).
//
// Connection: one connection guarded by a mutex, opened on first use. A command
// that fails on a broken connection reconnects once (connect_timeout) and is
// sent again when that is safe: every script is written so that running it
// twice leaves the same state (a claim carries a token, so a claim that was
// granted before the connection broke is granted again to the same caller; a
// part stored before it broke is reported as a duplicate the second time).
// claim_pending is not retried: files it claimed without our seeing the reply
// come back after the lease. After a failed connect, calls fail at once for
// reconnect_backoff. When Redis cannot be reached, put_part, open_body, finish
// and release return store_unavailable, claim returns ClaimStatus::unavailable,
// claim_pending returns nothing: the record fails, and is never dropped.
// SIGPIPE is blocked in the calling thread during each command, so a server
// that went away is an error, not the end of the process.
//
// open_body reads every part's size in one script call; its reader then fetches
// one part (or a range of a big part) per read_at, holding at most
// read_buffer_bytes: memory follows the part size, not the file size.
//
// Debian's hiredis (0.14) has no TLS: `rediss://` is refused.
#pragma once

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "filebuilder/concepts.hpp"
#include "filebuilder/detail/checkpoint.hpp"
#include "filebuilder/digest.hpp"
#include "filebuilder/error.hpp"

namespace filebuilder {

struct RedisStoreOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string username;                 // Redis 6 ACL user; empty: AUTH with the password only
  std::string password;                 // empty: no AUTH
  unsigned db = 0;                      // SELECT when not 0
  std::string prefix = "filebuilder:";  // every key starts with it, verbatim
  std::chrono::milliseconds connect_timeout{2'000};
  std::chrono::milliseconds command_timeout{5'000};
  /// After a failed connect, calls fail at once (store_unavailable) for this
  /// long instead of waiting for connect_timeout again on every record.
  std::chrono::milliseconds reconnect_backoff{1'000};
  std::chrono::seconds expire_after{86'400};   // unfinished files untouched this long
  std::chrono::seconds done_mark_ttl{86'400};  // how long a finished file is remembered
  std::chrono::seconds claim_lease{300};
  /// A body reader holds at most this many bytes: a whole part when it fits,
  /// else a range of it (read server-side with a script).
  std::size_t read_buffer_bytes = std::size_t{1} << 20;
  Clock::time_point (*now)() = &Clock::now;  // injectable for tests
};

namespace detail::redis {

// Lua helpers shared by every script. extend() sets a key's TTL to `ms`
// unless it already lives longer (never shortens a lease's TTL).
inline constexpr std::string_view prelude = R"lua(
local function extend(key, ms)
  local ttl = redis.call('PTTL', key)
  if ttl == -1 or (ttl >= 0 and ttl < tonumber(ms)) then redis.call('PEXPIRE', key, ms) end
end
)lua";

// put_part. KEYS: f p d touched pending. ARGV: endpoint partition count bytes
// max_file_bytes now file_ttl index_ttl H.
// Returns {status, complete}: 0 stored, 1 duplicate, 2 finished,
// 10 partition_count_conflict, 11 partition_conflict, 12 file_too_large.
// A new part's first write is HSET (refused when the server is out of memory,
// before anything changed); a duplicate's first write is PEXPIRE (never refused).
inline constexpr std::string_view put_script = R"lua(
if redis.call('EXISTS', KEYS[3]) == 1 then return {2, 0} end
local meta = redis.call('HMGET', KEYS[1], 'count', 'bytes', 'pending')
if meta[1] and meta[1] ~= ARGV[3] then return {10, 0} end
if not meta[1] and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('DEL', KEYS[2])  -- parts without their file (cannot happen: same TTLs)
end
local status = 0
local old = redis.call('HGET', KEYS[2], ARGV[2])
if old then
  if old ~= ARGV[4] then return {11, 0} end
  status = 1
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
else
  if tonumber(meta[2] or '0') + string.len(ARGV[4]) > tonumber(ARGV[5]) then return {12, 0} end
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
  if not meta[1] then
    redis.call('HSET', KEYS[1], 'endpoint', ARGV[1], 'count', ARGV[3], 'bytes', 0, 'lease', 0,
               'owner', '', 'pending', 0, 'failures', 0, 'retry_at', 0)
  end
  redis.call('HINCRBY', KEYS[1], 'bytes', string.len(ARGV[4]))
end
redis.call('HSET', KEYS[1], 'touched', ARGV[6])
extend(KEYS[1], ARGV[7])
extend(KEYS[2], ARGV[7])
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[9])
extend(KEYS[4], ARGV[8])
if meta[3] == '1' then extend(KEYS[5], ARGV[8]) end
if redis.call('HLEN', KEYS[2]) == tonumber(ARGV[3]) then return {status, 1} end
return {status, 0}
)lua";

// claim. KEYS: f p d. ARGV: now lease_until token lease_ttl.
// Returns 0 claimed, 1 busy, 2 incomplete, 3 finished. A lease held with the
// caller's own token is granted again (a claim retried after a lost reply).
inline constexpr std::string_view claim_script = R"lua(
if redis.call('EXISTS', KEYS[3]) == 1 then return 3 end
local m = redis.call('HMGET', KEYS[1], 'count', 'lease', 'owner')
if not m[1] or tonumber(m[1]) ~= redis.call('HLEN', KEYS[2]) then return 2 end
if tonumber(m[2]) > tonumber(ARGV[1]) then
  if m[3] == ARGV[3] then return 0 end
  return 1
end
redis.call('HDEL', KEYS[1], 'owner')
redis.call('HSET', KEYS[1], 'lease', ARGV[2], 'owner', ARGV[3])
extend(KEYS[1], ARGV[4])
extend(KEYS[2], ARGV[4])
return 0
)lua";

// open_body. KEYS: f p. Returns the size of every part in order, or nil when
// the file is gone or incomplete.
inline constexpr std::string_view sizes_script = R"lua(
local count = tonumber(redis.call('HGET', KEYS[1], 'count') or '-1')
if count ~= redis.call('HLEN', KEYS[2]) then return false end
local sizes = {}
for i = 0, count - 1 do sizes[i + 1] = redis.call('HSTRLEN', KEYS[2], tostring(i)) end
return sizes
)lua";

// A range of one part. KEYS: p. ARGV: index start length. nil when gone.
inline constexpr std::string_view range_script = R"lua(
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return false end
return string.sub(v, tonumber(ARGV[2]) + 1, tonumber(ARGV[2]) + tonumber(ARGV[3]))
)lua";

// finish. KEYS: f p d pending touched done. ARGV: H now done_ttl.
// The first write (DEL) is never refused for memory, so finish frees memory
// even on a full server.
inline constexpr std::string_view finish_script = R"lua(
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[3])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('ZADD', KEYS[6], ARGV[2], ARGV[1])
extend(KEYS[6], ARGV[3])
return 0
)lua";

// release. KEYS: f pending. ARGV: H retry_at index_ttl. Returns 1 when the
// file is gone. Counts a failure only when the file was claimed, so running it
// twice counts one.
inline constexpr std::string_view release_script = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return 1 end
local lease = redis.call('HGET', KEYS[1], 'lease')
redis.call('HDEL', KEYS[1], 'owner')
if lease and lease ~= '0' then redis.call('HINCRBY', KEYS[1], 'failures', 1) end
redis.call('HSET', KEYS[1], 'lease', 0, 'pending', 1, 'retry_at', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
extend(KEYS[2], ARGV[3])
return 0
)lua";

// claim_pending. KEYS: pending. ARGV: prefix now lease_until token max
// lease_ttl budget. Returns {endpoint, failures, ...}. Each due entry is
// claimed (and rescored to lease_until, so that it comes back if the claimant
// dies), rescored to the lease of whoever holds the file, or removed when its
// file is gone or no longer pending. At most `budget` entries are looked at.
inline constexpr std::string_view claim_pending_script = R"lua(
local out = {}
local want = tonumber(ARGV[5])
local budget = tonumber(ARGV[7])
local now = tonumber(ARGV[2])
local taken = 0
while taken < want and budget > 0 do
  local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0,
                         math.min(want - taken, budget))
  if #ids == 0 then break end
  for _, h in ipairs(ids) do
    budget = budget - 1
    local f = ARGV[1] .. 'f:' .. h
    local m = redis.call('HMGET', f, 'endpoint', 'pending', 'lease', 'failures')
    if not m[1] or m[2] ~= '1' then
      redis.call('ZREM', KEYS[1], h)
    elseif tonumber(m[3]) > now then
      redis.call('ZADD', KEYS[1], m[3], h)
    else
      redis.call('HSET', f, 'lease', ARGV[3], 'owner', ARGV[4])
      redis.call('ZADD', KEYS[1], ARGV[3], h)
      extend(f, ARGV[6])
      extend(ARGV[1] .. 'p:' .. h, ARGV[6])
      taken = taken + 1
      out[#out + 1] = m[1]
      out[#out + 1] = m[4]
    end
  end
end
return out
)lua";

// expire, files. KEYS: touched pending. ARGV: prefix cutoff now batch offset.
// Looks at up to `batch` entries touched before cutoff, skipping `offset`
// (leased files kept by earlier batches). Returns {looked_at, removed, kept}.
inline constexpr std::string_view expire_files_script = R"lua(
local cutoff = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2], 'LIMIT', ARGV[5], ARGV[4])
local removed, kept = 0, 0
for _, h in ipairs(ids) do
  local f = ARGV[1] .. 'f:' .. h
  local m = redis.call('HMGET', f, 'touched', 'lease')
  if not m[1] then
    redis.call('ZREM', KEYS[1], h)
    redis.call('ZREM', KEYS[2], h)
  elseif tonumber(m[2]) > now then
    kept = kept + 1
  elseif tonumber(m[1]) < cutoff then
    redis.call('DEL', f, ARGV[1] .. 'p:' .. h)
    redis.call('ZREM', KEYS[1], h)
    redis.call('ZREM', KEYS[2], h)
    removed = removed + 1
  else
    redis.call('ZADD', KEYS[1], m[1], h)
  end
end
return {#ids, removed, kept}
)lua";

// expire, done-marks. KEYS: done. ARGV: prefix cutoff batch. Returns how many
// entries it looked at.
inline constexpr std::string_view expire_done_script = R"lua(
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2], 'LIMIT', 0, ARGV[3])
for _, h in ipairs(ids) do
  redis.call('DEL', ARGV[1] .. 'd:' .. h)
  redis.call('ZREM', KEYS[1], h)
end
return #ids
)lua";

// save_checkpoint. KEYS: c. ARGV: shard checkpoint (the text above, valid).
// Returns 1 when it was stored, 0 when the stored one is at or past it. A
// stored value that does not parse is replaced.
inline constexpr std::string_view save_checkpoint_script = R"lua(
local function parse(v) return string.match(v, '^([01]) (%d*) (%d+)$') end
local function compare(a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  for i = 1, #a do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y and -1 or 1 end
  end
  return 0
end
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local e0, s0, u0 = parse(old)
  local e1, s1, u1 = parse(ARGV[2])
  if e0 and e1 then
    local order = compare(e1, e0)
    if order == 0 then order = compare(s1, s0) end
    if order == 0 then order = compare(u1, u0) end
    if order <= 0 then return 0 end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
)lua";

enum Script : std::size_t {
  put,
  claim,
  sizes,
  range,
  finish,
  release,
  claim_pending,
  expire_files,
  expire_done,
  save_checkpoint,
  script_count
};

inline constexpr std::string_view scripts[script_count] = {
    put_script,         claim_script,          sizes_script,         range_script,
    finish_script,      release_script,        claim_pending_script, expire_files_script,
    expire_done_script, save_checkpoint_script};

inline const std::string& script_source(Script script) {
  static const std::vector<std::string> sources = [] {
    std::vector<std::string> all;
    for (std::string_view body : scripts) {
      std::string source(prelude);
      source += body;
      all.push_back(std::move(source));
    }
    return all;
  }();
  return sources[script];
}

struct ReplyDeleter {
  void operator()(redisReply* reply) const noexcept { freeReplyObject(reply); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

struct ContextDeleter {
  void operator()(redisContext* context) const noexcept { redisFree(context); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

/// Blocks SIGPIPE in this thread while alive, and discards one raised
/// meanwhile: hiredis writes with write(), and a server that went away must
/// give an error, not kill the process.
class SigpipeGuard {
 public:
  SigpipeGuard() noexcept {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeGuard() {
    if (!was_pending_) {
      sigset_t pending;
      sigemptyset(&pending);
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        const timespec zero{};
        while (sigtimedwait(&pipe_, nullptr, &zero) < 0 && errno == EINTR) {
        }
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t pipe_{};
  sigset_t old_{};
  bool was_pending_ = false;
};

inline timeval to_timeval(std::chrono::milliseconds ms) {
  const long long total = std::max<long long>(ms.count(), 1);
  timeval tv{};
  tv.tv_sec = static_cast<decltype(tv.tv_sec)>(total / 1000);
  tv.tv_usec = static_cast<decltype(tv.tv_usec)>((total % 1000) * 1000);
  return tv;
}

inline std::string ms_text(Clock::time_point time) {
  return std::to_string(
      std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count());
}

template <typename Rep, typename Period>
inline std::string ms_text(std::chrono::duration<Rep, Period> duration) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(duration).count());
}

inline std::string_view reply_text(const redisReply* reply) {
  return reply && reply->str ? std::string_view(reply->str, reply->len) : std::string_view{};
}

/// An integer reply, or a bulk string holding one (HMGET fields).
inline bool reply_integer(const redisReply* reply, long long& out) {
  if (!reply) return false;
  if (reply->type == REDIS_REPLY_INTEGER) {
    out = reply->integer;
    return true;
  }
  if (reply->type != REDIS_REPLY_STRING) return false;
  const std::string_view text = reply_text(reply);
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return error == std::errc{} && end == text.data() + text.size();
}

inline int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// RFC 3986 percent-decoding; false on a malformed escape.
inline bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int high = hex_value(in[i + 1]);
    const int low = hex_value(in[i + 2]);
    if (high < 0 || low < 0) return false;
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return true;
}

template <typename T>
inline bool parse_decimal(std::string_view text, T& out) {
  if (text.empty()) return false;
  for (char c : text)
    if (c < '0' || c > '9') return false;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return error == std::errc{} && end == text.data() + text.size();
}

}  // namespace detail::redis

/// Parses `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?prefix=NAME]` into options
/// (the other fields keep their defaults). HOST is a name, an IPv4 address or
/// [IPv6]; PORT defaults to 6379, DB to 0, the prefix to "filebuilder:" (used
/// verbatim: `?prefix=app:` gives keys `app:f:...`). PASSWORD and NAME may be
/// percent-encoded. On failure returns ErrorCode::invalid_config and, when
/// `why` is given, a one-line reason for a usage message.
[[nodiscard]] inline Result<RedisStoreOptions> parse_redis_url(std::string_view url,
                                                               std::string* why = nullptr) {
  using detail::redis::parse_decimal;
  using detail::redis::percent_decode;
  const auto fail = [&](std::string_view reason) -> Result<RedisStoreOptions> {
    if (why) *why = std::string(reason);
    return ErrorCode::invalid_config;
  };
  const auto starts_with_nocase = [&](std::string_view prefix) {
    if (url.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
      char c = url[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      if (c != prefix[i]) return false;
    }
    return true;
  };
  if (starts_with_nocase("rediss://"))
    return fail("rediss:// (TLS) is not supported: this build's hiredis has no TLS");
  if (!starts_with_nocase("redis://")) return fail("a Redis URL starts with redis://");
  std::string_view rest = url.substr(8);
  if (rest.find('#') != std::string_view::npos) return fail("a Redis URL has no #fragment");

  RedisStoreOptions options;
  const std::size_t authority_end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, authority_end);
  rest = authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);

  if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    const std::size_t colon = userinfo.find(':');
    if (colon == std::string_view::npos)
      return fail("the credentials must be :PASSWORD@ or USER:PASSWORD@");
    if (!percent_decode(userinfo.substr(0, colon), options.username) ||
        !percent_decode(userinfo.substr(colon + 1), options.password))
      return fail("bad percent-encoding in the credentials");
    if (options.password.empty()) return fail("the password is empty");
  }

  std::string_view host;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return fail("unterminated [IPv6] host");
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return fail("unexpected text after the [IPv6] host");
      port = after.substr(1);
      if (port.empty()) return fail("the port is empty");
    }
    if (host.empty()) return fail("the host is empty");
    for (char c : host)
      if (!(detail::redis::hex_value(c) >= 0 || c == ':' || c == '.'))
        return fail("bad character in the [IPv6] host");
  } else {
    const std::size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return fail("the port is empty");
    }
    if (host.empty()) return fail("the host is empty");
    for (char c : host) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '-' || c == '_';
      if (!ok) return fail("bad character in the host");
    }
  }
  options.host = std::string(host);
  if (!port.empty()) {
    unsigned value = 0;
    if (!parse_decimal(port, value) || value == 0 || value > 65535)
      return fail("the port is not a number from 1 to 65535");
    options.port = static_cast<std::uint16_t>(value);
  }

  const std::size_t query_start = rest.find('?');
  std::string_view path = rest.substr(0, query_start);
  std::string_view query =
      query_start == std::string_view::npos ? std::string_view{} : rest.substr(query_start + 1);
  if (!path.empty()) {
    path.remove_prefix(1);  // the '/'
    if (!path.empty()) {
      if (!parse_decimal(path, options.db) || options.db > 1'000'000)
        return fail("the database (after the /) is not a number");
    }
  }
  bool seen_prefix = false;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const std::size_t eq = item.find('=');
    const std::string_view key = item.substr(0, eq);
    if (key != "prefix") return fail("unknown parameter (only ?prefix=NAME)");
    if (seen_prefix) return fail("prefix is given twice");
    seen_prefix = true;
    if (eq == std::string_view::npos || !percent_decode(item.substr(eq + 1), options.prefix))
      return fail("bad prefix");
    if (options.prefix.empty()) return fail("the prefix is empty");
  }
  return options;
}

class RedisStore {
 public:
  explicit RedisStore(RedisStoreOptions options = {})
      : options_(std::move(options)), token_base_(make_token_base()) {}

  RedisStore(const RedisStore&) = delete;
  RedisStore& operator=(const RedisStore&) = delete;

  [[nodiscard]] PutOutcome put_part(const PartInfo& part, std::string_view bytes);
  [[nodiscard]] ClaimStatus claim(std::string_view endpoint);
  /// The reader fetches parts on demand through this store, which must outlive it.
  [[nodiscard]] Result<std::unique_ptr<BodyReader>> open_body(std::string_view endpoint);
  [[nodiscard]] ErrorCode finish(std::string_view endpoint);
  [[nodiscard]] ErrorCode release(std::string_view endpoint, Clock::time_point retry_at);
  [[nodiscard]] std::vector<PendingFile> claim_pending(std::size_t max, Clock::time_point now);
  /// Drops files untouched for expire_after before `now` (unless leased) and
  /// done-marks older than done_mark_ttl; returns the files dropped. Redis's
  /// own TTLs do the same with the real clock, so this is mostly index upkeep.
  std::size_t expire(Clock::time_point now);

  // CheckpointStore (concepts.hpp): one hash per stream, P c:<sha256 of stream>.
  [[nodiscard]] Result<std::optional<Checkpoint>> load_checkpoint(std::string_view stream,
                                                                  std::string_view shard);
  [[nodiscard]] ErrorCode save_checkpoint(std::string_view stream, std::string_view shard,
                                          const Checkpoint& checkpoint);
  [[nodiscard]] Result<std::vector<ShardCheckpoint>> list_checkpoints(std::string_view stream);

  /// Connects if needed and sends PING: ok, or store_unavailable (see last_error()).
  [[nodiscard]] ErrorCode ping();
  /// Why the last failed call failed (connection or server error), for logs.
  [[nodiscard]] std::string last_error() const;
  [[nodiscard]] const RedisStoreOptions& options() const noexcept { return options_; }

 private:
  class Body;
  using Script = detail::redis::Script;
  using ReplyPtr = detail::redis::ReplyPtr;

  struct Keys {
    std::string hash;  // SHA-256 hex of the endpoint
    std::string file, parts, done;
  };
  struct Reply {
    ErrorCode error = ErrorCode::ok;
    ReplyPtr reply;
  };

  static constexpr std::size_t expire_batch = 500;

  static std::string make_token_base() {
    std::random_device random;
    return std::to_string(random()) + '-' + std::to_string(random()) + '-';
  }
  std::string next_token() { return token_base_ + std::to_string(token_counter_++); }

  Keys keys(std::string_view endpoint) const {
    Keys k;
    k.hash = sha256_hex(endpoint);
    k.file = options_.prefix + "f:" + k.hash;
    k.parts = options_.prefix + "p:" + k.hash;
    k.done = options_.prefix + "d:" + k.hash;
    return k;
  }
  std::string key(std::string_view name) const { return options_.prefix + std::string(name); }
  std::string checkpoint_key(std::string_view stream) const {
    return options_.prefix + "c:" + sha256_hex(stream);
  }
  std::string file_ttl() const { return detail::redis::ms_text(options_.expire_after); }
  std::string lease_ttl() const {
    return detail::redis::ms_text(options_.claim_lease + std::chrono::seconds(60));
  }
  std::string index_ttl() const {
    return detail::redis::ms_text(options_.expire_after + options_.claim_lease +
                                  std::chrono::seconds(60));
  }

  bool connect_locked();
  void disconnect_locked() noexcept { context_.reset(); }
  /// One command on the current connection; null when the connection broke.
  ReplyPtr send_locked(std::span<const std::string_view> args);
  /// A command with reconnect-once; error replies become store_full (OOM) or
  /// store_unavailable.
  Reply call_locked(std::span<const std::string_view> args, bool idempotent);
  Reply script_locked(Script script, std::span<const std::string_view> keys,
                      std::span<const std::string_view> args, bool idempotent);
  /// One command under the mutex, sent again after a reconnect (idempotent).
  Reply call(std::span<const std::string_view> args) {
    std::lock_guard lock(mutex_);
    return call_locked(args, true);
  }
  Reply script(Script script, std::span<const std::string_view> keys,
               std::span<const std::string_view> args, bool idempotent = true) {
    std::lock_guard lock(mutex_);
    return script_locked(script, keys, args, idempotent);
  }
  /// Reads part `index` (whole, or [start, start + length) of it) into out.
  ErrorCode read_part(const std::string& parts_key, std::uint64_t index, std::uint64_t start,
                      std::uint64_t length, bool whole, std::string& out);

  RedisStoreOptions options_;
  const std::string token_base_;
  mutable std::mutex mutex_;
  detail::redis::ContextPtr context_;
  std::string shas_[detail::redis::script_count];
  std::chrono::steady_clock::time_point connect_failed_at_{};
  bool connect_failed_ = false;
  std::string last_error_;
  std::atomic<std::uint64_t> token_counter_{0};
  std::vector<const char*> argv_;  // reused per command (under mutex_)
  std::vector<std::size_t> argvlen_;
};

// ---------------------------------------------------------------------------

/// Streams a file's parts from Redis: the part sizes come from one script call
/// at open; each read_at fetches at most one part (or, for a part larger than
/// read_buffer_bytes, one range of it) into a buffer it reuses, so memory is
/// bounded by read_buffer_bytes whatever the file size. Sequential reads fetch
/// each part once; a read of a file dropped meanwhile gives store_unavailable.
class RedisStore::Body final : public BodyReader {
 public:
  Body(RedisStore& store, std::string parts_key, std::vector<std::uint64_t> sizes)
      : store_(store), parts_key_(std::move(parts_key)) {
    offsets_.reserve(sizes.size() + 1);
    offsets_.push_back(0);
    for (std::uint64_t size : sizes) offsets_.push_back(offsets_.back() + size);
  }
  [[nodiscard]] std::uint64_t size() const noexcept override { return offsets_.back(); }

  [[nodiscard]] Result<std::size_t> read_at(std::uint64_t offset, std::span<char> dst) override {
    std::size_t copied = 0;
    bool fetched = false;
    while (copied < dst.size() && offset + copied < size()) {
      const std::uint64_t position = offset + copied;
      if (!(buffer_begin_ <= position && position < buffer_begin_ + buffer_.size())) {
        if (fetched) break;  // at most one fetch per call
        FILEBUILDER_TRY(fetch(position));
        fetched = true;
      }
      const std::uint64_t within = position - buffer_begin_;
      const std::size_t n = static_cast<std::size_t>(
          std::min<std::uint64_t>(dst.size() - copied, buffer_.size() - within));
      std::memcpy(dst.data() + copied, buffer_.data() + within, n);
      copied += n;
    }
    return copied;
  }

 private:
  ErrorCode fetch(std::uint64_t position) {
    // The non-empty part holding `position`: the last start <= position.
    const std::size_t index = static_cast<std::size_t>(
        std::upper_bound(offsets_.begin(), offsets_.end(), position) - offsets_.begin() - 1);
    const std::uint64_t part_begin = offsets_[index];
    const std::uint64_t part_size = offsets_[index + 1] - part_begin;
    const std::uint64_t limit = std::max<std::uint64_t>(store_.options_.read_buffer_bytes, 1);
    const bool whole = part_size <= limit;
    const std::uint64_t start = whole ? 0 : position - part_begin;
    const std::uint64_t length = whole ? part_size : std::min(limit, part_size - start);
    buffer_.clear();
    buffer_begin_ = 0;
    if (const ErrorCode error = store_.read_part(parts_key_, index, start, length, whole, buffer_);
        error != ErrorCode::ok) {
      buffer_.clear();
      return error;
    }
    buffer_begin_ = part_begin + start;
    return ErrorCode::ok;
  }

  RedisStore& store_;
  std::string parts_key_;
  std::vector<std::uint64_t> offsets_;  // offsets_[i]: where part i starts; back(): the size
  std::string buffer_;                  // bytes [buffer_begin_, buffer_begin_ + size)
  std::uint64_t buffer_begin_ = 0;
};

// ---------------------------------------------------------------------------

inline bool RedisStore::connect_locked() {
  using namespace detail::redis;
  const auto now = std::chrono::steady_clock::now();
  if (connect_failed_ && now - connect_failed_at_ < options_.reconnect_backoff) return false;
  const auto failed = [&](std::string why) {
    last_error_ = std::move(why);
    context_.reset();
    connect_failed_ = true;
    connect_failed_at_ = std::chrono::steady_clock::now();
    return false;
  };
  context_.reset(redisConnectWithTimeout(options_.host.c_str(), options_.port,
                                         to_timeval(options_.connect_timeout)));
  if (!context_) return failed("redis: cannot allocate a connection");
  if (context_->err != 0)
    return failed("redis: connect to " + options_.host + ":" + std::to_string(options_.port) +
                  ": " + context_->errstr);
  if (redisSetTimeout(context_.get(), to_timeval(options_.command_timeout)) != REDIS_OK ||
      redisEnableKeepAlive(context_.get()) != REDIS_OK)
    return failed(std::string("redis: socket options: ") + context_->errstr);

  const auto setup = [&](std::span<const std::string_view> args) -> ReplyPtr {
    ReplyPtr reply = send_locked(args);
    if (!reply) {
      failed(std::string("redis: ") + (context_ ? context_->errstr : "connection lost"));
      return nullptr;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
      failed("redis: " + std::string(args[0]) + ": " + std::string(reply_text(reply.get())));
      return nullptr;
    }
    return reply;
  };
  if (!options_.password.empty()) {
    std::vector<std::string_view> auth{"AUTH"};
    if (!options_.username.empty()) auth.push_back(options_.username);
    auth.push_back(options_.password);
    if (!setup(auth)) return false;
  }
  if (options_.db != 0) {
    const std::string db = std::to_string(options_.db);
    const std::string_view select[] = {"SELECT", db};
    if (!setup(select)) return false;
  }
  for (std::size_t i = 0; i < script_count; ++i) {
    const std::string_view load[] = {"SCRIPT", "LOAD", script_source(static_cast<Script>(i))};
    ReplyPtr reply = setup(load);
    if (!reply) return false;
    if (reply->type != REDIS_REPLY_STRING) return failed("redis: SCRIPT LOAD: unexpected reply");
    if (shas_[i] != reply_text(reply.get())) shas_[i] = std::string(reply_text(reply.get()));
  }
  connect_failed_ = false;
  return true;
}

inline RedisStore::ReplyPtr RedisStore::send_locked(std::span<const std::string_view> args) {
  argv_.clear();
  argvlen_.clear();
  for (std::string_view arg : args) {
    argv_.push_back(arg.data());
    argvlen_.push_back(arg.size());
  }
  detail::redis::SigpipeGuard guard;
  void* reply = redisCommandArgv(context_.get(), static_cast<int>(argv_.size()), argv_.data(),
                                 argvlen_.data());
  if (reply == nullptr || context_->err != 0) {
    if (reply) freeReplyObject(reply);
    return nullptr;
  }
  return ReplyPtr(static_cast<redisReply*>(reply));
}

inline RedisStore::Reply RedisStore::call_locked(std::span<const std::string_view> args,
                                                 bool idempotent) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool fresh = !context_;
    if (fresh && !connect_locked()) return {ErrorCode::store_unavailable, nullptr};
    ReplyPtr reply = send_locked(args);
    if (reply) {
      if (reply->type != REDIS_REPLY_ERROR) return {ErrorCode::ok, std::move(reply)};
      const std::string_view text = detail::redis::reply_text(reply.get());
      last_error_ = "redis: " + std::string(text);
      // A full server (maxmemory with noeviction) refuses writes with OOM.
      const bool full = text.substr(0, 4) == "OOM " ||
                        text.find("OOM command not allowed") != std::string_view::npos;
      return {full ? ErrorCode::store_full : ErrorCode::store_unavailable, std::move(reply)};
    }
    last_error_ = std::string("redis: ") + (context_->errstr[0] ? context_->errstr : "I/O error");
    disconnect_locked();
    // A connection that broke under a command may have run it: send it again
    // only when running it twice is harmless, and only on a connection that
    // was already open (a new one failing at once is not a stale socket).
    if (fresh || !idempotent) break;
  }
  return {ErrorCode::store_unavailable, nullptr};
}

inline RedisStore::Reply RedisStore::script_locked(Script script,
                                                   std::span<const std::string_view> keys,
                                                   std::span<const std::string_view> args,
                                                   bool idempotent) {
  // The SHA is known after the first connect; connect first if needed.
  if (!context_ && !connect_locked()) return {ErrorCode::store_unavailable, nullptr};
  // A copy: a reconnect inside call_locked assigns shas_ again.
  const std::string sha = shas_[script];
  const std::string numkeys = std::to_string(keys.size());
  std::vector<std::string_view> command;
  command.reserve(3 + keys.size() + args.size());
  command.push_back("EVALSHA");
  command.push_back(sha);
  command.push_back(numkeys);
  command.insert(command.end(), keys.begin(), keys.end());
  command.insert(command.end(), args.begin(), args.end());
  Reply reply = call_locked(command, idempotent);
  if (reply.reply && reply.reply->type == REDIS_REPLY_ERROR &&
      detail::redis::reply_text(reply.reply.get()).substr(0, 8) == "NOSCRIPT") {
    // Flushed from the server's cache (SCRIPT FLUSH): EVAL caches it again.
    command[0] = "EVAL";
    command[1] = detail::redis::script_source(script);
    reply = call_locked(command, idempotent);
  }
  return reply;
}

inline PutOutcome RedisStore::put_part(const PartInfo& part, std::string_view bytes) {
  const Keys k = keys(part.endpoint);
  const std::string touched = key("touched"), pending = key("pending");
  const std::string partition = std::to_string(part.partition);
  const std::string count = std::to_string(part.partition_count);
  const std::string max_bytes = std::to_string(part.max_file_bytes);
  const std::string now = detail::redis::ms_text(options_.now());
  const std::string ttl = file_ttl(), index = index_ttl();
  const std::string_view key_list[] = {k.file, k.parts, k.done, touched, pending};
  const std::string_view args[] = {part.endpoint, partition, count, bytes, max_bytes,
                                   now,           ttl,       index, k.hash};
  const Reply reply = script(Script::put, key_list, args);
  if (reply.error != ErrorCode::ok) return {reply.error};
  const redisReply* r = reply.reply.get();
  long long status = -1, complete = 0;
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
      !detail::redis::reply_integer(r->element[0], status) ||
      !detail::redis::reply_integer(r->element[1], complete))
    return {ErrorCode::store_unavailable};
  switch (status) {
    case 0: return {ErrorCode::ok, PutStatus::stored, complete == 1};
    case 1: return {ErrorCode::ok, PutStatus::duplicate, complete == 1};
    case 2: return {ErrorCode::ok, PutStatus::finished, false};
    case 10: return {ErrorCode::partition_count_conflict};
    case 11: return {ErrorCode::partition_conflict};
    case 12: return {ErrorCode::file_too_large};
    default: return {ErrorCode::store_unavailable};
  }
}

inline ClaimStatus RedisStore::claim(std::string_view endpoint) {
  const Keys k = keys(endpoint);
  const Clock::time_point now = options_.now();
  const std::string now_ms = detail::redis::ms_text(now);
  const std::string lease_until = detail::redis::ms_text(now + options_.claim_lease);
  const std::string token = next_token(), ttl = lease_ttl();
  const std::string_view key_list[] = {k.file, k.parts, k.done};
  const std::string_view args[] = {now_ms, lease_until, token, ttl};
  const Reply reply = script(Script::claim, key_list, args);
  long long status = -1;
  if (reply.error != ErrorCode::ok || !detail::redis::reply_integer(reply.reply.get(), status))
    return ClaimStatus::unavailable;
  switch (status) {
    case 0: return ClaimStatus::claimed;
    case 1: return ClaimStatus::busy;
    case 2: return ClaimStatus::incomplete;
    case 3: return ClaimStatus::finished;
    default: return ClaimStatus::unavailable;
  }
}

inline Result<std::unique_ptr<BodyReader>> RedisStore::open_body(std::string_view endpoint) {
  const Keys k = keys(endpoint);
  const std::string_view key_list[] = {k.file, k.parts};
  const Reply reply = script(Script::sizes, key_list, {});
  if (reply.error != ErrorCode::ok) return reply.error;
  const redisReply* r = reply.reply.get();
  if (r->type != REDIS_REPLY_ARRAY) return ErrorCode::store_unavailable;  // gone or incomplete
  std::vector<std::uint64_t> sizes;
  sizes.reserve(r->elements);
  for (std::size_t i = 0; i < r->elements; ++i) {
    long long size = 0;
    if (!detail::redis::reply_integer(r->element[i], size) || size < 0)
      return ErrorCode::store_unavailable;
    sizes.push_back(static_cast<std::uint64_t>(size));
  }
  return std::unique_ptr<BodyReader>(std::make_unique<Body>(*this, k.parts, std::move(sizes)));
}

inline ErrorCode RedisStore::read_part(const std::string& parts_key, std::uint64_t index,
                                       std::uint64_t start, std::uint64_t length, bool whole,
                                       std::string& out) {
  const std::string field = std::to_string(index);
  std::lock_guard lock(mutex_);
  Reply reply;
  if (whole) {
    const std::string_view command[] = {"HGET", parts_key, field};
    reply = call_locked(command, true);
  } else {
    const std::string from = std::to_string(start), count = std::to_string(length);
    const std::string_view key_list[] = {parts_key};
    const std::string_view args[] = {field, from, count};
    reply = script_locked(Script::range, key_list, args, true);
  }
  if (reply.error != ErrorCode::ok) return reply.error;
  const redisReply* r = reply.reply.get();
  // Gone (finished or expired meanwhile), or not the bytes measured at open.
  if (r->type != REDIS_REPLY_STRING || r->len != length) {
    last_error_ = "redis: part " + field + " of " + parts_key + " is gone or changed";
    return ErrorCode::store_unavailable;
  }
  out.assign(r->str, r->len);
  return ErrorCode::ok;
}

inline ErrorCode RedisStore::finish(std::string_view endpoint) {
  const Keys k = keys(endpoint);
  const std::string pending = key("pending"), touched = key("touched"), done = key("done");
  const std::string now = detail::redis::ms_text(options_.now());
  const std::string ttl = detail::redis::ms_text(options_.done_mark_ttl);
  const std::string_view key_list[] = {k.file, k.parts, k.done, pending, touched, done};
  const std::string_view args[] = {k.hash, now, ttl};
  return script(Script::finish, key_list, args).error;
}

inline ErrorCode RedisStore::release(std::string_view endpoint, Clock::time_point retry_at) {
  const Keys k = keys(endpoint);
  const std::string pending = key("pending");
  const std::string when = detail::redis::ms_text(retry_at), index = index_ttl();
  const std::string_view key_list[] = {k.file, pending};
  const std::string_view args[] = {k.hash, when, index};
  const Reply reply = script(Script::release, key_list, args);
  if (reply.error != ErrorCode::ok) return reply.error;
  long long status = -1;
  if (!detail::redis::reply_integer(reply.reply.get(), status) || status != 0)
    return ErrorCode::store_unavailable;  // the file is gone
  return ErrorCode::ok;
}

inline std::vector<PendingFile> RedisStore::claim_pending(std::size_t max, Clock::time_point now) {
  std::vector<PendingFile> claimed;
  if (max == 0) return claimed;
  const std::string pending = key("pending");
  const std::string now_ms = detail::redis::ms_text(now);
  const std::string lease_until = detail::redis::ms_text(now + options_.claim_lease);
  const std::string token = next_token(), want = std::to_string(max), ttl = lease_ttl();
  const std::string budget = std::to_string(std::max<std::size_t>(4 * max, 100));
  const std::string_view key_list[] = {pending};
  const std::string_view args[] = {options_.prefix, now_ms, lease_until, token, want, ttl, budget};
  const Reply reply = script(Script::claim_pending, key_list, args, /*idempotent=*/false);
  if (reply.error != ErrorCode::ok || reply.reply->type != REDIS_REPLY_ARRAY) return claimed;
  const redisReply* r = reply.reply.get();
  for (std::size_t i = 0; i + 1 < r->elements; i += 2) {
    long long failures = 0;
    (void)detail::redis::reply_integer(r->element[i + 1], failures);
    claimed.push_back(PendingFile{std::string(detail::redis::reply_text(r->element[i])),
                                  static_cast<unsigned>(std::max<long long>(failures, 0))});
  }
  return claimed;
}

inline std::size_t RedisStore::expire(Clock::time_point now) {
  const std::string prefix = options_.prefix;
  const std::string touched = key("touched"), pending = key("pending"), done = key("done");
  const std::string now_ms = detail::redis::ms_text(now);
  const std::string cutoff = detail::redis::ms_text(now - options_.expire_after);
  const std::string done_cutoff = detail::redis::ms_text(now - options_.done_mark_ttl);
  const std::string batch = std::to_string(expire_batch);
  std::size_t removed = 0;
  std::size_t offset = 0;
  while (true) {
    const std::string skip = std::to_string(offset);
    const std::string_view key_list[] = {touched, pending};
    const std::string_view args[] = {prefix, cutoff, now_ms, batch, skip};
    const Reply reply = script(Script::expire_files, key_list, args);
    long long seen = 0, dropped = 0, kept = 0;
    if (reply.error != ErrorCode::ok || reply.reply->type != REDIS_REPLY_ARRAY ||
        reply.reply->elements != 3 ||
        !detail::redis::reply_integer(reply.reply->element[0], seen) ||
        !detail::redis::reply_integer(reply.reply->element[1], dropped) ||
        !detail::redis::reply_integer(reply.reply->element[2], kept))
      return removed;
    removed += static_cast<std::size_t>(dropped);
    offset += static_cast<std::size_t>(kept);
    if (static_cast<std::size_t>(seen) < expire_batch) break;
  }
  while (true) {
    const std::string_view key_list[] = {done};
    const std::string_view args[] = {prefix, done_cutoff, batch};
    const Reply reply = script(Script::expire_done, key_list, args);
    long long seen = 0;
    if (reply.error != ErrorCode::ok || !detail::redis::reply_integer(reply.reply.get(), seen) ||
        static_cast<std::size_t>(seen) < expire_batch)
      break;
  }
  return removed;
}

inline Result<std::optional<Checkpoint>> RedisStore::load_checkpoint(std::string_view stream,
                                                                     std::string_view shard) {
  FILEBUILDER_TRY(check_checkpoint_names(stream, shard));
  const std::string key = checkpoint_key(stream);
  const std::string_view command[] = {"HGET", key, shard};
  const Reply reply = call(command);
  if (reply.error != ErrorCode::ok) return reply.error;
  if (reply.reply->type == REDIS_REPLY_NIL) return std::optional<Checkpoint>{};
  Checkpoint checkpoint;
  if (reply.reply->type != REDIS_REPLY_STRING ||
      !detail::parse_checkpoint(detail::redis::reply_text(reply.reply.get()), checkpoint))
    return ErrorCode::store_unavailable;  // not a checkpoint: never guessed
  return std::optional<Checkpoint>{std::move(checkpoint)};
}

inline ErrorCode RedisStore::save_checkpoint(std::string_view stream, std::string_view shard,
                                             const Checkpoint& checkpoint) {
  FILEBUILDER_TRY(check_checkpoint(stream, shard, checkpoint));
  const std::string key = checkpoint_key(stream);
  const std::string value = detail::format_checkpoint(checkpoint);
  const std::string_view key_list[] = {key};
  const std::string_view args[] = {shard, value};
  const Reply reply = script(Script::save_checkpoint, key_list, args);
  long long stored = -1;
  if (reply.error != ErrorCode::ok) return reply.error;
  if (!detail::redis::reply_integer(reply.reply.get(), stored) || (stored != 0 && stored != 1))
    return ErrorCode::store_unavailable;
  return ErrorCode::ok;
}

inline Result<std::vector<ShardCheckpoint>> RedisStore::list_checkpoints(std::string_view stream) {
  FILEBUILDER_TRY(check_checkpoint_name(stream));
  const std::string key = checkpoint_key(stream);
  const std::string_view command[] = {"HGETALL", key};
  const Reply reply = call(command);
  if (reply.error != ErrorCode::ok) return reply.error;
  const redisReply* r = reply.reply.get();
  if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0) return ErrorCode::store_unavailable;
  std::vector<ShardCheckpoint> out;
  out.reserve(r->elements / 2);
  for (std::size_t i = 0; i < r->elements; i += 2) {
    Checkpoint checkpoint;
    if (r->element[i]->type != REDIS_REPLY_STRING ||
        r->element[i + 1]->type != REDIS_REPLY_STRING ||
        !detail::parse_checkpoint(detail::redis::reply_text(r->element[i + 1]), checkpoint))
      return ErrorCode::store_unavailable;
    out.emplace_back(std::string(detail::redis::reply_text(r->element[i])), std::move(checkpoint));
  }
  detail::sort_by_shard(out);
  return out;
}

inline ErrorCode RedisStore::ping() {
  const std::string_view command[] = {"PING"};
  return call(command).error;
}

inline std::string RedisStore::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

static_assert(StateStore<RedisStore>);
static_assert(CheckpointStore<RedisStore>);

}  // namespace filebuilder
