/*
 * dnsfwd.c — the workers' DNS forwarder (dnsfwd.h).
 *
 * Every query is sent upstream from a socket of its own, made for it and
 * connected to the resolver asked. Why not one shared socket per address
 * family: an off-path attacker who wants a forged answer accepted must
 * then guess the random 16-bit id and also the random ephemeral source
 * port the kernel gave that one socket (about 15 more bits), within the
 * timeout; and because the socket is connected, the kernel itself drops
 * datagrams from any other address or port before they reach us. The cost
 * is a socket() and connect() per query and one descriptor per query in
 * flight, which the in-flight limit bounds (the daemon raises its
 * descriptor limit to the hard one). A retry is asked from a fresh socket
 * with a fresh id, so a late answer to the first attempt is not taken.
 *
 * Queries waiting for an answer sit in one list in the order they were
 * sent; all share one timeout, so that is also the order of their
 * deadlines, and one timer serves them all.
 *
 * TCP (see its section) is the same relay over connections, one query at
 * a time per client connection.
 *
 * Owns: the listening sockets, the timer, per UDP query in flight a copy
 * of it and its upstream socket, per TCP client its connection, timer,
 * query and answer, and the upstream connection relaying it. Must never:
 * block the loop (every UDP send is a try-send: a datagram that cannot
 * leave now is dropped, DNS clients retry; a TCP client has one answer
 * queued at most), hold more than max_inflight UDP queries or
 * DNSFWD_MAX_TCP clients, deliver to an asker anything but the answer from
 * the resolver asked with the id it was given, or read a worker's message
 * past the header fields it checks.
 */
#include "dnsfwd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dlog.h"

#define DNS_HEADER    12
#define DATAGRAM      65536 /* room for any UDP payload: nothing arrives cut */
#define ID_POOL       64    /* random ids fetched per getrandom() */
#define ASKER_BUCKETS 1024  /* in-flight counts by asker address */
#define WARN_EVERY_MS 60000

typedef struct query {
    uv_udp_t sock; /* this query's alone, connected to the resolver asked */
    dnsfwd *f;
    struct query *prev, *next; /* in f's waiting list while waiting */
    bool waiting;
    uint64_t deadline; /* uv_now() when the resolver asked is given up */
    int resolver;      /* the index of the resolver asked */
    unsigned bucket;   /* of its asker's address in f->per_asker */
    struct sockaddr_storage asker;
    uint16_t asker_id, id;
    size_t len;
    uint8_t packet[]; /* the query as the asker sent it, with our id */
} query;

struct dnsfwd {
    uv_loop_t *loop;
    struct sockaddr_storage resolvers[DNSFWD_MAX_RESOLVERS];
    int nresolvers;
    unsigned timeout_ms;
    unsigned handles; /* open: the listeners, the timer, each query's and client's */
    bool stopping;
    dnsfwd_stats st;

    /* UDP */
    uv_udp_t listen;
    uint16_t port;
    uv_timer_t timer;   /* the oldest waiting query's deadline */
    query *head, *tail; /* waiting for an answer, oldest first */
    unsigned max_inflight;
    unsigned held;                     /* queries allocated, those closing included */
    uint16_t per_asker[ASKER_BUCKETS]; /* queries waiting, by asker_bucket() */

    /* TCP */
    uv_tcp_t tcp; /* listening, if tcp_on */
    bool tcp_on, tcp_tried;
    struct tcp_client *clients;
    unsigned nclients;
    uint16_t tcp_per_asker[ASKER_BUCKETS]; /* clients, by asker_bucket() */

    /* A warning per episode or per minute, not per query: */
    uint64_t full_warned_at, share_warned_at, tcp_warned_at;
    bool resolver_warned[DNSFWD_MAX_RESOLVERS]; /* until it can be asked again */

    uint16_t ids[ID_POOL]; /* random, used from the end */
    unsigned ids_left;
    uint8_t buf[DATAGRAM]; /* every datagram read, one at a time */
};

/* --- addresses --- */

static socklen_t addr_len(const struct sockaddr *sa)
{
    return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static uint16_t addr_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return ntohs(((const struct sockaddr_in *)sa)->sin_port);
}

static bool addr_is_any(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
}

/* Same family, address and port (a scope id is the kernel's business: the
 * connected socket already matched it). */
static bool addr_same(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family || addr_port(a) != addr_port(b))
        return false;
    if (a->sa_family == AF_INET6)
        return IN6_ARE_ADDR_EQUAL(&((const struct sockaddr_in6 *)a)->sin6_addr,
                                  &((const struct sockaddr_in6 *)b)->sin6_addr);
    return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
           ((const struct sockaddr_in *)b)->sin_addr.s_addr;
}

