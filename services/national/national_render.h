// The national return as CSV (long form, one published value a line) and as a self-contained
// HTML page (inline CSS and SVG charts; no scripts, nothing fetched). Pure functions of the
// JSON return, so a rebuild renders byte-identical files.
#ifndef NATIONAL_RENDER_H
#define NATIONAL_RENDER_H
#include <jansson.h>

// Returns a new string (caller frees), or NULL when out of memory.
char *national_render_csv(const json_t *doc);
// Returns a new string (caller frees), or NULL when out of memory.
char *national_render_html(const json_t *doc);

#endif
