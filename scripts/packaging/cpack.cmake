# Install rules and the Debian package (`cpack -G DEB` in the build directory, or
# scripts/package): the binary in /usr/bin, the systemd unit, a default config in
# /etc/meshdeploy (a conffile: upgrades keep local edits), the state directory
# /var/lib/meshdeploy and the operator docs. docs/operations.md describes the result.
set(packaging_dir ${PROJECT_SOURCE_DIR}/scripts/packaging)

install(TARGETS meshdeploy RUNTIME DESTINATION bin COMPONENT node)
install(FILES ${packaging_dir}/meshdeploy.service DESTINATION /lib/systemd/system COMPONENT node)
install(FILES ${packaging_dir}/node.yaml DESTINATION /etc/meshdeploy COMPONENT node)
install(DIRECTORY DESTINATION /var/lib/meshdeploy COMPONENT node)
install(FILES ${PROJECT_SOURCE_DIR}/docs/operations.md ${PROJECT_SOURCE_DIR}/docs/cli.md
  DESTINATION share/doc/meshdeploy COMPONENT node)

set(CPACK_PACKAGE_NAME meshdeploy)
set(CPACK_PACKAGE_VENDOR "meshdeploy")
set(CPACK_PACKAGE_CONTACT "meshdeploy maintainers <meshdeploy@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "Masterless peer-to-peer deployments of CodeDeploy-style revisions")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL OFF)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies from the binary's shared objects (dpkg-shlibdeps).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${packaging_dir}/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_GENERATOR DEB)
include(CPack)
