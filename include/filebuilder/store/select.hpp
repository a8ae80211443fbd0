// filebuilder: the store a URL names, for adapters that choose it at run time.
//
//   memory:                                   MemoryStore (bounded, this process only)
//   file:DIR                                  FileStore (crash-safe, processes on one machine)
//   redis://[:PASSWORD@]HOST:PORT[/DB][?prefix=NAME]   RedisStore (many consumers)
//
// with_store(config, fn, error) builds the store and calls fn(store) with the
// concrete type, so that the Reassembler is instantiated for it (no virtual
// calls on the hot path). Needs filebuilder::crypto, and filebuilder::redis for
// redis:// (which defines FILEBUILDER_HAS_REDIS).
#pragma once

#include <string>
#include <string_view>

#include "filebuilder/config.hpp"
#include "filebuilder/error.hpp"
#include "filebuilder/store/file.hpp"
#include "filebuilder/store/memory.hpp"
#if defined(FILEBUILDER_HAS_REDIS)
#include "filebuilder/store/redis.hpp"
#endif

namespace filebuilder {

/// Builds the store `config.store` names and returns fn(store). When the URL
/// is not usable, returns `on_error` and says why in `error`.
template <typename Fn, typename R = decltype(std::declval<Fn&>()(std::declval<MemoryStore&>()))>
R with_store(const Config& config, Fn&& fn, R on_error, std::string& error) {
  const std::string_view url = config.store;
  const std::chrono::seconds expire_after(config.expire_after_seconds);
  if (url == "memory:" || url == "memory") {
    MemoryStore store(config.memory_store_options());
    return fn(store);
  }
  if (url.starts_with("file:")) {
    FileStoreOptions options;
    options.directory = std::string(url.substr(5));
    options.expire_after = expire_after;
    options.claim_lease = std::chrono::seconds(config.claim_lease_seconds);
    if (options.directory.empty()) {
      error = "store '" + config.store + "': file: needs a directory (file:DIR)";
      return on_error;
    }
    FileStore store(options);
    if (store.open() != ErrorCode::ok) {
      error = "store '" + config.store + "': cannot open the directory";
      return on_error;
    }
    return fn(store);
  }
  if (url.starts_with("redis://") || url.starts_with("rediss://")) {
#if defined(FILEBUILDER_HAS_REDIS)
    std::string why;
    RedisStoreOptions options;
    if (parse_redis_url(url, &why).get(options) != ErrorCode::ok) {
      error = "store '" + config.store + "': " + why;
      return on_error;
    }
    options.expire_after = expire_after;
    options.claim_lease = std::chrono::seconds(config.claim_lease_seconds);
    RedisStore store(options);
    return fn(store);
#else
    error = "store '" + config.store + "': built without Redis support (filebuilder::redis)";
    return on_error;
#endif
  }
  error = "store '" + config.store + "' is not one of memory:, file:DIR, redis://HOST:PORT[/DB]";
  return on_error;
}

}  // namespace filebuilder
