# flare_order_symbol_lookup(target): after each link of `target`, writes
# <target>.lookup-order beside it (cmake/lookup-order.sh): the LD_PRELOAD
# that names the libraries its symbol lookups end in early, checked to bind
# every C symbol exactly as the default order does. A LibTorch process then
# starts ~20% faster (bench/RESULTS.md). Not in a sanitized build: there
# AddressSanitizer's runtime must load first and alone.
function(flare_order_symbol_lookup target)
  if(FLARE_SANITIZE OR NOT CMAKE_SYSTEM_NAME STREQUAL "Linux")
    return()
  endif()
  add_custom_command(TARGET ${target} POST_BUILD
    COMMAND sh ${PROJECT_SOURCE_DIR}/cmake/lookup-order.sh $<TARGET_FILE:${target}>
            $<TARGET_FILE:${target}>.lookup-order
    COMMENT "Ordering ${target}'s symbol lookups"
    VERBATIM)
endfunction()
