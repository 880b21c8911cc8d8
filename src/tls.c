/*
 * tls.c — the served certificate and key, as GnuTLS structures.
 *
 * Each load makes a "pair" (certificate chain + private key). The newest
 * pair is current; GnuTLS keeps pointers to the pair it was handed for
 * the whole life of the session, without copying, so an older pair is
 * freed only once no connection that could hold it is open: pairs are kept
 * oldest first, each counting the connections opened while it was
 * current, and a connection can only hold the pair current when it opened
 * or a newer one. So the oldest pairs are freed while they are retired
 * and count no open connection.
 *
 * Owns: reading and checking the PEM files, the pairs, their lifetimes.
 * Must never: hand-roll any crypto (GnuTLS does all of it), or free a
 * pair a connection may still use.
 */
#include "tls.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#define TLS_MAX_CHAIN 16

struct pair {
    struct pair *next; /* newer */
    gnutls_pcert_st pcert[TLS_MAX_CHAIN];
    unsigned npcert;
    gnutls_privkey_t key;
    unsigned live; /* connections opened while this was current */
};

struct tls_certs {
    struct pair *oldest, *current;
    char describe[512];
};

/* GnuTLS's callback has no user data: the one tls_certs of the process. */
static tls_certs *the_certs;

static int fail(char *err, size_t errlen, const char *file, const char *what, int gnutls_rc)
{
    snprintf(err, errlen, "%s: %s%s%s", file, what, gnutls_rc ? ": " : "",
             gnutls_rc ? gnutls_strerror(gnutls_rc) : "");
    return -1;
}

static void pair_free(struct pair *p)
{
    for (unsigned i = 0; i < p->npcert; i++)
        gnutls_pcert_deinit(&p->pcert[i]);
    if (p->key)
        gnutls_privkey_deinit(p->key);
    free(p);
}

/* GnuTLS's own check that the key is the certificate's (it answers
 * GNUTLS_E_CERTIFICATE_KEY_MISMATCH otherwise). */
static int check_match(const gnutls_datum_t *cert, const gnutls_datum_t *key, const char *file,
                       char *err, size_t errlen)
{
    gnutls_certificate_credentials_t cred;
    if (gnutls_certificate_allocate_credentials(&cred) < 0)
        return fail(err, errlen, file, "out of memory", 0);
    int rc = gnutls_certificate_set_x509_key_mem2(cred, cert, key, GNUTLS_X509_FMT_PEM, NULL, 0);
    gnutls_certificate_free_credentials(cred);
    return rc < 0 ? fail(err, errlen, file, "the key does not go with the certificate", rc) : 0;
}

static void describe(tls_certs *t, const gnutls_datum_t *cert)
{
    gnutls_x509_crt_t crt;
    unsigned char fp[32];
    size_t fplen = sizeof fp;
    gnutls_datum_t dn = {0};
    if (gnutls_x509_crt_init(&crt) < 0)
        return;
    if (gnutls_x509_crt_import(crt, cert, GNUTLS_X509_FMT_PEM) == 0 &&
        gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, fp, &fplen) == 0 &&
        gnutls_x509_crt_get_dn3(crt, &dn, 0) == 0) {
        char hex[65];
        for (size_t i = 0; i < fplen && i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", fp[i]);
        time_t exp = gnutls_x509_crt_get_expiration_time(crt);
        struct tm tm;
        char when[32] = "?";
        if (gmtime_r(&exp, &tm))
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        snprintf(t->describe, sizeof t->describe, "sha256 %s, subject %.200s, expires %s", hex,
                 (const char *)dn.data, when);
    }
    gnutls_free(dn.data);
    gnutls_x509_crt_deinit(crt);
}

/* Reads both files into a new pair. NULL with err on any fault. */
static struct pair *load(tls_certs *t, const char *cert_file, const char *key_file, char *err,
                         size_t errlen)
{
    gnutls_datum_t cert = {0}, key = {0};
    struct pair *p = calloc(1, sizeof *p);
    int rc = 0;
    if (!p)
        fail(err, errlen, cert_file, "out of memory", 0);
    else if ((rc = gnutls_load_file(cert_file, &cert)) < 0)
        fail(err, errlen, cert_file, "cannot read the certificate", rc);
    else if ((rc = gnutls_load_file(key_file, &key)) < 0)
        fail(err, errlen, key_file, "cannot read the key", rc);
    else if ((p->npcert = TLS_MAX_CHAIN,
              rc = gnutls_pcert_list_import_x509_raw(p->pcert, &p->npcert, &cert,
                                                     GNUTLS_X509_FMT_PEM, 0)) < 0 ||
             p->npcert == 0)
        p->npcert = 0, fail(err, errlen, cert_file, "not a PEM certificate", rc);
    else if ((rc = gnutls_privkey_init(&p->key)) < 0 ||
             (rc = gnutls_privkey_import_x509_raw(p->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0)
        fail(err, errlen, key_file, "not a PEM private key (without a passphrase)", rc);
    else if (check_match(&cert, &key, key_file, err, errlen) == 0)
        rc = 1;
    if (rc == 1)
        describe(t, &cert);
    gnutls_free(cert.data);
    if (key.data) {
        gnutls_memset(key.data, 0, key.size);
        gnutls_free(key.data);
    }
    if (rc != 1 && p) {
        pair_free(p);
        p = NULL;
    }
    return p;
}

/* Frees the oldest pairs that are retired and hold no connection. */
static void collect(tls_certs *t)
{
    while (t->oldest != t->current && t->oldest->live == 0) {
        struct pair *p = t->oldest;
        t->oldest = p->next;
        pair_free(p);
    }
}

int tls_open(const char *cert_file, const char *key_file, tls_certs **out, char *err, size_t errlen)
{
    tls_certs *t = calloc(1, sizeof *t);
    if (!t)
        return fail(err, errlen, cert_file, "out of memory", 0);
    struct pair *p = load(t, cert_file, key_file, err, errlen);
    if (!p) {
        free(t);
        return -1;
    }
    t->oldest = t->current = p;
    the_certs = t;
    *out = t;
    return 0;
}

int tls_reload(tls_certs *t, const char *cert_file, const char *key_file, char *err, size_t errlen)
{
    char before[sizeof t->describe];
    memcpy(before, t->describe, sizeof before);
    struct pair *p = load(t, cert_file, key_file, err, errlen);
    if (!p) {
        memcpy(t->describe, before, sizeof before);
        return -1;
    }
    t->current->next = p;
    t->current = p;
    collect(t);
    return 0;
}

const char *tls_describe(const tls_certs *t)
{
    return t->describe;
}

int tls_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                 const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                 gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *key)
{
    (void)session, (void)req_ca_rdn, (void)nreqs, (void)pk_algos, (void)pk_algos_length;
    if (!the_certs)
        return -1;
    struct pair *p = the_certs->current;
    *pcert = p->pcert;
    *pcert_length = p->npcert;
    *key = p->key;
    return 0;
}

void *tls_conn_open(tls_certs *t)
{
    t->current->live++;
    return t->current;
}

void tls_conn_close(tls_certs *t, void *token)
{
    struct pair *p = token;
    if (!p)
        return;
    p->live--;
    collect(t);
}

void tls_close(tls_certs *t)
{
    if (!t)
        return;
    while (t->oldest) {
        struct pair *p = t->oldest;
        t->oldest = p->next;
        pair_free(p);
    }
    if (the_certs == t)
        the_certs = NULL;
    free(t);
}
