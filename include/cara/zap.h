// The ZAP handler (RFC 27): without one, libzmq admits every CURVE client. This one admits
// only public keys in the deployment's key ring and sets the User-Id "role:org" from the
// ring, which is the only identity handlers trust. The ring file is re-read when it changes,
// so keys are added and revoked without a restart.
#ifndef CARA_ZAP_H
#define CARA_ZAP_H

typedef struct zap_t zap_t;

// Binds inproc://zeromq.zap.01 in ctx and starts the handler thread. Must run before any
// server socket binds. Returns NULL (reason logged) if the ring cannot be read or bound.
zap_t *zap_new(void *ctx, const char *keyring_path);
// Stops the thread and closes the socket.
void zap_destroy(zap_t **self_p);
// Counts of decisions so far (for tests and health).
unsigned long zap_admitted(zap_t *self);
unsigned long zap_refused(zap_t *self);

#endif
