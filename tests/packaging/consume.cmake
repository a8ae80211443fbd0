# packaging.consume.<set> and the .deb test: a project that finds filebuilder
# in PREFIX (CMAKE_PREFIX_PATH, as Conan's CMakeDeps and vcpkg's toolchain
# hand it over) gets exactly the components installed there; asking for one
# that is not fails with a message naming it; test_package/ builds and runs.
#   -DPREFIX=<prefix>  -DCOMPONENTS=core,crypto,...  (the installed ones)
include(${CMAKE_CURRENT_LIST_DIR}/common.cmake)
comma_list(COMPONENTS)
file(REMOVE_RECURSE ${WORK_DIR})
set(probe ${CMAKE_CURRENT_LIST_DIR}/components)
list(JOIN COMPONENTS "," request)

configure(${probe} ${WORK_DIR}/all -DCMAKE_PREFIX_PATH=${PREFIX} -DREQUEST=${request}
          -DEXPECT=${request})
if(NOT run_output MATCHES "filebuilder_DIR=${PREFIX}/")
  message(FATAL_ERROR "filebuilder was not found in ${PREFIX}:\n${run_output}")
endif()

foreach(component IN ITEMS curl redis beast)
  if(component IN_LIST COMPONENTS)
    continue()
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${probe} -B ${WORK_DIR}/${component} -G ${GENERATOR}
                  -DCMAKE_PREFIX_PATH=${PREFIX} -DREQUEST=${component} -DEXPECT=
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  string(REGEX REPLACE "[ \n]+" " " flat "${out}")
  if(rc EQUAL 0 OR NOT flat MATCHES "installed without the component\\(s\\) ${component};")
    message(FATAL_ERROR "find_package(filebuilder COMPONENTS ${component}) did not fail with "
                        "a message naming the component (exit ${rc}):\n${out}")
  endif()
endforeach()

configure(${SOURCE_DIR}/test_package ${WORK_DIR}/test_package -DCMAKE_PREFIX_PATH=${PREFIX}
          "-DCMAKE_CXX_FLAGS=-Wall -Wextra -Wpedantic -Werror")
run(${CMAKE_COMMAND} --build ${WORK_DIR}/test_package)
run(${WORK_DIR}/test_package/test_package)
message(STATUS "${PREFIX}: components ${request}; ${run_output}")
