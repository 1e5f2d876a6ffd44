#include "cara/uuid.h"

#include <ctype.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cara/timeutil.h"

// Random bytes are drawn from the system a pool at a time (one getrandom call for 64 ids, not
// one per id). The pool is per thread; nothing here forks.
#define S_POOL 1024
static _Thread_local unsigned char s_pool[S_POOL];
static _Thread_local size_t s_pool_left;

static void s_random(unsigned char *out, size_t n) {
    if (s_pool_left < n) {
        randombytes_buf(s_pool, sizeof s_pool);
        s_pool_left = sizeof s_pool;
    }
    memcpy(out, s_pool + sizeof s_pool - s_pool_left, n);
    sodium_memzero(s_pool + sizeof s_pool - s_pool_left, n); // each byte is handed out once
    s_pool_left -= n;
}

char *uuid_new(char out[UUID_STR_LEN]) {
    unsigned char b[16];
    s_random(b, sizeof b);
    // Version 7: the first 48 bits are the Unix time in milliseconds, so new ids go to the right
    // end of every index on them (outbox event ids, each consumer's inbox, referral ids) instead
    // of a random page; 74 bits stay random.
    uint64_t ms = (uint64_t)(time_now_us() / 1000);
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (8 * (5 - i)));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x70);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 0x0f];
    }
    *o = '\0';
    return out;
}

bool uuid_valid(const char *text) {
    if (!text || strlen(text) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (text[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char)text[i])) {
            return false;
        }
    }
    return true;
}
