# filebuilder as a vcpkg overlay port: header-only, so one release build.
#   vcpkg install filebuilder[curl,redis] --overlay-ports=<filebuilder>/ports
# The sources are this checkout (the port lives in the repository it builds).
# For a registry, replace SOURCE_PATH with vcpkg_from_github(OUT_SOURCE_PATH
# SOURCE_PATH REPO <owner>/filebuilder REF "v${VERSION}" SHA512 <sha512>).
set(VCPKG_BUILD_TYPE release)
get_filename_component(SOURCE_PATH "${CURRENT_PORT_DIR}/../.." ABSOLUTE)

# Features -> the CMake options of the components (filebuilder::curl, ::redis, ::beast).
vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
  FEATURES
    curl  FILEBUILDER_WITH_CURL
    redis FILEBUILDER_WITH_REDIS
    beast FILEBUILDER_WITH_BEAST
)

vcpkg_cmake_configure(
  SOURCE_PATH "${SOURCE_PATH}"
  OPTIONS
    ${FEATURE_OPTIONS}
    -DFILEBUILDER_TESTS=OFF
    -DFILEBUILDER_EXAMPLES=OFF
    -DFILEBUILDER_BENCHMARKS=OFF
    -DFILEBUILDER_INSTALL=ON
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(PACKAGE_NAME filebuilder CONFIG_PATH share/filebuilder/cmake)

# The LICENSE and README the project installs as docs: vcpkg wants share/${PORT}/copyright.
file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/share/doc")
file(INSTALL "${CURRENT_PORT_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
