# The Debian package: `cpack -G DEB` in a build directory writes ferry_<version>_<arch>.deb from
# the install() rules of the root CMakeLists.txt:
#   /usr/bin/ferry-worker                             (stripped)
#   /lib/systemd/system/ferry.service
#   /etc/ferry/connect-distributed.properties         (a conffile: upgrades keep local edits)
#   /usr/share/man/man1/ferry-worker.1.gz
#   /usr/share/doc/ferry/README.md, docs/*.md, docs/*.png (README's links keep working)
#   /usr/share/doc/ferry/copyright, LICENSE, CHANGELOG.md (Apache-2.0; copyright in Debian's format)
# Depends comes from dpkg-shlibdeps (package dpkg-dev): the libraries ferry-worker links,
# libjemalloc2 among them when FERRY_JEMALLOC is on. The maintainer scripts in deploy/debian/
# create the `ferry` user and talk to systemd only when it runs. Nothing here changes the build:
# CPack only reads these variables when cpack runs.

set(FERRY_DEB_MAINTAINER "ferry maintainers <root@localhost>"
    CACHE STRING "Maintainer field of the Debian package")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ferry)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${FERRY_DEB_MAINTAINER}")
set(CPACK_RESOURCE_FILE_LICENSE ${CMAKE_SOURCE_DIR}/LICENSE)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Kafka Connect distributed mode in C, for copying topics between Kafka clusters")
set(CPACK_PACKAGE_DESCRIPTION
    "ferry-worker reads Kafka Connect's connect-distributed.properties, serves the same REST API
on port 8083 and keeps its state in the same three Kafka topics, with the
EMRReplicatorSourceConnector built in. Workers coordinate through ZooKeeper.
This package installs the worker as the systemd unit ferry.service, disabled until the
configuration in /etc/ferry is edited.")
# The absolute destinations (/etc, /lib/systemd) need DESTDIR-style staging; the relative ones
# land under /usr.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/deploy/debian/conffiles ${CMAKE_SOURCE_DIR}/deploy/debian/postinst
    ${CMAKE_SOURCE_DIR}/deploy/debian/prerm ${CMAKE_SOURCE_DIR}/deploy/debian/postrm)

include(CPack)
