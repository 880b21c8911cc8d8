/*
 * reqid.c — request ids. A xoshiro256** generator seeded once from
 * getrandom() keeps id generation off the syscall path; ids need to be
 * unique and unguessable enough for log lookups, not secret.
 */
#include "reqid.h"

#include <stdint.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static uint64_t state[4];
static int seeded;

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t next64(void)
{
    uint64_t result = rotl(state[1] * 5, 7) * 9;
    uint64_t t = state[1] << 17;
    state[2] ^= state[0];
    state[3] ^= state[1];
    state[1] ^= state[2];
    state[0] ^= state[3];
    state[2] ^= t;
    state[3] = rotl(state[3], 45);
    return result;
}

static void seed(void)
{
    if (getrandom(state, sizeof state, 0) != (ssize_t)sizeof state) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        state[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
        state[1] = (uint64_t)ts.tv_sec | 1;
        state[2] = 0x9e3779b97f4a7c15ull;
        state[3] = 0xbf58476d1ce4e5b9ull;
    }
    seeded = 1;
}

void reqid_new(char out[REQID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    if (!seeded)
        seed();
    uint8_t b[16];
    uint64_t a = next64(), c = next64();
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(a >> (8 * i));
        b[8 + i] = (uint8_t)(c >> (8 * i));
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    int o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}
