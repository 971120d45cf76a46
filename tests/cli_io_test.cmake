# `qmoe quantize` and `qmoe inspect` end to end (docs/files.md). Run by ctest as
#   cmake -DQMOE_CLI=<qmoe> -DQMOE_CPU_TESTS=<qmoe_cpu_tests> -DQMOE_SCRATCH=<dir> -P this
# The float checkpoint comes from the gtest IoCli.WritesTheSampleCheckpointOfTheCliTest.

file(REMOVE_RECURSE ${QMOE_SCRATCH})
file(MAKE_DIRECTORY ${QMOE_SCRATCH})
set(sample ${QMOE_SCRATCH}/sample.safetensors)

# run(<expected rc> <output must match regex> args...): fails the test with the full output.
function(run expect_rc expect_regex)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  string(JOIN " " cmd ${ARGN})
  if(NOT rc STREQUAL expect_rc)
    message(FATAL_ERROR "`${cmd}` returned ${rc}, expected ${expect_rc}\n${out}${err}")
  endif()
  if(NOT "${out}${err}" MATCHES "${expect_regex}")
    message(FATAL_ERROR "`${cmd}` output lacks /${expect_regex}/:\n${out}${err}")
  endif()
  message(STATUS "ok: ${cmd}")
endfunction()

run(0 "--format F" ${QMOE_CLI} quantize --help)
run(0 "qmoe inspect FILE" ${QMOE_CLI} inspect --help)
run(0 "int4:g128" ${QMOE_CLI} inspect --formats)
run(0 "PASSED" ${CMAKE_COMMAND} -E env QMOE_IO_SAMPLE_PATH=${sample} ${QMOE_CPU_TESTS}
    --gtest_filter=IoCli.WritesTheSampleCheckpointOfTheCliTest)

# Every selected float tensor of rank 2/3 becomes a bank; the rest (calib, the rank-1 norm)
# is copied.
run(0 "wrote .*3 bank" ${QMOE_CLI} quantize --in ${sample} --out ${QMOE_SCRATCH}/rtn.safetensors
    --format int4:g32 --tensors "^layers\\.")
run(0 "layers\\.0\\.w13 +4 +\\[64, 128\\] .* int4:g32 x4.*calib +F32 +\\[32, 128\\].*layers\\.0\\.norm +F32"
    ${QMOE_CLI} inspect ${QMOE_SCRATCH}/rtn.safetensors)

# GPTQ with calibration activations on the tensors whose K matches; the rest is copied.
run(0 "wrote .*1 bank" ${QMOE_CLI} quantize --in ${sample} --out ${QMOE_SCRATCH}/gptq.safetensors
    --format int3:g64:sym --method gptq --calib calib --tensors "w13$")
run(0 "int3:g64:sym x4.*layers\\.0\\.w2 +BF16 +\\[4, 128, 64\\].*format = pt"
    ${QMOE_CLI} inspect ${QMOE_SCRATCH}/gptq.safetensors)

# Clear refusals, nothing written.
run(2 "needs calibration" ${QMOE_CLI} quantize --in ${sample} --out ${QMOE_SCRATCH}/x.safetensors
    --format int4:g128 --method gptq)
run(1 "K = 64, the calibration tensor K = 128" ${QMOE_CLI} quantize --in ${sample}
    --out ${QMOE_SCRATCH}/x.safetensors --format int4:g32 --method gptq --calib calib)
run(1 "not divisible by group size" ${QMOE_CLI} quantize --in ${sample}
    --out ${QMOE_SCRATCH}/x.safetensors --format int4:g128)
run(2 "unknown argument" ${QMOE_CLI} quantize --in ${sample} --bogus 1)
run(2 "bad --tensors regex '\\(w13'" ${QMOE_CLI} quantize --in ${sample}
    --out ${QMOE_SCRATCH}/x.safetensors --format int4:g32 --tensors "(w13")
# Copied metadata in a quantized tensor's bank namespace: the output would not load back.
run(1 "would not load back.*stray metadata key 'layers\\.0\\.w13\\.format\\.9'" ${QMOE_CLI}
    quantize --in ${sample}.stray --out ${QMOE_SCRATCH}/x.safetensors --format int4:g32
    --tensors "w13$")
if(EXISTS ${QMOE_SCRATCH}/x.safetensors)
  message(FATAL_ERROR "a failed quantize left ${QMOE_SCRATCH}/x.safetensors behind")
endif()
run(1 "header length" ${QMOE_CLI} inspect ${CMAKE_CURRENT_LIST_FILE})
run(1 "No such file" ${QMOE_CLI} inspect ${QMOE_SCRATCH}/missing.safetensors)
