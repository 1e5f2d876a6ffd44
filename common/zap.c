#include "cara/zap.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#include "cara/keys.h"
#include "cara/log.h"

struct zap_t {
    void *socket;
    pthread_t thread;
    atomic_bool stop;
    char *path;
    keyring_t *ring;
    struct stat seen;  // the ring file as last loaded
    atomic_ulong admitted;
    atomic_ulong refused;
};

// Reloads the ring when the file changed (new inode, size or mtime). Keeps the old ring if the
// new file cannot be read, so a half-written edit never locks everyone out.
static void s_refresh(zap_t *self) {
    struct stat st;
    if (stat(self->path, &st) != 0)
        return;
    if (self->ring && st.st_ino == self->seen.st_ino && st.st_size == self->seen.st_size &&
        st.st_mtim.tv_sec == self->seen.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == self->seen.st_mtim.tv_nsec)
        return;
    keyring_t *ring = keyring_load(self->path);
    if (!ring)
        return;
    keyring_destroy(&self->ring);
    self->ring = ring;
    self->seen = st;
    log_info("keyring_loaded", "path", self->path);
}

static int s_recv_frames(void *socket, zmq_msg_t *frames, int max) {
    int n = 0;
    int more = 1;
    while (more) {
        zmq_msg_t scratch;
        zmq_msg_t *msg = n < max ? &frames[n] : &scratch;
        zmq_msg_init(msg);
        if (zmq_msg_recv(msg, socket, 0) < 0) {
            zmq_msg_close(msg);
            for (int i = 0; i < n && i < max; i++)
                zmq_msg_close(&frames[i]);
            return -1;
        }
        more = zmq_msg_more(msg);
        if (msg == &scratch)
            zmq_msg_close(msg);
        n++;
    }
    return n;
}

static void s_send_str(void *socket, const char *text, int more) {
    zmq_send(socket, text, strlen(text), more ? ZMQ_SNDMORE : 0);
}

static void s_handle(zap_t *self) {
    zmq_msg_t f[8];
    int n = s_recv_frames(self->socket, f, 8);
    if (n < 0)
        return;
    int got = n < 8 ? n : 8;
    char request_id[256] = "", address[64] = "", mechanism[16] = "", key[KEY_Z85_LEN] = "";
    if (got >= 6) {
        size_t len = zmq_msg_size(&f[1]);
        if (len < sizeof request_id)
            memcpy(request_id, zmq_msg_data(&f[1]), len), request_id[len] = '\0';
        len = zmq_msg_size(&f[3]);
        if (len < sizeof address)
            memcpy(address, zmq_msg_data(&f[3]), len), address[len] = '\0';
        len = zmq_msg_size(&f[5]);
        if (len < sizeof mechanism)
            memcpy(mechanism, zmq_msg_data(&f[5]), len), mechanism[len] = '\0';
        if (strcmp(mechanism, "CURVE") == 0 && got >= 7 && zmq_msg_size(&f[6]) == 32)
            zmq_z85_encode(key, zmq_msg_data(&f[6]), 32);
    }
    identity_t who;
    char user_id[128] = "";
    s_refresh(self);
    int ok = key[0] && self->ring && keyring_find(self->ring, key, &who) == 0;
    if (ok) {
        identity_format(&who, user_id, sizeof user_id);
        atomic_fetch_add(&self->admitted, 1);
    } else {
        atomic_fetch_add(&self->refused, 1);
        log_warn("zap_refused", "address", address, "mechanism", mechanism, "key",
                 key[0] ? key : NULL, "reason",
                 strcmp(mechanism, "CURVE") ? "CURVE required" : "key not in key ring");
    }
    // Reply: version, request id, status code, status text, user id, metadata.
    zmq_send(self->socket, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(self->socket, zmq_msg_data(&f[1 < got ? 1 : 0]), got > 1 ? zmq_msg_size(&f[1]) : 0,
             ZMQ_SNDMORE);
    s_send_str(self->socket, ok ? "200" : "400", 1);
    s_send_str(self->socket, ok ? "OK" : "Not admitted", 1);
    s_send_str(self->socket, user_id, 1);
    zmq_send(self->socket, "", 0, 0);
    for (int i = 0; i < got; i++)
        zmq_msg_close(&f[i]);
}

static void *s_run(void *arg) {
    zap_t *self = arg;
    while (!atomic_load(&self->stop)) {
        zmq_pollitem_t item = {self->socket, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&item, 1, 200);
        if (rc < 0 && zmq_errno() == ETERM)
            break;
        if (rc > 0)
            s_handle(self);
    }
    return NULL;
}

zap_t *zap_new(void *ctx, const char *keyring_path) {
    zap_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->path = strdup(keyring_path ? keyring_path : "");
    s_refresh(self);
    if (!self->ring) {
        log_error("zap_failed", "reason", "key ring unreadable", "path", keyring_path);
        goto failed;
    }
    self->socket = zmq_socket(ctx, ZMQ_REP);
    int linger = 0;
    if (!self->socket || zmq_setsockopt(self->socket, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_bind(self->socket, "inproc://zeromq.zap.01") != 0) {
        log_error("zap_failed", "reason", zmq_strerror(zmq_errno()));
        goto failed;
    }
    if (pthread_create(&self->thread, NULL, s_run, self) != 0)
        goto failed;
    return self;
failed:
    if (self->socket)
        zmq_close(self->socket);
    keyring_destroy(&self->ring);
    free(self->path);
    free(self);
    return NULL;
}

void zap_destroy(zap_t **self_p) {
    if (!self_p || !*self_p)
        return;
    zap_t *self = *self_p;
    atomic_store(&self->stop, true);
    pthread_join(self->thread, NULL);
    zmq_close(self->socket);
    keyring_destroy(&self->ring);
    free(self->path);
    free(self);
    *self_p = NULL;
}

unsigned long zap_admitted(zap_t *self) { return atomic_load(&self->admitted); }
unsigned long zap_refused(zap_t *self) { return atomic_load(&self->refused); }