static bool addr_usable(const struct sockaddr_storage *ss)
{
    const struct sockaddr *sa = (const struct sockaddr *)ss;
    return (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) && addr_port(sa) != 0;
}

/* The bucket counting the queries of the asker at `sa`: its address
 * folded to 10 bits, so that addresses differing only in their last 10
 * bits (workers numbered in one subnet) never share one. The port is left
 * out: a worker has many ports but one address. */
static unsigned asker_bucket(const struct sockaddr *sa)
{
    uint32_t a;
    if (sa->sa_family == AF_INET6) {
        uint32_t w[4];
        memcpy(w, &((const struct sockaddr_in6 *)sa)->sin6_addr, sizeof w);
        a = ntohl(w[0] ^ w[1] ^ w[2] ^ w[3]);
    } else {
        a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
    }
    return (a ^ a >> 10 ^ a >> 20 ^ a >> 30) % ASKER_BUCKETS;
}

/* --- reading resolv.conf --- */

/* `text` (one blank-free word) as an IPv4 or IPv6 address, port 53. */
static bool parse_nameserver(const char *text, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    struct sockaddr_in *in4 = (struct sockaddr_in *)out;
    if (inet_pton(AF_INET, text, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(53);
        return true;
    }
    char host[INET6_ADDRSTRLEN + 1];
    const char *scope = strchr(text, '%');
    size_t n = scope ? (size_t)(scope - text) : strlen(text);
    if (n >= sizeof host)
        return false;
    memcpy(host, text, n);
    host[n] = '\0';
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
        return false;
    if (scope) {
        char *end;
        unsigned long id = strtoul(scope + 1, &end, 10);
        if (scope[1] == '\0' || *end != '\0')
            id = if_nametoindex(scope + 1);
        if (id == 0 || id > UINT32_MAX)
            return false;
        in6->sin6_scope_id = (uint32_t)id;
    }
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(53);
    return true;
}

/* glibc's reading: "nameserver" at the start of the line, then blanks, then
 * the address up to the next blank; whatever follows is ignored. */
static bool parse_line(char *line, struct sockaddr_storage *out)
{
    static const char kw[] = "nameserver";
    if (strncmp(line, kw, sizeof kw - 1) != 0)
        return false;
    char *p = line + sizeof kw - 1;
    if (*p != ' ' && *p != '\t')
        return false;
    p += strspn(p, " \t");
    p[strcspn(p, " \t\r\n")] = '\0';
    return *p && parse_nameserver(p, out);
}

int dnsfwd_read_resolvers(const char *path, struct sockaddr_storage *out, int max)
{
    FILE *fp = fopen(path, "re");
    if (!fp)
        return -errno;
    char line[512];
    int n = 0;
    bool rest_of_long_line = false;
    while (n < max && fgets(line, sizeof line, fp)) {
        bool whole = strchr(line, '\n') || feof(fp);
        /* A line longer than the buffer is no nameserver line: skip all of
         * it, not just its first part. */
        bool skip = rest_of_long_line || !whole;
        rest_of_long_line = !whole;
        if (!skip && parse_line(line, &out[n]))
            n++;
    }
    int err = ferror(fp) ? -EIO : 0;
    fclose(fp);
    return err ? err : n;
}

/* --- ids --- */

/* A fresh query id from the kernel's CSPRNG, fetched ID_POOL at a time.
 * GRND_NONBLOCK: early at boot, before the pool is seeded, the query fails
 * rather than block the loop or get a guessable id. */
static int random_id(dnsfwd *f, uint16_t *id)
{
    if (f->ids_left == 0) {
        ssize_t r = getrandom(f->ids, sizeof f->ids, GRND_NONBLOCK);
        if (r != (ssize_t)sizeof f->ids)
            return r < 0 ? -errno : -EAGAIN;
        f->ids_left = ID_POOL;
    }
    *id = f->ids[--f->ids_left];
    return 0;
}

static uint16_t get_id(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void put_id(uint8_t *p, uint16_t id)
{
    p[0] = (uint8_t)(id >> 8);
    p[1] = (uint8_t)id;
}

/* --- the waiting list and its timer --- */

static void on_timer(uv_timer_t *t);

static void list_add(dnsfwd *f, query *q)
{
    q->prev = f->tail;
    q->next = NULL;
    if (f->tail)
        f->tail->next = q;
    else
        f->head = q;
    f->tail = q;
    q->waiting = true;
    f->st.inflight++;
    f->per_asker[q->bucket]++;
}

static void list_remove(dnsfwd *f, query *q)
{
    if (!q->waiting)
        return;
    if (q->prev)
        q->prev->next = q->next;
    else
        f->head = q->next;
    if (q->next)
        q->next->prev = q->prev;
    else
        f->tail = q->prev;
    q->prev = q->next = NULL;
    q->waiting = false;
    f->st.inflight--;
    f->per_asker[q->bucket]--;
}

/* The timer fires at the oldest deadline; answered queries leave the list
 * without re-arming it, so it may fire for nothing, which is cheap. */
static void arm(dnsfwd *f)
{
    if (f->stopping)
        return;
    if (!f->head) {
        uv_timer_stop(&f->timer);
        return;
    }
    uint64_t now = uv_now(f->loop);
    uint64_t due = f->head->deadline > now ? f->head->deadline - now : 0;
    uv_timer_start(&f->timer, on_timer, due, 0);
}

/* --- handles --- */

static void release(dnsfwd *f)
{
    if (--f->handles == 0)
        free(f);
}

static void on_closed(uv_handle_t *h)
{
    release(h->data);
}

static void on_query_closed(uv_handle_t *h)
{
    query *q = h->data;
    dnsfwd *f = q->f;
    free(q);
    f->held--;
    release(f);
}

/* Done with q: it leaves the list and is freed once its socket closed. */
static void finish(query *q)
{
    list_remove(q->f, q);
    uv_close((uv_handle_t *)&q->sock, on_query_closed);
}

/* --- relaying --- */

static void on_alloc_upstream(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    query *q = h->data;
    *b = uv_buf_init((char *)q->f->buf, sizeof q->f->buf);
}

static void on_upstream(uv_udp_t *h, ssize_t n, const uv_buf_t *b, const struct sockaddr *from,
                        unsigned flags);

/* Connects q's socket to the resolver and sends q's packet on it. */
static int send_upstream(query *q, const struct sockaddr *resolver)
{
    uv_buf_t b = uv_buf_init((char *)q->packet, (unsigned)q->len);
    int rc = uv_udp_connect(&q->sock, resolver);
    if (rc == 0)
        rc = uv_udp_recv_start(&q->sock, on_alloc_upstream, on_upstream);
    if (rc == 0)
        rc = uv_udp_try_send(&q->sock, &b, 1, NULL);
    return rc < 0 ? rc : 0;
}

static void wait_for_answer(dnsfwd *f, query *q)
{
    q->deadline = uv_now(f->loop) + f->timeout_ms;
    bool was_empty = !f->head;
    list_add(f, q);
    if (was_empty)
        arm(f);
}

/* Sends `pkt` to resolver i from a new socket with a new id; the query
 * then waits in the list. */
static int launch(dnsfwd *f, const struct sockaddr_storage *asker, uint16_t asker_id,
                  const uint8_t *pkt, size_t len, int i)
{
    const struct sockaddr *resolver = (const struct sockaddr *)&f->resolvers[i];
    query *q = malloc(sizeof *q + len);
    if (!q)
        return -ENOMEM;
    *q = (query){.f = f,
                 .resolver = i,
                 .bucket = asker_bucket((const struct sockaddr *)asker),
                 .asker = *asker,
                 .asker_id = asker_id,
                 .len = len};
    memcpy(q->packet, pkt, len);
    int rc = random_id(f, &q->id);
    if (rc == 0)
        rc = uv_udp_init_ex(f->loop, &q->sock, resolver->sa_family);
    if (rc < 0) {
        free(q);
        return rc;
    }
    q->sock.data = q;
    f->held++;
    f->handles++;
    put_id(q->packet, q->id);
    rc = send_upstream(q, resolver);
    if (rc < 0) {
        uv_close((uv_handle_t *)&q->sock, on_query_closed);
        return rc;
    }
    wait_for_answer(f, q);
    return 0;
}

/* Warns once when resolver i cannot be asked (no socket, no route), again
 * only after it could be. */
static void note_asked(dnsfwd *f, int i, int rc)
{
    if (rc == 0)
        f->resolver_warned[i] = false;
    else if (!f->resolver_warned[i]) {
        f->resolver_warned[i] = true;
        dlog_warn("dns: cannot ask resolver %d: %s", i + 1, uv_strerror(rc));
    }
}

/* Asks resolvers from..n-1 in turn until one can be asked. */
static bool ask(dnsfwd *f, const struct sockaddr_storage *asker, uint16_t asker_id,
                const uint8_t *pkt, size_t len, int from)
{
    for (int i = from; i < f->nresolvers; i++) {
        int rc = launch(f, asker, asker_id, pkt, len, i);
        note_asked(f, i, rc);
        if (rc == 0)
            return true;
    }
    return false;
}

/* The resolver asked is given up (silent, refused, unreachable): the next
 * one gets the query, or the query is given up. */
static void move_on(query *q)
{
    dnsfwd *f = q->f;
    if (!ask(f, &q->asker, q->asker_id, q->packet, q->len, q->resolver + 1))
        f->st.timeouts++;
    finish(q);
}

static void on_timer(uv_timer_t *t)
{
    dnsfwd *f = t->data;
    uint64_t now = uv_now(f->loop);
    /* Retries join the tail with a later deadline: the loop ends. */
    while (f->head && f->head->deadline <= now)
        move_on(f->head);
    arm(f);
}

static bool is_answer(const query *q, const uint8_t *p, ssize_t n, const struct sockaddr *from,
                      unsigned flags)
{
    const struct sockaddr *resolver = (const struct sockaddr *)&q->f->resolvers[q->resolver];
    return !(flags & UV_UDP_PARTIAL) && from && addr_same(from, resolver) && n >= DNS_HEADER &&
           (p[2] & 0x80) && get_id(p) == q->id;
}

/* The answer goes back as it came (a resolver truncates to the size the
 * query's EDNS asked for), the asker's id restored. */
static void deliver(query *q, uint8_t *p, size_t n)
{
    dnsfwd *f = q->f;
    put_id(p, q->asker_id);
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    int rc = uv_udp_try_send(&f->listen, &b, 1, (const struct sockaddr *)&q->asker);
    if (rc < 0) {
        f->st.dropped++;
        dlog_debug("dns: could not send an answer back: %s", uv_strerror(rc));
        return;
    }
    f->st.answers++;
}

static void on_upstream(uv_udp_t *h, ssize_t n, const uv_buf_t *b, const struct sockaddr *from,
                        unsigned flags)
{
    query *q = h->data;
    if (n == 0 && !from)
        return; /* nothing more to read */
    if (n < 0) {
        /* An ICMP error: nobody serves DNS there, do not wait for it. */
        move_on(q);
        return;
    }
    uint8_t *p = (uint8_t *)b->base;
    if (!is_answer(q, p, n, from, flags)) {
        q->f->st.rejected++;
        return;
    }
    deliver(q, p, (size_t)n);
    finish(q);
}

/* A standard query with one question, no longer than DNSFWD_MAX_QUERY:
 * all a stub resolver sends. */
static bool looks_like_query(const uint8_t *p, ssize_t n)
{
    if (n < DNS_HEADER || n > DNSFWD_MAX_QUERY)
        return false;
    bool qr = p[2] & 0x80;
    unsigned opcode = (p[2] >> 3) & 0x0f;
    return !qr && opcode == 0 && p[4] == 0 && p[5] == 1;
}

static void on_alloc_listen(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    dnsfwd *f = h->data;
    *b = uv_buf_init((char *)f->buf, sizeof f->buf);
}

/* True at most once a minute per *last: a flood must not flood the log. */
static bool may_warn(dnsfwd *f, uint64_t *last)
{
    uint64_t now = uv_now(f->loop);
    if (*last && now - *last < WARN_EVERY_MS)
        return false;
    *last = now ? now : 1;
    return true;
}

/* Room for one more query from `from`: below the limit, and its asker
 * below its share, so that one worker alone cannot shut the others out. */
static bool has_room(dnsfwd *f, const struct sockaddr *from)
{
    if (f->held >= f->max_inflight) {
        if (may_warn(f, &f->full_warned_at))
            dlog_warn("dns: %u queries in flight; dropping more", f->held);
        return false;
    }
    if (f->per_asker[asker_bucket(from)] >= DNSFWD_MAX_PER_ASKER) {
        if (may_warn(f, &f->share_warned_at))
            dlog_warn("dns: a worker has %d queries in flight; dropping more of its",
                      DNSFWD_MAX_PER_ASKER);
        return false;
    }
    return true;
}

static void on_query(uv_udp_t *h, ssize_t n, const uv_buf_t *b, const struct sockaddr *from,
                     unsigned flags)
{
    dnsfwd *f = h->data;
    if (n < 0)
        dlog_debug("dns: reading a query: %s", uv_strerror((int)n));
    if (n < 0 || !from)
        return; /* an error, or nothing more to read */
    f->st.queries++;
    const uint8_t *p = (const uint8_t *)b->base;
    if (!looks_like_query(p, n) || (flags & UV_UDP_PARTIAL) || addr_port(from) == 0 ||
        !has_room(f, from)) {
        f->st.dropped++;
        return;
    }
    struct sockaddr_storage asker = {0};
    memcpy(&asker, from, addr_len(from));
    if (!ask(f, &asker, get_id(p), p, (size_t)n, 0))
        f->st.timeouts++;
}

/* --- TCP (RFC 7766) ---
 *
 * For answers too large for a datagram. A client connection carries one
 * query at a time (reading stops until its answer is written back); the
 * query goes to the resolvers in order, each time over a new connection
 * with a fresh id. Every message is read into a buffer of exactly the size
 * it still needs: a query never exceeds DNSFWD_MAX_QUERY, and an answer
 * (at most 64 KiB) is held once per client. One timer per client bounds
 * whatever it waits for: a whole query, the resolver, or the client
 * reading its answer. */

typedef struct tcp_up tcp_up;

typedef struct tcp_client {
    uv_tcp_t sock;
    uv_timer_t timer;
    uv_write_t write;
    dnsfwd *f;
    struct tcp_client *prev, *next; /* in f->clients */
    tcp_up *up;                     /* relaying its query, if one is */
    unsigned bucket;                /* of its address, as asker_bucket() */
    int handles;                    /* open: sock and timer */
    bool closing;
    uint16_t asker_id;
    size_t have;                      /* bytes of in[] read */
    uint8_t in[2 + DNSFWD_MAX_QUERY]; /* the query, its length first */
    uint8_t *out;                     /* the answer being written back */
} tcp_client;

struct tcp_up {
    uv_tcp_t sock;
    uv_connect_t connect;
    uv_write_t write;
    dnsfwd *f;
    tcp_client *client; /* NULL once let go */
    int resolver;
    uint16_t id;
    size_t have;                       /* bytes of the answer read, its length included */
    uint8_t len[2];                    /* the answer's length, read before answer[] exists */
    uint8_t *answer;                   /* 2 + its length */
    uint8_t out[2 + DNSFWD_MAX_QUERY]; /* the query with our id */
};

static uint16_t msg_len(const uint8_t *prefix)
{
    return get_id(prefix); /* the same big-endian 16 bits */
}

/* A client must send a whole query, or read its answer, within this. */
static uint64_t tcp_idle_ms(const dnsfwd *f)
{
    return 5 * (uint64_t)f->timeout_ms;
}

static void on_client_closed(uv_handle_t *h)
{
    tcp_client *c = h->data;
    dnsfwd *f = c->f;
    if (--c->handles == 0)
        free(c);
    release(f);
}

static void on_up_closed(uv_handle_t *h)
{
    tcp_up *up = h->data;
    dnsfwd *f = up->f;
    free(up->answer);
    free(up);
    release(f);
}

/* Lets go of an upstream connection: its callbacks still to come (a
 * cancelled connect or write) find no client and do nothing. */
static void up_close(tcp_up *up)
{
    if (up->client)
        up->client->up = NULL;
    up->client = NULL;
    uv_close((uv_handle_t *)&up->sock, on_up_closed);
}

static void client_close(tcp_client *c)
{
    dnsfwd *f = c->f;
    if (c->closing)
        return;
    c->closing = true;
    if (c->up) { /* its query will not be answered */
        f->st.inflight--;
        f->st.dropped++;
        up_close(c->up);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        f->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    f->nclients--;
    f->tcp_per_asker[c->bucket]--;
    uv_close((uv_handle_t *)&c->sock, on_client_closed);
    uv_close((uv_handle_t *)&c->timer, on_client_closed);
}

static void on_client_timer(uv_timer_t *t);
static void on_up_connected(uv_connect_t *req, int status);

/* Opens a connection to resolver i for the client's query. */
static int up_start(tcp_client *c, int i)
{
    dnsfwd *f = c->f;
    tcp_up *up = calloc(1, sizeof *up);
    if (!up)
        return -ENOMEM;
    int rc = random_id(f, &up->id);
    if (rc == 0)
        rc = uv_tcp_init(f->loop, &up->sock);
    if (rc < 0) {
        free(up);
        return rc;
    }
    f->handles++;
    up->f = f;
    up->client = c;
    up->resolver = i;
    up->sock.data = up->connect.data = up->write.data = up;
    c->up = up;
    memcpy(up->out, c->in, c->have);
    put_id(up->out + 2, up->id);
    rc = uv_tcp_connect(&up->connect, &up->sock, (const struct sockaddr *)&f->resolvers[i],
                        on_up_connected);
    if (rc < 0)
        up_close(up);
    return rc;
}

/* Asks resolvers from..n-1 in turn; gives the query up past the last. */
static void tcp_ask(tcp_client *c, int from)
{
    dnsfwd *f = c->f;
    for (int i = from; i < f->nresolvers; i++) {
        int rc = up_start(c, i);
        note_asked(f, i, rc);
        if (rc == 0) {
            uv_timer_start(&c->timer, on_client_timer, f->timeout_ms, 0);
            return;
        }
    }
    f->st.inflight--;
    f->st.timeouts++;
    client_close(c);
}

/* The resolver asked failed the query (silent, refused, closed, garbled):
 * the next one gets it. */
static void up_failed(tcp_up *up)
{
    tcp_client *c = up->client;
    int next = up->resolver + 1;
    up_close(up);
    tcp_ask(c, next);
}

static void on_client_timer(uv_timer_t *t)
{
    tcp_client *c = t->data;
    if (c->up)
        up_failed(c->up);
    else
        client_close(c); /* no whole query, or its answer unread, in time */
}

static void on_up_written(uv_write_t *req, int status)
{
    tcp_up *up = req->data;
    if (status < 0 && up->client)
        up_failed(up);
}

static void on_up_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    tcp_up *up = h->data;
    if (!up->answer)
        *b = uv_buf_init((char *)up->len + up->have, (unsigned)(2 - up->have));
    else
        *b = uv_buf_init((char *)up->answer + up->have,
                         (unsigned)(2 + msg_len(up->answer) - up->have));
}

static void client_write(tcp_client *c, uint8_t *answer);

/* A whole answer: the client's, if it is the answer to our query. */
static void up_answered(tcp_up *up)
{
    tcp_client *c = up->client;
    uint8_t *a = up->answer;
    if (!(a[4] & 0x80) || get_id(a + 2) != up->id) {
        c->f->st.rejected++;
        up_failed(up);
        return;
    }
    up->answer = NULL;
    up_close(up);
    c->f->st.inflight--;
    put_id(a + 2, c->asker_id);
    client_write(c, a);
}

/* Its length read: the room for the answer (at most 64 KiB). */
static bool up_got_length(tcp_up *up)
{
    uint16_t n = msg_len(up->len);
    if (n < DNS_HEADER || !(up->answer = malloc(2 + (size_t)n)))
        return false;
    memcpy(up->answer, up->len, 2);
    return true;
}

static void on_up_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    tcp_up *up = s->data;
    if (!up->client || n == 0)
        return;
    if (n < 0) { /* closed or failed before a whole answer */
        up_failed(up);
        return;
    }
    up->have += (size_t)n;
    if (!up->answer && up->have == 2 && !up_got_length(up))
        up_failed(up);
    else if (up->answer && up->have == 2 + (size_t)msg_len(up->answer))
        up_answered(up);
}

static void on_up_connected(uv_connect_t *req, int status)
{
    tcp_up *up = req->data;
    if (!up->client)
        return; /* let go meanwhile */
    uv_buf_t b = uv_buf_init((char *)up->out, (unsigned)(2 + msg_len(up->out)));
    if (status == 0)
        status = uv_write(&up->write, (uv_stream_t *)&up->sock, &b, 1, on_up_written);
    if (status == 0)
        status = uv_read_start((uv_stream_t *)&up->sock, on_up_alloc, on_up_read);
    if (status < 0)
        up_failed(up);
}

static void on_client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    tcp_client *c = h->data;
    size_t need = c->have < 2 ? 2 - c->have : 2 + (size_t)msg_len(c->in) - c->have;
    *b = uv_buf_init((char *)c->in + c->have, (unsigned)need);
}

