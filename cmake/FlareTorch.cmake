# LibTorch headers cost ~25 s per translation unit here: every target that
# includes them reuses one precompiled header instead of parsing them again.
add_library(flare_torch INTERFACE)
target_link_libraries(flare_torch INTERFACE ${TORCH_LIBRARIES})
target_compile_definitions(flare_torch INTERFACE USE_C10D_GLOO)

add_library(flare_torch_pch OBJECT ${PROJECT_SOURCE_DIR}/cmake/torch_pch.cpp)
target_link_libraries(flare_torch_pch PUBLIC flare_torch)
target_precompile_headers(flare_torch_pch PUBLIC
  <torch/torch.h>
  <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
  <torch/csrc/distributed/c10d/TCPStore.hpp>)

# flare_use_torch(target): link LibTorch and reuse the shared precompiled header.
function(flare_use_torch target)
  target_link_libraries(${target} PRIVATE flare_torch)
  target_precompile_headers(${target} REUSE_FROM flare_torch_pch)
endfunction()
