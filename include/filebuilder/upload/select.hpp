// filebuilder: the uploader a Config names (--uploader, FILEBUILDER_UPLOADER).
//
// with_uploader(config, policy, fn, on_error, error) builds the uploader and
// calls fn(uploader) with the concrete type, so that the Reassembler is
// instantiated for it (no virtual calls on the hot path), as with_store does
// for stores. "curl" needs filebuilder::curl (FILEBUILDER_HAS_CURL), "beast"
// filebuilder::beast (FILEBUILDER_HAS_BEAST).
#pragma once

#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "filebuilder/config.hpp"
#include "filebuilder/upload/options.hpp"
#include "filebuilder/upload/policy.hpp"
#if defined(FILEBUILDER_HAS_CURL)
#include "filebuilder/upload/curl.hpp"
#endif
#if defined(FILEBUILDER_HAS_BEAST)
#include "filebuilder/upload/beast.hpp"
#endif

namespace filebuilder {

/// The uploaders this build has, for messages and --help: "curl|beast".
[[nodiscard]] inline std::string available_uploaders() {
  std::string names;
#if defined(FILEBUILDER_HAS_CURL)
  names += "curl";
#endif
#if defined(FILEBUILDER_HAS_BEAST)
  if (!names.empty()) names += '|';
  names += "beast";
#endif
  return names;
}

/// Builds the uploader `config.uploader` names with the options the Config
/// asks for, and returns fn(uploader). When it cannot be built (an unknown
/// name, one this build lacks, an unreadable CA file), returns `on_error` and
/// says why in `error`: a configuration error.
template <typename Fn, typename R>
R with_uploader(const Config& config, const EndpointPolicy& policy, Fn&& fn, R on_error,
                std::string& error) {
  const std::string_view name = config.uploader;
  const auto build = [&]<typename U>(std::type_identity<U>) -> R {
    std::optional<U> uploader;
    try {
      uploader.emplace(uploader_options(config, policy));
    } catch (const std::exception& e) {
      error = e.what();
      return on_error;
    }
    return fn(*uploader);
  };
  if (name == "curl") {
#if defined(FILEBUILDER_HAS_CURL)
    return build(std::type_identity<CurlUploader>{});
#endif
  } else if (name == "beast") {
#if defined(FILEBUILDER_HAS_BEAST)
    return build(std::type_identity<BeastUploader>{});
#endif
  } else {
    error = "unknown uploader '" + config.uploader + "' (" + available_uploaders() + ")";
    return on_error;
  }
  error = "uploader '" + config.uploader + "': not in this build (it has " + available_uploaders() +
          ")";
  return on_error;
}

}  // namespace filebuilder