static void on_client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

/* Ready for the client's next query. */
static void client_next(tcp_client *c)
{
    c->have = 0;
    uv_timer_start(&c->timer, on_client_timer, tcp_idle_ms(c->f), 0);
    if (uv_read_start((uv_stream_t *)&c->sock, on_client_alloc, on_client_read) < 0)
        client_close(c);
}

static void on_client_written(uv_write_t *req, int status)
{
    tcp_client *c = req->data;
    free(c->out);
    c->out = NULL;
    if (status < 0) {
        c->f->st.dropped++;
        client_close(c);
        return;
    }
    c->f->st.answers++;
    client_next(c);
}

static void client_write(tcp_client *c, uint8_t *answer)
{
    c->out = answer;
    uv_buf_t b = uv_buf_init((char *)answer, (unsigned)(2 + msg_len(answer)));
    int rc = uv_write(&c->write, (uv_stream_t *)&c->sock, &b, 1, on_client_written);
    if (rc < 0) {
        on_client_written(&c->write, rc);
        return;
    }
    uv_timer_start(&c->timer, on_client_timer, tcp_idle_ms(c->f), 0);
}

/* A whole query read: relayed if it is one, else the client is closed. */
static void tcp_query(tcp_client *c)
{
    dnsfwd *f = c->f;
    f->st.queries++;
    uv_read_stop((uv_stream_t *)&c->sock);
    uint8_t *q = c->in + 2;
    if (!looks_like_query(q, msg_len(c->in))) {
        f->st.dropped++;
        client_close(c);
        return;
    }
    c->asker_id = get_id(q);
    f->st.inflight++;
    tcp_ask(c, 0);
}

