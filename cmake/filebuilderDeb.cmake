# The Debian package: `cpack -G DEB` (or `cpack`) in the build directory writes
# filebuilder_<version>_<arch>.deb with what `cmake --install` installs: the
# headers, the CMake package, the filebuilder CLI and filebuilderd, LICENSE and
# a Debian copyright file.
# Included by the root CMakeLists.txt when filebuilder is the top-level project.

set(FILEBUILDER_DEB_MAINTAINER "filebuilder maintainers <maintainers@filebuilder.invalid>"
    CACHE STRING "The Maintainer field of the .deb")

# /usr/share/doc/<package>/copyright, as Debian policy puts it.
set(FILEBUILDER_COPYRIGHT ${PROJECT_BINARY_DIR}/copyright)
file(WRITE ${FILEBUILDER_COPYRIGHT}
"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: filebuilder

Files: *
Copyright: the filebuilder authors
License: Apache-2.0
 On Debian systems, the full text of the Apache License, Version 2.0 is in
 /usr/share/common-licenses/Apache-2.0, and beside this file as LICENSE.
")
install(FILES ${FILEBUILDER_COPYRIGHT} DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME filebuilder)
set(CPACK_PACKAGE_VENDOR filebuilder)
set(CPACK_PACKAGE_CONTACT "${FILEBUILDER_DEB_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_DESCRIPTION
  "Header-only C++20 library (simdjson, libcurl, OpenSSL, hiredis) and the filebuilder
command-line tool: files streamed as numbered JSON chunk records through Amazon
Kinesis are collected, whatever their order or duplication, and each complete
file is uploaded with an HTTP PUT to the URL it names.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)

# Run-time dependencies of the binaries: computed by dpkg-shlibdeps (dpkg-dev)
# from what they link (libcurl4, libssl3, libhiredis0.14, libsimdjson14, libc6, ...).
# The -dev packages are what a consumer of the headers and CMake files needs.
set(deb_depends libsimdjson-dev libssl-dev libprotozero-dev)
if(FILEBUILDER_WITH_CURL)
  list(APPEND deb_depends "libcurl4-openssl-dev | libcurl-dev")
endif()
if(FILEBUILDER_WITH_REDIS)
  list(APPEND deb_depends libhiredis-dev pkg-config)
endif()
if(FILEBUILDER_WITH_BEAST)
  list(APPEND deb_depends libboost-dev)
endif()
if(TARGET filebuilder_cli)
  find_program(FILEBUILDER_DPKG_SHLIBDEPS dpkg-shlibdeps)
  if(FILEBUILDER_DPKG_SHLIBDEPS)
    set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  else()
    message(WARNING "filebuilder: dpkg-shlibdeps (dpkg-dev) not found: the .deb lists no "
                    "run-time library dependencies of the CLI")
  endif()
else()
  set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE all)  # headers and CMake files only
endif()
list(JOIN deb_depends ", " CPACK_DEBIAN_PACKAGE_DEPENDS)

include(CPack)
