/*
 * reqid.h — request ids: random UUIDv4 strings, as Lambda's.
 */
#ifndef HEARTH_REQID_H
#define HEARTH_REQID_H

#define REQID_LEN 36

/* Writes a fresh id ("0f8fad5b-d9cb-469f-a165-70867728950e") and a NUL. */
void reqid_new(char out[REQID_LEN + 1]);

#endif
