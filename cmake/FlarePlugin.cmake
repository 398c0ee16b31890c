# flare_add_plugin(NAME name SOURCES ... [LINK ...]): a plugin .so named
# libflare_<name>.so in the build's plugin folder, exporting only its entry symbol.
# One there (no OUTPUT_DIR, unlike the tests' fixtures) is shipped: installed.
function(flare_add_plugin)
  cmake_parse_arguments(P "" "NAME;OUTPUT_DIR" "SOURCES;LINK" ${ARGN})
  if(NOT P_OUTPUT_DIR)
    set(P_OUTPUT_DIR ${FLARE_PLUGIN_OUTPUT_DIR})
    set_property(GLOBAL APPEND PROPERTY FLARE_SHIPPED_PLUGINS flare_plugin_${P_NAME})
  endif()
  add_library(flare_plugin_${P_NAME} MODULE ${P_SOURCES})
  target_link_libraries(flare_plugin_${P_NAME} PRIVATE flare::sdk ${P_LINK})
  set_target_properties(flare_plugin_${P_NAME} PROPERTIES
    OUTPUT_NAME flare_${P_NAME}
    PREFIX lib
    LIBRARY_OUTPUT_DIRECTORY ${P_OUTPUT_DIR}
    CXX_VISIBILITY_PRESET hidden
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
endfunction()
