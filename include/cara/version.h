// The build's version (git describe), generated into build/gen/version.c by the Makefile.
#ifndef CARA_VERSION_H
#define CARA_VERSION_H

extern const char cara_version[];

#endif
