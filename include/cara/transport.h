// ZeroMQ transport: CURVE on every TCP socket, ROUTER/DEALER request-reply with Lazy-Pirate
// retries, PUB/SUB for stream heads. Every socket has ZMQ_LINGER set.
#ifndef CARA_TRANSPORT_H
#define CARA_TRANSPORT_H
#include <stddef.h>
#include <stdint.h>

#include "cara/envelope.h"
#include "cara/keys.h"
#include "cara/zap.h"

// One request received on a server ROUTER socket.
typedef struct {
    uint8_t routing_id[256];
    size_t routing_len;
    uint8_t *body; // the request frame (an encoded Envelope), malloc'd
    size_t body_len;
    identity_t who; // from the User-Id the ZAP handler set; role "" if none
    int has_identity;
    int delimited; // a REQ client's empty delimiter came before the body: the reply has one
} transport_request_t;

// Creates a server socket (ZMQ_ROUTER or ZMQ_PUB) with CURVE, bound to endpoint. Refuses
// (NULL) when zap is NULL: a CURVE server without a ZAP handler would admit anyone.
// max_msg bounds incoming frames (ZMQ_MAXMSGSIZE). The bound address (useful with port "*")
// is written to bound if given.
void *transport_server(void *ctx, zap_t *zap, int type, const char *endpoint, const keypair_t *keys,
                       int64_t max_msg, char *bound, size_t bound_size);
// Creates a client socket (ZMQ_DEALER or ZMQ_SUB) with CURVE towards server_public and connects.
// Returns NULL with the reason logged.
void *transport_client(void *ctx, int type, const char *endpoint, const keypair_t *keys,
                       const char *server_public);

// Receives one request from a ROUTER. Returns 0, or -1 (nothing to free) on error or a
// malformed multipart message (which is dropped and logged).
int transport_recv_request(void *router, transport_request_t *req);
void transport_request_free(transport_request_t *req);
// Sends a reply frame to the request's peer. Returns 0 or -1.
int transport_send_reply(void *router, const transport_request_t *req, const uint8_t *data,
                         size_t len);

// Builds the encoded reply envelope for a request (correlation_id = request id). payload_type
// and payload may be NULL. Returns 0 and a malloc'd buffer, or -1.
int transport_encode_reply(const char *request_id, Cara__Reply *reply, uint8_t **out, size_t *len);

// A Lazy-Pirate request client: DEALER with a receive timeout; after a timeout it closes the
// socket, reconnects and resends, up to `retries` times. Commands are idempotent (request id).
typedef struct client_t client_t;

client_t *client_new(void *ctx, const char *endpoint, const keypair_t *keys,
                     const char *server_public);
void client_destroy(client_t **self_p);
// Sends payload in an envelope with the given request id (NULL: fresh) and waits for the reply.
// Returns the decoded Reply (free with cara__reply__free_unpacked) or NULL after the last retry.
Cara__Reply *client_call(client_t *self, const ProtobufCMessage *payload, const char *request_id,
                         const char *correlation_id, int timeout_ms, int retries);
// Sends raw bytes as the request frame (bad-input tests) and returns the raw reply envelope
// (free with cara__envelope__free_unpacked) or NULL on timeout.
Cara__Envelope *client_call_raw(client_t *self, const uint8_t *data, size_t len, int timeout_ms);

#endif
