/*
 * burstwin.c — the busiest second of the last minute (burstwin.h).
 *
 * Owns nothing but the ring. Must never: read a clock (the caller's time
 * makes it testable), or let a second older than the window count.
 */
#include "burstwin.h"

/* Clears the seconds that passed since the last call: their buckets now
 * stand for seconds that have not happened yet. */
static void roll(burstwin *w, uint64_t now)
{
    uint64_t gap = now > w->second ? now - w->second : 0;
    for (uint64_t i = 1; i <= gap && i <= BURSTWIN_SECONDS; i++)
        w->per_second[(w->second + i) % BURSTWIN_SECONDS] = 0;
    if (now > w->second)
        w->second = now;
}

void burstwin_note(burstwin *w, uint64_t now)
{
    roll(w, now);
    uint16_t *b = &w->per_second[w->second % BURSTWIN_SECONDS];
    if (*b < UINT16_MAX)
        (*b)++;
}

unsigned burstwin_peak(burstwin *w, uint64_t now)
{
    roll(w, now);
    unsigned peak = 0;
    for (int i = 0; i < BURSTWIN_SECONDS; i++)
        if (w->per_second[i] > peak)
            peak = w->per_second[i];
    return peak;
}
