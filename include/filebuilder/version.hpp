// filebuilder: the library's version, for consumers of the header-only package.
//
// Checked in, not generated, so that every way of consuming the headers (an
// installed package, add_subdirectory, FetchContent, Conan, vcpkg, or a bare
// include path) sees the same file. project(filebuilder VERSION ...) in the
// root CMakeLists.txt is the single source: the CTest test
// packaging.version_agreement fails when this file, conanfile.py or
// ports/filebuilder/vcpkg.json disagree with it.
#pragma once

#define FILEBUILDER_VERSION_MAJOR 0
#define FILEBUILDER_VERSION_MINOR 1
#define FILEBUILDER_VERSION_PATCH 0
#define FILEBUILDER_VERSION_STRING "0.1.0"

/// One number to compare: MAJOR * 10000 + MINOR * 100 + PATCH.
#define FILEBUILDER_VERSION \
  (FILEBUILDER_VERSION_MAJOR * 10000 + FILEBUILDER_VERSION_MINOR * 100 + FILEBUILDER_VERSION_PATCH)
