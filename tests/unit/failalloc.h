/*
 * failalloc.h — a failing allocator for the unit tests: the Nth
 * allocation from now fails, as it would when memory runs out.
 *
 * Test executables are linked with -Wl,--wrap for malloc, calloc,
 * realloc, strdup, strndup, asprintf and vasprintf (CMakeLists.txt), so
 * every call from the test and from libhearthcore.a goes through here;
 * jansson's allocations come here too (json_set_alloc_funcs). sqlite's,
 * libarchive's and libc's own internal allocations do not.
 *
 * failalloc_run() is the loop: run the scenario with the 1st allocation
 * failing, then the 2nd, ... until a run completes without reaching the
 * failure. Each run must return 0 (it coped: e.g. a cache that degrades)
 * or -ENOMEM (a clean error), never crash; the ASan build shows any leak
 * on either path.
 */
#ifndef HEARTH_TEST_FAILALLOC_H
#define HEARTH_TEST_FAILALLOC_H

#include <stdbool.h>

/* Fail the nth allocation from now (1 = the next one); 0 disarms. */
void failalloc_arm(unsigned long nth);

/* True when the armed failure has happened since failalloc_arm. */
bool failalloc_fired(void);

/* One run of a scenario: 0, or -ENOMEM when an allocation failed and the
 * code under test said so. It frees all it made on either path. */
typedef int (*failalloc_scenario)(void *ud);

/* Runs `fn` for n = 1, 2, ... (at most `max_runs`; 0 = 100000) until a
 * run does not reach the failing allocation, then once more unarmed. Fails
 * the cmocka test if a run returns anything but 0 or -ENOMEM, if an
 * unarmed run fails, or if the scenario never completes. Returns how many
 * allocation sites it failed. */
unsigned long failalloc_run(const char *name, failalloc_scenario fn, void *ud,
                            unsigned long max_runs);

#endif
