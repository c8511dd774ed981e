# Runs PROGRAM and fails unless its standard output begins with the contents of EXPECTED.
#   cmake -DPROGRAM=... -DEXPECTED=... -P starts_with_file.cmake
execute_process(COMMAND ${PROGRAM} OUTPUT_VARIABLE output RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} exited with ${status}")
endif()
file(READ ${EXPECTED} expected)
string(LENGTH "${expected}" length)
string(SUBSTRING "${output}" 0 ${length} head)
if(NOT head STREQUAL expected)
  file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/actual_output.txt "${output}")
  message(FATAL_ERROR "the output of ${PROGRAM} differs from ${EXPECTED}: see ${CMAKE_CURRENT_BINARY_DIR}/actual_output.txt")
endif()
message(STATUS "output begins with ${EXPECTED}, character for character")
