/*
 * burstwin.h — the busiest second of the last minute: a count of events
 * per second in a ring of WINDOW seconds, for sizing the pools of
 * pre-built sandboxes by the cold starts their runtime had lately. Pure:
 * the caller passes the time in whole seconds (of a monotonic clock).
 */
#ifndef HEARTH_BURSTWIN_H
#define HEARTH_BURSTWIN_H

#include <stdint.h>

#define BURSTWIN_SECONDS 60

typedef struct burstwin {
    uint16_t per_second[BURSTWIN_SECONDS]; /* saturating */
    uint64_t second;                       /* the second last written or read */
} burstwin;

/* One event at second `now` (never earlier than the last call's). */
void burstwin_note(burstwin *w, uint64_t now);

/* The most events in one second among the last BURSTWIN_SECONDS, `now`'s
 * included. */
unsigned burstwin_peak(burstwin *w, uint64_t now);

#endif
