/*
 * tls.h — the certificate and key HTTPS is served with, re-read on
 * SIGHUP without dropping a connection. The gateway hands tls_retrieve to
 * libmicrohttpd (MHD_OPTION_HTTPS_CERT_CALLBACK): GnuTLS asks it for the
 * certificate during each handshake, so a new connection gets whatever was
 * loaded last.
 */
#ifndef HEARTH_TLS_H
#define HEARTH_TLS_H

#include <stddef.h>
#include <gnutls/abstract.h>

typedef struct tls_certs tls_certs;

/* Loads the PEM certificate (chain) and key and checks that they belong
 * together. Only one tls_certs per process (GnuTLS's callback takes no
 * user data). Returns 0, or -1 with why in err. */
int tls_open(const char *cert_file, const char *key_file, tls_certs **out, char *err,
             size_t errlen);

/* Loads them again: new handshakes get the new pair, connections made
 * before keep theirs. On failure (-1, why in err) the old pair stays. */
int tls_reload(tls_certs *t, const char *cert_file, const char *key_file, char *err, size_t errlen);

/* "sha256 fingerprint, subject, expiry" of what is served now. */
const char *tls_describe(const tls_certs *t);

/* GnuTLS's certificate callback (serves the current pair). */
gnutls_certificate_retrieve_function2 tls_retrieve;

/* A connection opened / closed: pairs stay alive while a connection that
 * may have been handed them is open. tls_conn_open returns a token for
 * tls_conn_close. */
void *tls_conn_open(tls_certs *t);
void tls_conn_close(tls_certs *t, void *token);

/* Frees everything; every connection must be closed. Accepts NULL. */
void tls_close(tls_certs *t);

#endif
