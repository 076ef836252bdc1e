# Runs one mpirun job and checks it from the outside; ctest calls it as
#   cmake "-DCOMMAND=mpirun -np N program args" -DEXPECT_EXIT=zero|nonzero
#         [-DEXPECT_MESSAGE=<text> -DEXPECT_COUNT=<n>] [-DCOMPARE_RUNS=ON] -P run_mpi_job.cmake
#
#   EXPECT_EXIT     whether the job must succeed or fail (a failure must come
#                   back on its own: execute_process' timeout catches a hang)
#   EXPECT_MESSAGE  a text that must appear in the output exactly EXPECT_COUNT
#                   times (1: an error printed once, not once per rank)
#   COMPARE_RUNS    run twice, with 1 and 2 OpenMP threads per rank, and
#                   require the same "digest=" line (bit-identical results)
cmake_minimum_required(VERSION 3.24)
separate_arguments(COMMAND UNIX_COMMAND "${COMMAND}")
if(NOT DEFINED TIMEOUT)
  set(TIMEOUT 50)
endif()

function(run_job threads out_var rc_var)
  execute_process(COMMAND ${CMAKE_COMMAND} -E env OMP_NUM_THREADS=${threads} OPENBLAS_NUM_THREADS=1 ${COMMAND}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT ${TIMEOUT})
  set(${out_var} "${out}${err}" PARENT_SCOPE)
  set(${rc_var} "${rc}" PARENT_SCOPE)
endfunction()

run_job(1 output rc)
message("---- exit: ${rc}\n---- output:\n${output}----")
if(rc MATCHES "timeout")
  message(FATAL_ERROR "the job hung: no exit within ${TIMEOUT} s")
endif()
if(EXPECT_EXIT STREQUAL "zero" AND NOT rc EQUAL 0)
  message(FATAL_ERROR "expected exit code 0, got ${rc}")
endif()
if(EXPECT_EXIT STREQUAL "nonzero" AND rc EQUAL 0)
  message(FATAL_ERROR "expected a non-zero exit code, got 0")
endif()

if(DEFINED EXPECT_MESSAGE)
  string(FIND "${output}" "${EXPECT_MESSAGE}" at)
  set(count 0)
  set(rest "${output}")
  while(NOT at EQUAL -1)
    math(EXPR count "${count} + 1")
    string(LENGTH "${EXPECT_MESSAGE}" len)
    math(EXPR at "${at} + ${len}")
    string(SUBSTRING "${rest}" ${at} -1 rest)
    string(FIND "${rest}" "${EXPECT_MESSAGE}" at)
  endwhile()
  if(NOT count EQUAL EXPECT_COUNT)
    message(FATAL_ERROR "expected '${EXPECT_MESSAGE}' ${EXPECT_COUNT} time(s), found it ${count} time(s)")
  endif()
endif()

if(COMPARE_RUNS)
  string(REGEX MATCH "digest=[0-9a-f]+" first "${output}")
  run_job(2 output2 rc2)
  string(REGEX MATCH "digest=[0-9a-f]+" second "${output2}")
  message("---- second run (2 threads per rank): exit ${rc2}, ${second}")
  if(first STREQUAL "" OR NOT first STREQUAL second OR NOT rc2 EQUAL 0)
    message(FATAL_ERROR "runs differ: '${first}' vs '${second}' (exit ${rc2})")
  endif()
endif()
