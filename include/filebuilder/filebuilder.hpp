// filebuilder: the umbrella header. The core and what needs nothing beyond
// simdjson (filebuilder::core). Backends with their own dependencies are
// included on their own: upload/curl.hpp and aws/credentials.hpp
// (filebuilder::curl), digest.hpp, split.hpp, source/kpl.hpp,
// source/handler.hpp and aws/sigv4.hpp (filebuilder::crypto).
#pragma once

#include "filebuilder/base64.hpp"
#include "filebuilder/chunk.hpp"
#include "filebuilder/concepts.hpp"
#include "filebuilder/dead_letter.hpp"
#include "filebuilder/error.hpp"
#include "filebuilder/log.hpp"
#include "filebuilder/reassembler.hpp"
#include "filebuilder/source/firehose.hpp"
#include "filebuilder/source/kinesis.hpp"
#include "filebuilder/source/ndjson.hpp"
#include "filebuilder/store/memory.hpp"
#include "filebuilder/upload/policy.hpp"
#include "filebuilder/version.hpp"
