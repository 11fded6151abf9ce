# expect.cmake - run one of the guide's programs (ctest: guide/<name>):
#   cmake -DPROGRAM=<program> -DEXPECTED=<name>.out [-DEMULATOR=<cmd>] -P expect.cmake
# It passes when the program exits with status 0 and prints exactly what
# <name>.out holds on stdout (stderr is free: shown, never compared).
# EMULATOR runs a cross-built program (CMAKE_CROSSCOMPILING_EMULATOR).
execute_process(COMMAND ${EMULATOR} ${PROGRAM}
  RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
file(READ ${EXPECTED} want)
if(NOT err STREQUAL "")
  message("stderr:\n${err}")
endif()
if(NOT status STREQUAL "0")
  message(FATAL_ERROR "${PROGRAM} exited with ${status}; stdout:\n${out}")
endif()
if(NOT out STREQUAL want)
  message(FATAL_ERROR "${PROGRAM} printed:\n${out}\nexpected (${EXPECTED}):\n${want}")
endif()
