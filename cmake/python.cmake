# Finds what the Python module needs and sets FP8LLM_HAVE_PYTHON. The module is not built with the
# sanitizers: an interpreter that is not instrumented cannot load an instrumented module.
set(FP8LLM_HAVE_PYTHON OFF)
if(FP8LLM_PYTHON STREQUAL "OFF")
  return()
endif()
if(FP8LLM_SANITIZE)
  if(FP8LLM_PYTHON STREQUAL "ON")
    message(FATAL_ERROR "FP8LLM_PYTHON=ON cannot be combined with FP8LLM_SANITIZE")
  endif()
  return()
endif()

# The tests import numpy. The first python3 on PATH may be a private interpreter without it (pyenv,
# a virtual environment) while the system's has it from the distribution: take the first that has
# it, unless Python_EXECUTABLE names one.
if(NOT Python_EXECUTABLE)
  find_program(FP8LLM_PATH_PYTHON NAMES python3 NO_CACHE)
  foreach(candidate ${FP8LLM_PATH_PYTHON} /usr/bin/python3)
    if(EXISTS ${candidate})
      execute_process(COMMAND ${candidate} -c "import numpy" RESULT_VARIABLE no_numpy
                      OUTPUT_QUIET ERROR_QUIET)
      if(no_numpy EQUAL 0)
        set(Python_EXECUTABLE ${candidate} CACHE FILEPATH "The Python the module is built for")
        break()
      endif()
    endif()
  endforeach()
endif()

if(FP8LLM_PYTHON STREQUAL "ON")
  set(required REQUIRED)
endif()
find_package(Python 3.8 COMPONENTS Interpreter Development.Module ${required})
if(Python_FOUND AND NOT FP8LLM_PYBIND11_INCLUDE_DIR)
  find_package(pybind11 2.6 CONFIG ${required})
endif()
if(Python_FOUND AND (pybind11_FOUND OR FP8LLM_PYBIND11_INCLUDE_DIR))
  set(FP8LLM_HAVE_PYTHON ON)
endif()
message(STATUS "fp8llm: Python module ${FP8LLM_HAVE_PYTHON} (${Python_EXECUTABLE})")
