# `cmake --install build --prefix P` lays out a prefix that runs jobs and
# builds plugins out of tree:
#   P/bin/flare-run, flare-client, flare-worker  (each finds the others beside it)
#   P/plugins/libflare_<name>.so                 (the host's <exe>/../plugins)
#   P/include/flare/...                          (the SDK headers)
#   P/lib/cmake/FlareSDK/                        (find_package(FlareSDK))
# Nothing of ours is a shared library, so the prefix moves as a whole; the
# binaries keep an RPATH only to libraries outside the system's (a LibTorch
# from a PyTorch wheel), set by CMAKE_INSTALL_RPATH_USE_LINK_PATH.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
set(FLARE_SDK_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/FlareSDK)

install(TARGETS flare-run flare-client flare-worker RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS flare-provision RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})  # P/bin/flare-provision
install(TARGETS flare-server RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS flare-admin RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})  # P/bin/flare-admin
# The worker's faster library order (cmake/FlareLookupOrder.cmake) names
# system libraries by absolute path: still right on this machine.
if(NOT FLARE_SANITIZE)
  install(FILES $<TARGET_FILE:flare-worker>.lookup-order DESTINATION ${CMAKE_INSTALL_BINDIR}
          OPTIONAL)
endif()
get_property(shipped_plugins GLOBAL PROPERTY FLARE_SHIPPED_PLUGINS)
install(TARGETS ${shipped_plugins} LIBRARY DESTINATION plugins)

install(DIRECTORY sdk/include/flare DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS flare_sdk_abi flare_sdk EXPORT FlareSDKTargets)
install(EXPORT FlareSDKTargets NAMESPACE FlareSDK:: DESTINATION ${FLARE_SDK_CMAKE_DIR})
configure_package_config_file(cmake/FlareSDKConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/FlareSDKConfig.cmake INSTALL_DESTINATION ${FLARE_SDK_CMAKE_DIR})
# 0.x: a minor may change the C++ helpers; the C ABI has its own version check.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/FlareSDKConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/FlareSDKConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/FlareSDKConfigVersion.cmake
              cmake/flare_plugin.map
        DESTINATION ${FLARE_SDK_CMAKE_DIR})