static void on_client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    tcp_client *c = s->data;
    if (n == 0)
        return;
    if (n < 0) { /* the client is done, or gone */
        client_close(c);
        return;
    }
    c->have += (size_t)n;
    if (c->have < 2)
        return;
    uint16_t len = msg_len(c->in);
    if (len < DNS_HEADER || len > DNSFWD_MAX_QUERY) { /* no query: not worth reading */
        c->f->st.queries++;
        c->f->st.dropped++;
        client_close(c);
        return;
    }
    if (c->have == 2 + (size_t)len)
        tcp_query(c);
}

/* Room for one more client at `c`'s address (c itself counted). */
static bool tcp_has_room(tcp_client *c)
{
    dnsfwd *f = c->f;
    if (f->nclients <= DNSFWD_MAX_TCP && f->tcp_per_asker[c->bucket] <= DNSFWD_MAX_TCP_PER_ASKER)
        return true;
    if (may_warn(f, &f->tcp_warned_at))
        dlog_warn("dns: %u TCP clients; refusing more from that address or all", f->nclients - 1);
    return false;
}

static tcp_client *client_new(dnsfwd *f)
{
    tcp_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    uv_tcp_init(f->loop, &c->sock);
    uv_timer_init(f->loop, &c->timer);
    c->f = f;
    c->sock.data = c->timer.data = c->write.data = c;
    c->handles = 2;
    f->handles += 2;
    c->next = f->clients;
    if (f->clients)
        f->clients->prev = c;
    f->clients = c;
    f->nclients++;
    return c;
}

