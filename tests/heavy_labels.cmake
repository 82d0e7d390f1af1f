# Read by ctest with the test list (TEST_INCLUDE_FILES, see tests/CMakeLists.txt): the test
# cases of a doctest binary that are in the test suite "heavy", e.g.
#   TEST_CASE("..." * doctest::test_suite("heavy"))
# get the CTest label `heavy`, so that `ctest -LE heavy` leaves them out. One listing run per
# binary; a binary that is not built yet is skipped (its entries fail on their own).

# sfstream_label_heavy(<test name prefix> <binary>)
function(sfstream_label_heavy prefix binary)
  if(NOT EXISTS "${binary}")
    return()
  endif()
  execute_process(COMMAND "${binary}" --test-suite=heavy --list-test-cases
                  OUTPUT_VARIABLE out RESULT_VARIABLE rc ERROR_QUIET)
  if(NOT rc EQUAL 0)
    message(WARNING "${binary} --list-test-cases failed (${rc}): no test of it is labelled heavy")
    return()
  endif()
  string(REPLACE "\n" ";" lines "${out}")
  foreach(line ${lines})
    if(line STREQUAL "" OR line MATCHES "^===" OR line MATCHES "^\\[doctest\\] ")
      continue()
    endif()
    set_tests_properties("${prefix}${line}" PROPERTIES LABELS heavy)
  endforeach()
endfunction()
