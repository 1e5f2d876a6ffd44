#include "cara/transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "cara/log.h"
#include "cara/timeutil.h"
#include "cara/uuid.h"

#define TRANSPORT_LINGER_MS 200

static int s_set_int(void *socket, int option, int value) {
    return zmq_setsockopt(socket, option, &value, sizeof value);
}

void *transport_server(void *ctx, zap_t *zap, int type, const char *endpoint, const keypair_t *keys,
                       int64_t max_msg, char *bound, size_t bound_size) {
    if (!zap) {
        log_error("transport_refused", "endpoint", endpoint, "reason",
                  "no ZAP handler: a CURVE server without one admits every client");
        return NULL;
    }
    void *socket = zmq_socket(ctx, type);
    if (!socket)
        return NULL;
    int one = 1;
    if (s_set_int(socket, ZMQ_LINGER, TRANSPORT_LINGER_MS) != 0 ||
        zmq_setsockopt(socket, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, keys->secret_key, 40) != 0 ||
        zmq_setsockopt(socket, ZMQ_ZAP_DOMAIN, "cara", 4) != 0 ||
        (max_msg > 0 && zmq_setsockopt(socket, ZMQ_MAXMSGSIZE, &max_msg, sizeof max_msg) != 0) ||
        (type == ZMQ_PUB && s_set_int(socket, ZMQ_SNDHWM, 1000) != 0) ||
        zmq_bind(socket, endpoint) != 0) {
        log_error("transport_bind_failed", "endpoint", endpoint, "reason",
                  zmq_strerror(zmq_errno()));
        zmq_close(socket);
        return NULL;
    }
    if (bound) {
        size_t size = bound_size;
        if (zmq_getsockopt(socket, ZMQ_LAST_ENDPOINT, bound, &size) != 0)
            snprintf(bound, bound_size, "%s", endpoint);
    }
    return socket;
}

void *transport_client(void *ctx, int type, const char *endpoint, const keypair_t *keys,
                       const char *server_public) {
    void *socket = zmq_socket(ctx, type);
    if (!socket)
        return NULL;
    if (s_set_int(socket, ZMQ_LINGER, 0) != 0 ||
        zmq_setsockopt(socket, ZMQ_CURVE_SERVERKEY, server_public, 40) != 0 ||
        zmq_setsockopt(socket, ZMQ_CURVE_PUBLICKEY, keys->public_key, 40) != 0 ||
        zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, keys->secret_key, 40) != 0 ||
        (type == ZMQ_SUB && zmq_setsockopt(socket, ZMQ_SUBSCRIBE, "", 0) != 0) ||
        (type == ZMQ_DEALER && s_set_int(socket, ZMQ_RECONNECT_IVL_MAX, 2000) != 0) ||
        zmq_connect(socket, endpoint) != 0) {
        log_error("transport_connect_failed", "endpoint", endpoint, "reason",
                  zmq_strerror(zmq_errno()));
        zmq_close(socket);
        return NULL;
    }
    return socket;
}

void transport_request_free(transport_request_t *req) {
    free(req->body);
    req->body = NULL;
}

int transport_recv_request(void *router, transport_request_t *req) {
    memset(req, 0, sizeof *req);
    int frame = 0, more = 1, bad = 0;
    while (more) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, router, 0) < 0) {
            zmq_msg_close(&msg);
            transport_request_free(req);
            return -1;
        }
        more = zmq_msg_more(&msg);
        size_t size = zmq_msg_size(&msg);
        if (frame == 0) {
            if (size > sizeof req->routing_id)
                bad = 1;
            else
                memcpy(req->routing_id, zmq_msg_data(&msg), size), req->routing_len = size;
        } else if (size == 0 && !req->body && !req->delimited) {
            // An empty delimiter from a REQ client: skipped, and put back before the reply (a
            // REQ socket drops a reply without one).
            req->delimited = 1;
        } else if (req->body) {
            bad = 1; // more than one body frame
        } else {
            req->body = malloc(size ? size : 1);
            if (!req->body)
                bad = 1;
            else {
                memcpy(req->body, zmq_msg_data(&msg), size);
                req->body_len = size;
            }
            const char *user = zmq_msg_gets(&msg, "User-Id");
            if (user && identity_parse(user, &req->who) == 0)
                req->has_identity = 1;
        }
        zmq_msg_close(&msg);
        frame++;
    }
    if (bad || !req->body) {
        log_warn("transport_bad_frames", "reason", "expected one request frame");
        transport_request_free(req);
        return -1;
    }
    return 0;
}

