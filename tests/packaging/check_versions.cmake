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

# ports/filebuilder: vcpkg.json must be valid JSON (string(JSON) fails the
# test otherwise) with the version; its features are exactly the optional
# components, each mapped to its CMake option by the portfile.
file(READ ${SOURCE_DIR}/ports/filebuilder/vcpkg.json manifest)
string(JSON vcpkg_version GET "${manifest}" version)
expect("vcpkg.json version" "${vcpkg_version}" "${version}")
string(JSON vcpkg_name GET "${manifest}" name)
expect("vcpkg.json name" "${vcpkg_name}" "filebuilder")
string(JSON vcpkg_license GET "${manifest}" license)
expect("vcpkg.json license" "${vcpkg_license}" "Apache-2.0")
string(JSON feature_count LENGTH "${manifest}" features)
set(features "")
math(EXPR last "${feature_count} - 1")
foreach(i RANGE ${last})
  string(JSON feature MEMBER "${manifest}" features ${i})
  list(APPEND features ${feature})
endforeach()
string(REGEX MATCHALL "option\\(FILEBUILDER_WITH_[A-Z0-9_]+" options "${root}")
list(TRANSFORM options REPLACE "option\\(FILEBUILDER_WITH_" "")
list(TRANSFORM options TOLOWER)
list(SORT features)
list(SORT options)
expect("vcpkg.json features" "${features}" "${options}")
file(READ ${SOURCE_DIR}/ports/filebuilder/portfile.cmake portfile)
foreach(feature IN LISTS features)
  string(TOUPPER ${feature} upper)
  if(NOT portfile MATCHES "\n[ \t]+${feature}[ \t]+FILEBUILDER_WITH_${upper}\n")
    string(APPEND failures "\n  portfile.cmake: feature ${feature} is not mapped to FILEBUILDER_WITH_${upper}")
  endif()
endforeach()
foreach(call IN ITEMS "set(VCPKG_BUILD_TYPE release)" "vcpkg_cmake_configure(" "vcpkg_cmake_install("
                      "vcpkg_cmake_config_fixup(" "vcpkg_install_copyright(")
  string(FIND "${portfile}" "${call}" at)
  if(at EQUAL -1)
    string(APPEND failures "\n  portfile.cmake: no ${call}")
  endif()
endforeach()

if(failures)
  message(FATAL_ERROR "versions disagree with project(filebuilder VERSION ${version}):${failures}")
endif()
message(STATUS "every version is ${version}")
