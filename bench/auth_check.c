/*
 * bench/auth_check.c — what one token check costs, alone: auth_check() on a
 * live token (glob "*" and a glob that needs fnmatch), on an unknown token
 * (a miss: it also asks sqlite whether another process changed the
 * tokens), and on a request without a header. Run by bench/auth_cost.sh.
 *
 * Usage: auth_check [N]   (default 1000000 checks per case)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "registry.h"

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Runs n checks of `header` for invoke on "team-a-web"; ns per check. */
static double per_check(auth *a, const char *header, long n, auth_verdict want)
{
    const auth_token *who;
    double t0 = now_ns();
    for (long i = 0; i < n; i++)
        if (auth_check(a, header, AUTH_SCOPE_INVOKE, "team-a-web", &who) != want) {
            fprintf(stderr, "auth_check: unexpected verdict\n");
            exit(1);
        }
    return (now_ns() - t0) / (double)n;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    registry *reg;
    auth *a;
    char dir[] = "/tmp/hearth-auth-check.XXXXXX", path[64];
    if (!mkdtemp(dir))
        return 2;
    snprintf(path, sizeof path, "%s/hearth.db", dir);
    int rc = registry_open(path, &reg);
    if (rc == 0 && auth_open(reg, false, &a) < 0)
        rc = -1;
    char cleanup[128];
    snprintf(cleanup, sizeof cleanup, "rm -rf %s", dir);
    if (rc < 0) {
        system(cleanup);
        return 2;
    }
    char all[AUTH_SECRET_LEN + 1], glob[AUTH_SECRET_LEN + 1];
    registry_token t;
    auth_spec s1 = {.name = "all", .scopes = 1u << AUTH_SCOPE_INVOKE};
    auth_spec s2 = {.name = "glob", .scopes = 1u << AUTH_SCOPE_INVOKE, .functions = "team-a-*"};
    if (auth_create(a, &s1, all, &t) < 0 || auth_create(a, &s2, glob, &t) < 0)
        return 2;
    /* a realistic number of other tokens in the map */
    for (int i = 0; i < 100; i++) {
        char name[32], secret[AUTH_SECRET_LEN + 1];
        snprintf(name, sizeof name, "other-%d", i);
        auth_spec s = {.name = name, .scopes = 1u << AUTH_SCOPE_READ};
        if (auth_create(a, &s, secret, &t) < 0)
            return 2;
    }
    char h_all[64], h_glob[64], h_bad[64];
    snprintf(h_all, sizeof h_all, "Bearer %s", all);
    snprintf(h_glob, sizeof h_glob, "Bearer %s", glob);
    snprintf(h_bad, sizeof h_bad, "Bearer hth_%043d", 0);
    per_check(a, h_all, n / 10, AUTH_OK); /* warm the caches */
    printf("auth_check, %ld checks per case, 102 tokens cached:\n", n);
    printf("  live token, functions \"*\"        %7.0f ns\n", per_check(a, h_all, n, AUTH_OK));
    printf("  live token, functions \"team-a-*\" %7.0f ns\n", per_check(a, h_glob, n, AUTH_OK));
    printf("  unknown token (401)               %7.0f ns\n",
           per_check(a, h_bad, n / 10, AUTH_BAD_TOKEN));
    printf("  no header (401)                   %7.0f ns\n", per_check(a, NULL, n, AUTH_NO_TOKEN));
    auth_free(a);
    registry_close(reg);
    return system(cleanup) == 0 ? 0 : 1;
}
