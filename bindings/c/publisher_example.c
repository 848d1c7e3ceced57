/*
 * publisher_example.c - send one NEW_ORDER to the OMS engine from C and print the answer.
 *
 *   usage: publisher_example ENDPOINT ACCOUNT INSTRUMENT SIDE PRICE_RAW QTY_RAW
 *   e.g.   publisher_example tcp://127.0.0.1:5555 1 7 1 10125 1500
 *
 * Exit status: 0 ACK, 2 REJECT, 1 error or no answer within 5 s.
 *
 * A secured engine (CURVE): name this program's ZeroMQ certificate (a .key_secret file from
 * `oms keys`) in OMS_CURVE_SECRET_FILE and the engine's public key file (engine.key) in
 * OMS_CURVE_SERVER_KEY_FILE. Without them it connects in the clear, which a secured engine
 * refuses (no answer, exit 1).
 *
 * Build against any libzmq (>= 4.0). No system package is needed: the libzmq shipped in
 * pyzmq's wheel works, e.g.
 *   gcc -std=c11 -O2 -Ibindings/c bindings/c/publisher_example.c \
 *       .venv/lib/python3.11/site-packages/pyzmq.libs/libzmq-*.so* \
 *       -Wl,-rpath,$PWD/.venv/lib/python3.11/site-packages/pyzmq.libs -o publisher_example
 * When <zmq.h> is installed (Debian: libzmq3-dev) it is used; otherwise the few stable libzmq
 * entry points this program calls are declared below.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "oms_wire.h"

#if defined(__has_include)
#if __has_include(<zmq.h>)
#include <zmq.h>
#define OMS_HAVE_ZMQ_H 1
#endif
#endif
#ifndef OMS_HAVE_ZMQ_H
/* Stable libzmq C ABI (unchanged since libzmq 3.2). */
void *zmq_ctx_new(void);
int zmq_ctx_term(void *context);
void *zmq_socket(void *context, int type);
int zmq_close(void *socket);
int zmq_connect(void *socket, const char *endpoint);
int zmq_setsockopt(void *socket, int option, const void *value, size_t len);
int zmq_send(void *socket, const void *buf, size_t len, int flags);
int zmq_recv(void *socket, void *buf, size_t len, int flags);
int zmq_errno(void);
const char *zmq_strerror(int errnum);
#define ZMQ_DEALER 5
#define ZMQ_LINGER 17
#define ZMQ_RCVTIMEO 27
#define ZMQ_CURVE_PUBLICKEY 48
#define ZMQ_CURVE_SECRETKEY 49
#define ZMQ_CURVE_SERVERKEY 50
#endif

/* Read the Z85 text of `name` ("public-key" / "secret-key") from a ZeroMQ certificate file
 * into out[41]; 0 when found. */
static int cert_key(const char *path, const char *name, char out[41]) {
    FILE *f = fopen(path, "r");
    if (f == NULL) return -1;
    char line[256];
    int found = -1;
    size_t n = strlen(name);
    while (found != 0 && fgets(line, sizeof line, f) != NULL) {
        const char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (strncmp(p, name, n) != 0) continue;
        const char *q = strchr(p + n, '"');
        if (q == NULL || strlen(q + 1) < 41 || q[41] != '"') continue;
        memcpy(out, q + 1, 40);
        out[40] = '\0';
        found = 0;
    }
    fclose(f);
    return found;
}

/* CURVE client keys from the files named in the environment; 0 when configured or not asked
 * for, -1 on a bad file (the key text is never printed). */
