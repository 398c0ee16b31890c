# Where the LibTorch is a CPU build but the CUDA toolkit and NCCL are installed
# (this project's CI machines), compile the collectives' CUDA path anyway: the
# `#if FLARE_WITH_CUDA` code of process_group_collectives.cpp, against c10d's
# ProcessGroupNCCL.hpp, CUDA's and NCCL's headers. Compile only (an OBJECT
# library nothing links): a CPU LibTorch has no CUDA symbols. So an API slip
# in the CUDA path breaks this build, not the first GPU machine's.
if(NOT FLARE_WITH_CUDA)
  find_package(CUDAToolkit QUIET)
  flare_find_nccl()
endif()
set(flare_cuda_check_default OFF)
# Not in a sanitized build: the normal build already checks the same code.
if(NOT FLARE_WITH_CUDA AND CUDAToolkit_FOUND AND FLARE_NCCL_INCLUDE_DIR AND NOT FLARE_SANITIZE)
  set(flare_cuda_check_default ON)
endif()
option(FLARE_CHECK_CUDA_COMPILE
  "Compile (not link) the CUDA/NCCL path against the CUDA toolkit when LibTorch has no CUDA"
  ${flare_cuda_check_default})

# flare_add_cuda_compile_check(): call once runtime/ is added (it compiles a
# file of flare_collectives with that target's include paths and flags).
function(flare_add_cuda_compile_check)
  if(NOT FLARE_CHECK_CUDA_COMPILE OR FLARE_WITH_CUDA)
    return()  # a CUDA LibTorch compiles (and links) the real thing
  endif()
  if(NOT CUDAToolkit_FOUND)
    message(FATAL_ERROR "flare: FLARE_CHECK_CUDA_COMPILE needs the CUDA toolkit, which was not "
      "found: set CUDAToolkit_ROOT, or -DFLARE_CHECK_CUDA_COMPILE=OFF")
  endif()
  if(NOT FLARE_NCCL_INCLUDE_DIR)
    message(FATAL_ERROR "flare: FLARE_CHECK_CUDA_COMPILE needs nccl.h, which was not found: "
      "set NCCL_ROOT, or -DFLARE_CHECK_CUDA_COMPILE=OFF")
  endif()
  set(collectives ${PROJECT_SOURCE_DIR}/runtime/collectives)
  add_library(flare_cuda_compile_check OBJECT ${collectives}/process_group_collectives.cpp)
  # Debian's torch headers lack the one c10/cuda header a CUDA LibTorch build
  # generates; its whole content for a shared-library build is this define.
  set(shim ${CMAKE_CURRENT_BINARY_DIR}/cuda_compile_check/include)
  find_file(FLARE_C10_CUDA_MACROS c10/cuda/impl/cuda_cmake_macros.h PATHS ${TORCH_INCLUDE_DIRS}
    NO_DEFAULT_PATH)
  if(NOT FLARE_C10_CUDA_MACROS)
    file(WRITE ${shim}/c10/cuda/impl/cuda_cmake_macros.h
      "#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n")
  endif()
  target_include_directories(flare_cuda_compile_check PRIVATE ${shim}
    $<TARGET_PROPERTY:flare_collectives,INCLUDE_DIRECTORIES>
    ${CUDAToolkit_INCLUDE_DIRS} ${FLARE_NCCL_INCLUDE_DIR})
  target_compile_definitions(flare_cuda_compile_check PRIVATE FLARE_WITH_CUDA=1 USE_C10D_NCCL
    $<TARGET_PROPERTY:flare_collectives,COMPILE_DEFINITIONS>)
  target_compile_options(flare_cuda_compile_check PRIVATE
    $<TARGET_PROPERTY:flare_collectives,COMPILE_OPTIONS>)
  message(STATUS "flare: compile-checking the CUDA/NCCL path against ${CUDAToolkit_INCLUDE_DIRS} "
    "(CUDA ${CUDAToolkit_VERSION}; FLARE_CHECK_CUDA_COMPILE=OFF skips it)")
endfunction()
