# Script-mode test: install qmoe from its build tree into a scratch prefix, move that tree
# (the package must be relocatable), then configure, build and run the consumer against it. Any failing step fails the test.
file(REMOVE_RECURSE ${QMOE_SCRATCH})
function(run_step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "step failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
endfunction()
run_step(${CMAKE_COMMAND} --install ${QMOE_BINARY_DIR} --prefix ${QMOE_SCRATCH}/prefix)
# Relocatable: move the installed tree before anyone uses it.
file(RENAME ${QMOE_SCRATCH}/prefix ${QMOE_SCRATCH}/moved)
run_step(${CMAKE_COMMAND} -S ${QMOE_CONSUMER_SRC} -B ${QMOE_SCRATCH}/build -G ${QMOE_GENERATOR}
         -DCMAKE_PREFIX_PATH=${QMOE_SCRATCH}/moved -DCMAKE_BUILD_TYPE=Release)
run_step(${CMAKE_COMMAND} --build ${QMOE_SCRATCH}/build)
run_step(${QMOE_SCRATCH}/build/consumer)
message(STATUS "package consumer OK")
