// Backlogs for the benchmarks: envelopes written straight into a service's outbox with COPY, as
// outbox_append would write them (seqs 1, 2, ...), so that loading a million events does not
// count in what is measured.
#ifndef CARA_OUTBOX_LOAD_H
#define CARA_OUTBOX_LOAD_H

#include <libpq-fe.h>
#include <protobuf-c/protobuf-c.h>
#include <stdint.h>

typedef struct outbox_load_t outbox_load_t;

// Starts a COPY into the outbox on c (a superuser connection with search_path set to the
// service's schema; the outbox must be empty). Returns NULL (reason on stderr) on failure.
outbox_load_t *outbox_load_begin(PGconn *c);
// Appends msg in a fresh envelope, with key and scope (either may be NULL). Returns its seq, or
// -1 on failure.
int64_t outbox_load_add(outbox_load_t *self, const ProtobufCMessage *msg, const char *key,
                        const char *scope);
// Ends the COPY, sets the sequence past the last seq and analyses the table; frees the loader.
// Returns the number of events loaded, or -1 if anything failed.
int64_t outbox_load_end(outbox_load_t **self_p);

#endif
