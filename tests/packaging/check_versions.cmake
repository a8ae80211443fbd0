# packaging.version_agreement: project(filebuilder VERSION x.y.z) in the root
# CMakeLists.txt is the single source of the version; every other place that
# states it must agree. Reads the files at test time (not at configure time),
# so an edit is caught without reconfiguring.
#   cmake -DSOURCE_DIR=<root> -DPYTHON3=/usr/bin/python3 -P check_versions.cmake
set(failures "")
macro(expect what actual expected)
  if(NOT "${actual}" STREQUAL "${expected}")
    string(APPEND failures "\n  ${what}: '${actual}', expected '${expected}'")
  endif()
endmacro()

file(READ ${SOURCE_DIR}/CMakeLists.txt root)
if(NOT root MATCHES "project\\(filebuilder[ \t\r\n]+VERSION[ \t\r\n]+([0-9]+)\\.([0-9]+)\\.([0-9]+)[ \t\r\n)]")
  message(FATAL_ERROR "CMakeLists.txt: no project(filebuilder VERSION x.y.z)")
endif()
set(major ${CMAKE_MATCH_1})
set(minor ${CMAKE_MATCH_2})
set(patch ${CMAKE_MATCH_3})
set(version ${major}.${minor}.${patch})

# include/filebuilder/version.hpp
file(READ ${SOURCE_DIR}/include/filebuilder/version.hpp header)
foreach(part IN ITEMS MAJOR MINOR PATCH STRING)
  if(header MATCHES "#define FILEBUILDER_VERSION_${part} ([^\n]+)")
    set(header_${part} ${CMAKE_MATCH_1})
  else()
    set(header_${part} "(missing)")
  endif()
endforeach()
expect("version.hpp FILEBUILDER_VERSION_MAJOR" "${header_MAJOR}" "${major}")
expect("version.hpp FILEBUILDER_VERSION_MINOR" "${header_MINOR}" "${minor}")
expect("version.hpp FILEBUILDER_VERSION_PATCH" "${header_PATCH}" "${patch}")
expect("version.hpp FILEBUILDER_VERSION_STRING" "${header_STRING}" "\"${version}\"")

# conanfile.py reads the version from CMakeLists.txt: run its logic.
execute_process(COMMAND ${PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/check_conan_recipe.py
                        ${SOURCE_DIR} ${version}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  string(APPEND failures "\n  ${out}")
endif()

if(failures)
  message(FATAL_ERROR "versions disagree with project(filebuilder VERSION ${version}):${failures}")
endif()
message(STATUS "every version is ${version}")
