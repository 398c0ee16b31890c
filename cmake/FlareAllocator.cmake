# The processes that train (flare-worker, the DDP benchmark) allocate and free
# tensors every step; glibc's malloc returns that memory to the kernel and
# faults it back in. tcmalloc keeps it: +15% images/s for LitNet at batch 4 on
# one rank (bench/RESULTS.md), the allocator PyTorch's CPU tuning guide
# suggests. Linked, not preloaded, so the plugins and LibTorch use it too.
# Off in a sanitized build: ASan must own malloc.
if(FLARE_SANITIZE)
  set(flare_tcmalloc_default OFF)
else()
  set(flare_tcmalloc_default ON)
endif()
option(FLARE_USE_TCMALLOC "Link the training processes with tcmalloc_minimal"
  ${flare_tcmalloc_default})
if(FLARE_USE_TCMALLOC AND FLARE_SANITIZE)
  message(FATAL_ERROR "flare: FLARE_SANITIZE needs FLARE_USE_TCMALLOC=OFF (AddressSanitizer "
    "replaces malloc; tcmalloc would take it back)")
endif()
if(FLARE_USE_TCMALLOC)
  find_library(FLARE_TCMALLOC_LIBRARY tcmalloc_minimal)
  if(NOT FLARE_TCMALLOC_LIBRARY)
    message(WARNING "tcmalloc_minimal not found (Debian: libgoogle-perftools-dev): the "
                    "training processes use glibc's malloc")
  endif()
endif()

# flare_use_fast_allocator(target): the executable's malloc is tcmalloc's.
function(flare_use_fast_allocator target)
  if(FLARE_USE_TCMALLOC AND FLARE_TCMALLOC_LIBRARY)
    # --no-as-needed: the executable names no tcmalloc symbol, yet must load it
    # before libc. (Left on: switching --as-needed back on could drop libraries
    # LibTorch needs loaded without naming them, like libtorch_cuda.)
    target_link_libraries(${target} PRIVATE "-Wl,--no-as-needed" ${FLARE_TCMALLOC_LIBRARY})
  endif()
endfunction()
