# Shared by the packaging test scripts (run with `cmake -P`). Each script gets
# -DSOURCE_DIR (the project), -DWORK_DIR (its scratch directory in the build
# tree), -DGENERATOR and -DCXX_COMPILER (those of the build running the tests).
cmake_minimum_required(VERSION 3.25)

# Runs a command; fails the test with its output unless it exits 0. The output
# is returned in `run_output`.
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " command "${ARGN}")
    message(FATAL_ERROR "failed (${rc}): ${command}\n${out}")
  endif()
  set(run_output "${out}" PARENT_SCOPE)
endfunction()

# Configures a CMake project with the generator and compiler under test.
function(configure source build)
  run(${CMAKE_COMMAND} -S ${source} -B ${build} -G ${GENERATOR}
      -DCMAKE_CXX_COMPILER=${CXX_COMPILER} ${ARGN})
  set(run_output "${run_output}" PARENT_SCOPE)
endfunction()

# "a,b,c" -> "a;b;c": lists travel through add_test() comma-separated.
macro(comma_list var)
  string(REPLACE "," ";" ${var} "${${var}}")
endmacro()