static void on_connection(uv_stream_t *server, int status)
{
    dnsfwd *f = server->data;
    if (status < 0) {
        dlog_debug("dns: accepting a TCP client: %s", uv_strerror(status));
        return;
    }
    /* Not accepting would stall the listener (libuv waits for the accept),
     * so only a failed allocation refuses without accepting. */
    tcp_client *c = client_new(f);
    if (!c) {
        dlog_error("dns: out of memory for a TCP client");
        return;
    }
    struct sockaddr_storage peer = {0};
    int len = sizeof peer;
    int rc = uv_accept(server, (uv_stream_t *)&c->sock);
    if (rc == 0)
        rc = uv_tcp_getpeername(&c->sock, (struct sockaddr *)&peer, &len);
    c->bucket = rc == 0 ? asker_bucket((struct sockaddr *)&peer) : 0;
    f->tcp_per_asker[c->bucket]++;
    if (rc < 0 || !tcp_has_room(c))
        client_close(c);
    else
        client_next(c);
}

/* --- starting and stopping --- */

/* The bound address of socket fd, of `want` type; it must have a port. */
static int bound_addr(int fd, int want, struct sockaddr_storage *ss)
{
    int type = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
        return -errno;
    len = sizeof *ss;
    if (type != want)
        return -EINVAL;
    if (getsockname(fd, (struct sockaddr *)ss, &len) < 0)
        return -errno;
    if (!addr_usable(ss))
        return -EINVAL;
    return 0;
}