static int use_curve(void *sock) {
    const char *mine = getenv("OMS_CURVE_SECRET_FILE");
    const char *server = getenv("OMS_CURVE_SERVER_KEY_FILE");
    if (mine == NULL && server == NULL) return 0;
    char pub[41], sec[41], srv[41];
    if (mine == NULL || server == NULL || cert_key(mine, "public-key", pub) != 0 ||
        cert_key(mine, "secret-key", sec) != 0 || cert_key(server, "public-key", srv) != 0) {
        fprintf(stderr, "CURVE: set OMS_CURVE_SECRET_FILE and OMS_CURVE_SERVER_KEY_FILE to "
                        "readable certificate files\n");
        return -1;
    }
    int rc = zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, srv, 41) |
             zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pub, 41) |
             zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, sec, 41);
    memset(sec, 0, sizeof sec);
    if (rc != 0) fprintf(stderr, "CURVE: %s\n", zmq_strerror(zmq_errno()));
    return rc != 0 ? -1 : 0;
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Print every record of a reply frame; return the exit status it implies. */
static int print_reply(const unsigned char *buf, size_t n, uint64_t request_id) {
    int status = 1;
    size_t off = 0;
    while (off < n) {
        oms_hdr_t h;
        if (n - off < sizeof h) {
            fprintf(stderr, "truncated header at %zu\n", off);
            return 1;
        }
        memcpy(&h, buf + off, sizeof h); /* frames need not be aligned */
        uint16_t size = oms_wire_record_size(h.msg_type);
        if (h.magic != OMS_WIRE_MAGIC || h.version != OMS_WIRE_VERSION || size == 0 ||
            h.length != size || h.length > n - off) {
            fprintf(stderr, "malformed record at %zu\n", off);
            return 1;
        }
        if (h.msg_type == OMS_MSG_ACK) {
            oms_ack_t a;
            memcpy(&a, buf + off, sizeof a);
            printf("ACK request_id=%" PRIu64 " order_id=%" PRIu64 " client_order_id=%" PRIu64
                   " engine_ns=%" PRId64 "\n",
                   a.hdr.request_id, a.order_id, a.client_order_id, a.ack_ns - a.recv_ns);
            if (a.hdr.request_id == request_id) status = 0;
        } else if (h.msg_type == OMS_MSG_REJECT) {
            oms_reject_t r;
            memcpy(&r, buf + off, sizeof r);
            printf("REJECT request_id=%" PRIu64 " code=%u\n", r.hdr.request_id, r.code);
            if (r.hdr.request_id == request_id) status = 2;
        } else if (h.msg_type == OMS_MSG_ORDER_UPDATE) {
            oms_order_update_t u;
            memcpy(&u, buf + off, sizeof u);
            printf("ORDER_UPDATE order_id=%" PRIu64 " status=%u leaves=%" PRId64 "\n",
                   u.order_id, u.status, u.leaves);
        } else {
            printf("record type=%u length=%u\n", h.msg_type, h.length);
        }
        off += h.length;
    }
    return status;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s ENDPOINT ACCOUNT INSTRUMENT SIDE PRICE_RAW QTY_RAW\n", argv[0]);
        return 1;
    }
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0, rcvtimeo = 5000;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sock, ZMQ_RCVTIMEO, &rcvtimeo, sizeof rcvtimeo);
    if (use_curve(sock) != 0) {
        zmq_close(sock);
        zmq_ctx_term(ctx);
        return 1;
    }
    if (zmq_connect(sock, argv[1]) != 0) {
        fprintf(stderr, "connect %s: %s\n", argv[1], zmq_strerror(zmq_errno()));
        return 1;
    }

    oms_new_order_t o;
    uint64_t request_id = 1;
    oms_wire_init(&o, OMS_MSG_NEW_ORDER, /*seq*/ 1, request_id, now_ns());
    o.account = (uint32_t)strtoul(argv[2], NULL, 10);
    o.strategy = 1;
    o.instrument = (uint32_t)strtoul(argv[3], NULL, 10);
    o.side = (uint8_t)strtoul(argv[4], NULL, 10);
    o.price = strtoll(argv[5], NULL, 10);
    o.quantity = strtoll(argv[6], NULL, 10);
    o.order_type = o.price ? OMS_ORDER_TYPE_LIMIT : OMS_ORDER_TYPE_MARKET;
    o.tif = OMS_TIF_GTC;
    o.client_order_id = (uint64_t)now_ns();
    if (zmq_send(sock, &o, sizeof o, 0) != (int)sizeof o) {
        fprintf(stderr, "send: %s\n", zmq_strerror(zmq_errno()));
        return 1;
    }
    printf("sent NEW_ORDER %zu bytes request_id=%" PRIu64 "\n", sizeof o, request_id);

    static unsigned char buf[65536];
    int rc = zmq_recv(sock, buf, sizeof buf, 0);
    int status = 1;
    if (rc < 0) {
        fprintf(stderr, "no answer: %s\n", zmq_strerror(zmq_errno()));
    } else if ((size_t)rc > sizeof buf) {
        fprintf(stderr, "reply larger than %zu bytes\n", sizeof buf);
    } else {
        status = print_reply(buf, (size_t)rc, request_id);
    }
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return status;
}
