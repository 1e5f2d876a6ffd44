#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cara/log.h"
#include "cara/request_log.h"
#include "cara/timeutil.h"
#include "intake_commands.h"

void intake_rules_for(service_t *svc, const char *force, intake_rules_t *rules) {
    char path[128];
    snprintf(path, sizeof path, "forces.%.64s.deadline_weeks", force ? force : "");
    int64_t weeks = config_int(service_config(svc), path, INTAKE_DEFAULT_DEADLINE_WEEKS);
    rules->deadline_weeks = weeks > 0 && weeks <= 104 ? (int)weeks : INTAKE_DEFAULT_DEADLINE_WEEKS;
    rules->now_us = time_now_us();
}

int intake_request_hash(const ProtobufCMessage *content, char hash[65]) {
    uint8_t *data = NULL;
    size_t len = 0;
    if (envelope_encode_message(content, &data, &len) != 0)
        return -1;
    request_log_hash(data, len, hash);
    free(data);
    return 0;
}

int intake_request_check(service_t *svc, const char *key, const ProtobufCMessage *content,
                         int claim, char hash[65], reply_t *reply) {
    if (intake_request_hash(content, hash) != 0)
        return -1;
    int found = claim ? request_log_claim(service_db(svc), key, hash, reply)
                      : request_log_find(service_db(svc), key, hash, reply);
    if (found == REQUEST_LOG_CONFLICT) {
        reply_status(reply, CARA__REPLY__STATUS__CONFLICT,
                     "this request was already made with different content");
        return 2;
    }
    if (found < 0) {
        reply_status(reply, CARA__REPLY__STATUS__UNAVAILABLE, "database unavailable; retry");
        return -1;
    }
    return found == REQUEST_LOG_REPEAT ? 1 : 0;
}