static int bind_socket(const struct sockaddr *addr, int type)
{
    if (!addr || (addr->sa_family != AF_INET && addr->sa_family != AF_INET6))
        return -EINVAL;
    int fd = socket(addr->sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* TCP: a restart must not wait for the last connections' TIME_WAIT
     * (TCP listeners still cannot share a port). */
    int on = 1;
    if (type == SOCK_STREAM)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (bind(fd, addr, addr_len(addr)) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

/* A resolver that is the forwarder itself would have every query relayed
 * to itself, forever. */
static bool loops_back(const struct sockaddr_storage *listen, const struct sockaddr_storage *r)
{
    const struct sockaddr *l = (const struct sockaddr *)listen;
    const struct sockaddr *ra = (const struct sockaddr *)r;
    if (l->sa_family != ra->sa_family || addr_port(l) != addr_port(ra))
        return false;
    return addr_is_any(l) || addr_same(l, ra);
}

static int check_resolvers(const struct sockaddr_storage *resolvers, int n,
                           const struct sockaddr_storage *listen)
{
    for (int i = 0; i < n; i++) {
        if (!addr_usable(&resolvers[i]))
            return -EINVAL;
        if (loops_back(listen, &resolvers[i]))
            return -ELOOP;
    }
    return 0;
}

/* Hands fd to the listen handle and starts reading. On failure the handles
 * close on the loop and free f. */
static int listen_on(dnsfwd *f, int fd)
{
    uv_timer_init(f->loop, &f->timer);
    uv_udp_init(f->loop, &f->listen);
    f->timer.data = f->listen.data = f;
    f->handles = 2;
    int rc = uv_udp_open(&f->listen, fd);
    if (rc < 0)
        close(fd); /* not the handle's yet */
    /* uv_udp_open sets SO_REUSEADDR, which would let another socket bind
     * this address and port too and take the workers' queries. */
    int off = 0;
    if (rc == 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &off, sizeof off) < 0)
        rc = -errno;
    if (rc == 0)
        rc = uv_udp_recv_start(&f->listen, on_alloc_listen, on_query);
    if (rc < 0) {
        f->stopping = true;
        uv_close((uv_handle_t *)&f->timer, on_closed);
        uv_close((uv_handle_t *)&f->listen, on_closed);
    }
    return rc;
}

int dnsfwd_start(uv_loop_t *loop, int listen_fd, const struct sockaddr *listen_addr,
                 const struct sockaddr_storage *resolvers, int nresolvers, dnsfwd **out)
{
    int fd = listen_fd >= 0 ? listen_fd : bind_socket(listen_addr, SOCK_DGRAM);
    if (fd < 0)
        return fd;
    struct sockaddr_storage bound;
    int rc = bound_addr(fd, SOCK_DGRAM, &bound);
    if (rc == 0 &&
        (!loop || !out || !resolvers || nresolvers < 1 || nresolvers > DNSFWD_MAX_RESOLVERS))
        rc = -EINVAL;
    if (rc == 0)
        rc = check_resolvers(resolvers, nresolvers, &bound);
    if (rc == 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) /* never into a worker */
        rc = -errno;
    dnsfwd *f = rc == 0 ? calloc(1, sizeof *f) : NULL;
    if (rc == 0 && !f)
        rc = -ENOMEM;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    f->loop = loop;
    memcpy(f->resolvers, resolvers, sizeof *resolvers * (size_t)nresolvers);
    f->nresolvers = nresolvers;
    f->port = addr_port((struct sockaddr *)&bound);
    f->timeout_ms = DNSFWD_TIMEOUT_MS;
    f->max_inflight = DNSFWD_MAX_INFLIGHT;
    rc = listen_on(f, fd);
    if (rc < 0)
        return rc;
    *out = f;
    return 0;
}

int dnsfwd_listen_tcp(dnsfwd *f, int tcp_fd, const struct sockaddr *listen_addr)
{
    int fd = tcp_fd >= 0 ? tcp_fd : bind_socket(listen_addr, SOCK_STREAM);
    if (fd < 0)
        return fd;
    struct sockaddr_storage bound;
    int rc = f->tcp_tried || f->stopping ? -EALREADY : bound_addr(fd, SOCK_STREAM, &bound);
    if (rc == 0)
        rc = check_resolvers(f->resolvers, f->nresolvers, &bound);
    if (rc == 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        rc = -errno;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    f->tcp_tried = true; /* the handle cannot be made twice */
    uv_tcp_init(f->loop, &f->tcp);
    f->tcp.data = f;
    f->handles++;
    rc = uv_tcp_open(&f->tcp, fd);
    if (rc < 0)
        close(fd); /* not the handle's yet */
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&f->tcp, DNSFWD_MAX_TCP, on_connection);
    if (rc < 0) {
        uv_close((uv_handle_t *)&f->tcp, on_closed);
        return rc;
    }
    f->tcp_on = true;
    return 0;
}

uint16_t dnsfwd_port(const dnsfwd *f)
{
    return f->port;
}

void dnsfwd_stop(dnsfwd *f)
{
    if (!f || f->stopping)
        return;
    f->stopping = true;
    while (f->head)
        finish(f->head);
    while (f->clients)
        client_close(f->clients);
    if (f->tcp_on)
        uv_close((uv_handle_t *)&f->tcp, on_closed);
    uv_close((uv_handle_t *)&f->timer, on_closed);
    uv_close((uv_handle_t *)&f->listen, on_closed);
}

void dnsfwd_get_stats(const dnsfwd *f, dnsfwd_stats *st)
{
    *st = f->st;
}

void dnsfwd_set_timeout_ms(dnsfwd *f, unsigned ms)
{
    f->timeout_ms = ms ? ms : 1;
}

void dnsfwd_set_max_inflight(dnsfwd *f, unsigned n)
{
    f->max_inflight = n == 0 ? 1 : n > DNSFWD_MAX_INFLIGHT ? DNSFWD_MAX_INFLIGHT : n;
}
