#include "cara/uuid.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "cara/timeutil.h"

char *uuid_new(char out[UUID_STR_LEN]) {
    unsigned char b[16];
    randombytes_buf(b, sizeof b);
    // Version 7: the first 48 bits are the Unix time in milliseconds, so new ids go to the right
    // end of every index on them (outbox event ids, each consumer's inbox, referral ids) instead
    // of a random page; 74 bits stay random.
    uint64_t ms = (uint64_t)(time_now_us() / 1000);
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (8 * (5 - i)));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x70);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, UUID_STR_LEN,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
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
