#ifndef SKYNET_CMONGOC_SHIM_H
#define SKYNET_CMONGOC_SHIM_H
// libmongoc and libbson from Debian (libmongoc-dev, libbson-dev), found with pkg-config.
#include <mongoc/mongoc.h>
#endif