int transport_send_reply(void *router, const transport_request_t *req, const uint8_t *data,
                         size_t len) {
    if (zmq_send(router, req->routing_id, req->routing_len, ZMQ_SNDMORE) < 0 ||
        (req->delimited && zmq_send(router, "", 0, ZMQ_SNDMORE) < 0) ||
        zmq_send(router, data, len, 0) < 0)
        return -1;
    return 0;
}

int transport_encode_reply(const char *request_id, Cara__Reply *reply, uint8_t **out, size_t *len) {
    return envelope_pack(&reply->base, NULL, request_id, out, len, NULL);
}

struct client_t {
    void *ctx;
    void *socket;
    char *endpoint;
    keypair_t keys;
    char server_public[KEY_Z85_LEN];
};

client_t *client_new(void *ctx, const char *endpoint, const keypair_t *keys,
                     const char *server_public) {
    client_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->ctx = ctx;
    self->endpoint = strdup(endpoint);
    self->keys = *keys;
    snprintf(self->server_public, sizeof self->server_public, "%s", server_public);
    self->socket = transport_client(ctx, ZMQ_DEALER, endpoint, keys, server_public);
    if (!self->socket) {
        client_destroy(&self);
        return NULL;
    }
    return self;
}

void client_destroy(client_t **self_p) {
    if (!self_p || !*self_p)
        return;
    client_t *self = *self_p;
    if (self->socket)
        zmq_close(self->socket);
    free(self->endpoint);
    free(self);
    *self_p = NULL;
}

// Waits for the reply whose correlation id is request_id, dropping stale replies to earlier
// attempts. Returns the envelope or NULL at the deadline.
static Cara__Envelope *s_await(client_t *self, const char *request_id, int timeout_ms) {
    int64_t deadline = time_mono_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - time_mono_ms();
        if (left <= 0)
            return NULL;
        zmq_pollitem_t item = {self->socket, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, (long)left) <= 0)
            continue;
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, self->socket, 0) < 0) {
            zmq_msg_close(&msg);
            continue;
        }
        Cara__Envelope *env = envelope_unpack(zmq_msg_data(&msg), zmq_msg_size(&msg));
        zmq_msg_close(&msg);
        if (env && (!request_id || strcmp(env->correlation_id, request_id) == 0))
            return env;
        if (env)
            cara__envelope__free_unpacked(env, NULL);
    }
}

// Sends without blocking forever: a DEALER with no connected peer (server down, or our key
// refused) would block in zmq_send. Returns 0 if sent, -1 if no peer took it within timeout.
static int s_send_within(client_t *self, const uint8_t *data, size_t len, int timeout_ms) {
    zmq_pollitem_t item = {self->socket, 0, ZMQ_POLLOUT, 0};
    if (zmq_poll(&item, 1, timeout_ms) <= 0 || !(item.revents & ZMQ_POLLOUT))
        return -1;
    return zmq_send(self->socket, data, len, ZMQ_DONTWAIT) < 0 ? -1 : 0;
}

static int s_reconnect(client_t *self) {
    zmq_close(self->socket);
    self->socket =
        transport_client(self->ctx, ZMQ_DEALER, self->endpoint, &self->keys, self->server_public);
    return self->socket ? 0 : -1;
}

Cara__Reply *client_call(client_t *self, const ProtobufCMessage *payload, const char *request_id,
                         const char *correlation_id, int timeout_ms, int retries) {
    char id[UUID_STR_LEN];
    uint8_t *data = NULL;
    size_t len = 0;
    if (envelope_pack(payload, request_id, correlation_id, &data, &len, id) != 0)
        return NULL;
    Cara__Reply *reply = NULL;
    for (int attempt = 0; attempt <= retries && !reply; attempt++) {
        if (attempt > 0 && s_reconnect(self) != 0)
            break;
        if (s_send_within(self, data, len, timeout_ms) != 0)
            continue;
        Cara__Envelope *env = s_await(self, id, timeout_ms);
        if (env) {
            reply = (Cara__Reply *)envelope_payload(env, &cara__reply__descriptor);
            cara__envelope__free_unpacked(env, NULL);
        }
    }
    free(data);
    return reply;
}

Cara__Envelope *client_call_raw(client_t *self, const uint8_t *data, size_t len, int timeout_ms) {
    if (s_send_within(self, data, len, timeout_ms) != 0)
        return NULL;
    return s_await(self, NULL, timeout_ms);
}
