# packaging.install.<set>: configures the project with one feature set (the
# option sets Conan's options and vcpkg's features map to) and installs it into
# WORK_DIR/prefix, for the packaging.consume.<set> tests.
#   -DOPTIONS=-DFILEBUILDER_WITH_CURL=OFF,...  -DEXPECT_SKIPPED=<text in the configure output>
include(${CMAKE_CURRENT_LIST_DIR}/common.cmake)
comma_list(OPTIONS)
file(REMOVE_RECURSE ${WORK_DIR})
configure(${SOURCE_DIR} ${WORK_DIR}/build -DCMAKE_INSTALL_PREFIX=${WORK_DIR}/prefix ${OPTIONS})
if(DEFINED EXPECT_SKIPPED AND NOT run_output MATCHES "${EXPECT_SKIPPED}")
  message(FATAL_ERROR "the configure output does not say '${EXPECT_SKIPPED}':\n${run_output}")
endif()
run(${CMAKE_COMMAND} --install ${WORK_DIR}/build)
message(STATUS "installed into ${WORK_DIR}/prefix")
