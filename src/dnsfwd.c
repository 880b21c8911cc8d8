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
 * Owns: the listening socket, the timer, and per query in flight a copy of
 * it and its upstream socket. Must never: block the loop (every send is a
 * try-send; a datagram that cannot leave now is dropped, DNS clients
 * retry), hold more than max_inflight queries or queue anything else,
 * deliver a datagram to an asker that is not the answer from the resolver
 * asked with the id it was given, or read a worker's datagram past the
 * header fields it checks.
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
    uv_udp_t listen;
    uv_timer_t timer;
    struct sockaddr_storage resolvers[DNSFWD_MAX_RESOLVERS];
    int nresolvers;
    uint16_t port;
    unsigned timeout_ms, max_inflight;
    unsigned held;    /* queries allocated, those still closing included */
    unsigned handles; /* open handles: listen, timer and one per query held */
    query *head, *tail;
    dnsfwd_stats st;
    bool stopping;
    uint16_t per_asker[ASKER_BUCKETS]; /* queries waiting, by asker_bucket() */
    /* A warning per episode or per minute, not per query: */
    uint64_t full_warned_at, share_warned_at;
    bool resolver_warned[DNSFWD_MAX_RESOLVERS]; /* until it can be asked again */
    uint16_t ids[ID_POOL];
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

/* Asks resolvers from..n-1 in turn until one can be asked. */
static bool ask(dnsfwd *f, const struct sockaddr_storage *asker, uint16_t asker_id,
                const uint8_t *pkt, size_t len, int from)
{
    for (int i = from; i < f->nresolvers; i++) {
        int rc = launch(f, asker, asker_id, pkt, len, i);
        if (rc == 0) {
            f->resolver_warned[i] = false;
            return true;
        }
        if (!f->resolver_warned[i]) {
            f->resolver_warned[i] = true;
            dlog_warn("dns: cannot ask resolver %d: %s", i + 1, uv_strerror(rc));
        }
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

/* --- starting and stopping --- */

/* The bound address of UDP socket fd, which must have a port. */
static int bound_addr(int fd, struct sockaddr_storage *ss)
{
    int type = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
        return -errno;
    len = sizeof *ss;
    if (type != SOCK_DGRAM)
        return -EINVAL;
    if (getsockname(fd, (struct sockaddr *)ss, &len) < 0)
        return -errno;
    if (!addr_usable(ss))
        return -EINVAL;
    return 0;
}

static int bind_socket(const struct sockaddr *addr)
{
    if (!addr || (addr->sa_family != AF_INET && addr->sa_family != AF_INET6))
        return -EINVAL;
    int fd = socket(addr->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
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
    int fd = listen_fd >= 0 ? listen_fd : bind_socket(listen_addr);
    if (fd < 0)
        return fd;
    struct sockaddr_storage bound;
    int rc = bound_addr(fd, &bound);
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
