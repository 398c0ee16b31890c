# LibTorch headers cost ~25 s per translation unit here: every target that
# includes them reuses one precompiled header instead of parsing them again.
add_library(flare_torch INTERFACE)
target_link_libraries(flare_torch INTERFACE ${TORCH_LIBRARIES})
# Every LibTorch user and the shared header alike: targets that link gRPC or
# Threads get -pthread (_REENTRANT), and gcc skips a header built without it.
target_compile_options(flare_torch INTERFACE -pthread)
target_compile_definitions(flare_torch INTERFACE USE_C10D_GLOO)
# c10d's ProcessGroupGloo.hpp includes Gloo's headers. Debian's LibTorch has them
# beside it (libgloo-dev); a PyTorch wheel has Gloo compiled into libtorch_cpu
# but ships no Gloo headers, so they come from elsewhere (scripts/gpu-check
# collects Debian's): only declarations are used, the code is LibTorch's own.
find_path(FLARE_GLOO_INCLUDE_DIR gloo/algorithm.h HINTS ${TORCH_INCLUDE_DIRS})
if(NOT FLARE_GLOO_INCLUDE_DIR)
  message(FATAL_ERROR "flare: Gloo's headers (gloo/algorithm.h) were found neither beside "
    "LibTorch nor on CMAKE_PREFIX_PATH (Debian: libgloo-dev)")
endif()
target_include_directories(flare_torch INTERFACE ${FLARE_GLOO_INCLUDE_DIR})

# The CUDA path (ProcessGroupNCCL, CUDA devices) is compiled only against a
# LibTorch built with CUDA, e.g. the one inside a PyTorch wheel
# (python3 -c 'import torch; print(torch.utils.cmake_prefix_path)'): it
# exports torch_cuda / c10_cuda. Debian's libtorch-dev is a CPU build; there
# FLARE_WITH_CUDA stays undefined and a job asking for CUDA fails at start.
include(${CMAKE_CURRENT_LIST_DIR}/FlareNccl.cmake)
if(TARGET torch_cuda OR TARGET c10_cuda OR TORCH_CUDA_LIBRARIES)
  set(FLARE_WITH_CUDA ON)
  find_package(CUDAToolkit QUIET)
  flare_find_nccl()
  if(NOT FLARE_NCCL_INCLUDE_DIR)
    message(FATAL_ERROR "flare: the LibTorch found has CUDA, but nccl.h (which c10d's "
      "ProcessGroupNCCL.hpp includes) was not found: set NCCL_ROOT to an NCCL install "
      "(or pip install nvidia-nccl-cu12 beside torch)")
  endif()
  # USE_C10D_NCCL: ProcessGroupNCCL.hpp is empty without it.
  target_compile_definitions(flare_torch INTERFACE FLARE_WITH_CUDA=1 USE_C10D_NCCL)
  target_include_directories(flare_torch INTERFACE ${FLARE_NCCL_INCLUDE_DIR})
  if(CUDAToolkit_FOUND)
    target_link_libraries(flare_torch INTERFACE CUDA::cudart)
  endif()
  # A CUDA LibTorch has c10d's NCCL backend inside libtorch_cuda (in
  # TORCH_LIBRARIES); NCCL itself comes along when it is a separate library.
  if(FLARE_NCCL_LIBRARY)
    target_link_libraries(flare_torch INTERFACE ${FLARE_NCCL_LIBRARY})
  endif()
  message(STATUS "flare: LibTorch has CUDA: building the CUDA/NCCL path (FLARE_WITH_CUDA=1, "
    "nccl.h in ${FLARE_NCCL_INCLUDE_DIR})")
else()
  set(FLARE_WITH_CUDA OFF)
  message(STATUS "flare: LibTorch is a CPU build: CUDA/NCCL path left out (jobs asking for "
    "CUDA devices fail at start)")
endif()

add_library(flare_torch_pch OBJECT ${PROJECT_SOURCE_DIR}/cmake/torch_pch.cpp)
target_link_libraries(flare_torch_pch PUBLIC flare_torch)
set(flare_torch_pch_headers
  <torch/torch.h>
  <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
  <torch/csrc/distributed/c10d/TCPStore.hpp>)
if(FLARE_WITH_CUDA)
  list(APPEND flare_torch_pch_headers <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>)
endif()
target_precompile_headers(flare_torch_pch PUBLIC ${flare_torch_pch_headers})

# flare_use_torch(target): link LibTorch and reuse the shared precompiled header.
function(flare_use_torch target)
  target_link_libraries(${target} PRIVATE flare_torch)
  target_precompile_headers(${target} REUSE_FROM flare_torch_pch)
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "EXECUTABLE")
    # The header is compiled as PIC (for the libraries), and gcc ignores a PIC
    # header in a PIE translation unit (-Winvalid-pch): executables compile as
    # PIC too (still linked as PIE).
    set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE OFF)
    target_compile_options(${target} PRIVATE -fPIC)
  endif()
endfunction()
