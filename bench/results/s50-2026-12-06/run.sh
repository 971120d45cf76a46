#!/usr/bin/env bash
# Session 50's device calls (H100), session 49's prepared calls on session 49's last commit
# (772c1f5). Binaries travel packed in the ignored .carry/z (carry limit 64 MiB), built in
# build-gpu (gpu preset: sm_90a SASS + compute_80 PTX, Release, QMOE_BUILD_TESTS=ON):
#   s50a.txz = t50a/{qmoe, qmoe_gpu_tests, libqmoe_c.so.1} (strip, tar, xz -9: ~54 MB).
#   device: bash bench/results/s50-2026-12-06/run.sh all     # carry [".carry/z/s50a.txz"]
#           bash bench/results/s50-2026-12-06/run.sh rules   # the same, on the warm machine
# all: every GPU test on sm_90a, the changed tests on the compute_80 PTX, memcheck of the
#   changed tests, racecheck of the first-offset test, the demo (logs: all/). Its PTX step hit
#   its 200 s step limit inside the first test; the same filter ran again alone (ptx80/):
#     CUDA_FORCE_PTX_JIT=1 timeout 500 .carry/t50a/qmoe_gpu_tests \
#       --gtest_filter='*Tail*:*FirstOffset*:*RejectsBad*'
# rules: kAuto's decode rules (fitted on an H200 in sessions 23-31) against forced settings on
#   the H100, one binary: scripts/gpu_ab.sh with wrappers that add an option (imma_on:
#   --integer-decode on, imma_off: --integer-decode off) against plain kAuto (auto), 2 rounds, the
#   decode rows (T = 1, 4, 16) of the five shapes in int2/3/4/8 g128 and mixed:rr (rules/); then
#   the decode kernel forced (dec: --kernel decode; dec_on: and --integer-decode on) against
#   kAuto on the middle rows (Mixtral and Qwen3 at T = 64 and 256; rules/middle/).
# check, core, min, sanit: as in session 49's run.sh (not run this session).
set -u
phase=${1:?check|sanit|rules|all|core|min}
export CUDA_CACHE_MAXSIZE=4294967296
[[ -x .carry/t50a/qmoe ]] || tar xJf .carry/z/s50a.txz -C .carry
export QMOE_BIN=.carry/t50a
export LD_LIBRARY_PATH=$PWD/.carry/t50a${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
case $phase in
  check)
    QMOE_COMMIT=s50a bash scripts/gpu_check.sh --ptx-filter "" --sanitizers "" --step-timeout 300 \
      | tail -30 ;;
  all)
    # check and sanit's tests in one call (machines were scarce): every GPU test on sm_90a, the
    # changed tests on the compute_80 PTX, memcheck of the changed tests, racecheck of the
    # first-offset test, the demo.
    QMOE_COMMIT=s50a bash scripts/gpu_check.sh --skip-bench --step-timeout 200 \
      --ptx-filter '*Tail*:*FirstOffset*:*RejectsBad*' --sanitizers memcheck \
      --sanitize-filter '*Tail*:*FirstOffset*:*RejectsBad*' | tail -25
    timeout 150 compute-sanitizer --tool racecheck --error-exitcode 3 .carry/t50a/qmoe_gpu_tests \
      --gtest_filter='*FirstOffset*' >"$OUT/racecheck.log" 2>&1
    echo "racecheck rc=$?"; grep -E "RACECHECK SUMMARY|PASSED|FAILED" "$OUT/racecheck.log" | head -4 ;;
  core)
    # What the change touches, where device time ran short: the tail, tile, gated, first-offset
    # and bad-argument tests on sm_90a; memcheck of the first-offset and bad-argument tests.
    QMOE_COMMIT=s50a bash scripts/gpu_check.sh --skip-bench --skip-demo --step-timeout 200 \
      --tests-filter '*Tail*:*Tile*:*Gated*:*FirstOffset*:*RejectsBad*:Wgmma*' --ptx-filter "" \
      --sanitizers memcheck --sanitize-filter '*FirstOffset*:*RejectsBad*' | tail -25 ;;
  min)
    # The changed GPU tests alone on sm_90a (device time nearly spent), then memcheck of the
    # first-offset test if time is left.
    timeout 150 .carry/t50a/qmoe_gpu_tests \
      --gtest_filter='*Tail*:*Gated*:*FirstOffset*:*RejectsBad*:Wgmma*' >"$OUT/tests_min.log" 2>&1
    echo "tests rc=$?"; grep -E "^\[  (PASSED|FAILED) |^\[  FAILED|tests? ran" "$OUT/tests_min.log" | head -12
    timeout 90 compute-sanitizer --tool memcheck --error-exitcode 3 .carry/t50a/qmoe_gpu_tests \
      --gtest_filter='*FirstOffset*' >"$OUT/memcheck_min.log" 2>&1
    echo "memcheck rc=$?"; grep -E "ERROR SUMMARY|PASSED|FAILED" "$OUT/memcheck_min.log" | head -4 ;;
  rules)
    for w in "auto:" "imma_on:--integer-decode on" "imma_off:--integer-decode off" \
      "dec:--kernel decode" "dec_on:--kernel decode --integer-decode on"; do
      mkdir -p ".carry/${w%%:*}"
      printf '#!/usr/bin/env bash\nexec %s/.carry/t50a/qmoe "$1" %s "${@:2}"\n' "$PWD" "${w#*:}" \
        >".carry/${w%%:*}/qmoe"
      chmod +x ".carry/${w%%:*}/qmoe"
    done
    bash scripts/gpu_ab.sh 2 "--shapes all --tokens 1,4,16 --formats int2:g128,int3:g128,int4:g128,int8:g128,mixed:rr --reps 20" \
      .carry/auto/qmoe .carry/imma_on/qmoe .carry/imma_off/qmoe 2>&1 | tail -8
    mv "$OUT/ab" "$OUT/rules"
    bash scripts/gpu_ab.sh 2 "--shapes mixtral-8x7b,qwen3-30b-a3b --tokens 64,256 --formats int2:g128,int3:g128,int4:g128,int8:g128,mixed:rr --reps 20" \
      .carry/auto/qmoe .carry/dec/qmoe .carry/dec_on/qmoe 2>&1 | tail -8
    mv "$OUT/ab" "$OUT/rules/middle"; rm -f "$OUT/ab.tgz"
    tar czf "$OUT/rules.tgz" -C "$OUT" rules && rm -rf "$OUT/rules" ;;
  sanit)
    bash scripts/gpu_check.sh --skip-bench --skip-demo --tests-filter '*Tail*:*256TokenTile*:*FirstOffset*' \
      --sanitize-filter '*Tail*:*FirstOffset*' --step-timeout 240 | tail -20
    for row in "qwen3-30b-a3b 1" "mixtral-8x7b 1"; do
      set -- $row
      timeout 100 ncu --kernel-name regex:grouped_gemv_kernel --launch-count 2 \
        --section LaunchStats --section SpeedOfLight --section WarpStateStats \
        --section Occupancy .carry/t50a/qmoe bench --shapes "$1" --tokens "$2" \
        --formats int4:g128 --reps 5 --out "$OUT/ncu-bench" >"$OUT/ncu_$1_T$2.txt" 2>&1
      echo "ncu $1 rc=$?"
      grep -E "grouped_gemv_kernel|Duration|SM Frequency|DRAM Throughput|Issue Slots Busy|No Eligible|Registers Per|Achieved Occupancy|Grid Size" \
        "$OUT/ncu_$1_T$2.txt" | head -24
    done
    rm -rf "$OUT/ncu-bench" ;;
esac
