# packaging.subproject: builds and runs test_package/ in a project that pulls
# filebuilder in with FetchContent (add_subdirectory underneath).
include(${CMAKE_CURRENT_LIST_DIR}/common.cmake)
file(REMOVE_RECURSE ${WORK_DIR})
configure(${CMAKE_CURRENT_LIST_DIR}/subproject ${WORK_DIR} -DFILEBUILDER_SOURCE_DIR=${SOURCE_DIR}
          "-DCMAKE_CXX_FLAGS=-Wall -Wextra -Wpedantic -Werror")
run(${CMAKE_COMMAND} --build ${WORK_DIR})
run(${WORK_DIR}/test_package)
message(STATUS "${run_output}")
