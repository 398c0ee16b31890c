# flare_find_nccl(): sets FLARE_NCCL_INCLUDE_DIR (nccl.h) and FLARE_NCCL_LIBRARY
# (libnccl), each NOTFOUND when missing. c10d's ProcessGroupNCCL.hpp includes
# nccl.h, which no LibTorch ships: it comes with the CUDA toolkit
# (/usr/local/cuda), a system package, or the nvidia-nccl wheel beside a
# PyTorch wheel's LibTorch. NCCL_ROOT (variable or environment) wins.
function(flare_find_nccl)
  set(hints ${NCCL_ROOT} $ENV{NCCL_ROOT} ${CUDAToolkit_LIBRARY_ROOT} /usr/local/cuda)
  if(TORCH_INSTALL_PREFIX)
    list(APPEND hints ${TORCH_INSTALL_PREFIX}/../nvidia/nccl)  # site-packages/nvidia/nccl
  endif()
  find_path(FLARE_NCCL_INCLUDE_DIR nccl.h HINTS ${hints} ${CUDAToolkit_INCLUDE_DIRS}
    PATH_SUFFIXES include)
  find_library(FLARE_NCCL_LIBRARY NAMES nccl libnccl.so.2 HINTS ${hints}
    PATH_SUFFIXES lib lib64 lib/x86_64-linux-gnu)
endfunction()
