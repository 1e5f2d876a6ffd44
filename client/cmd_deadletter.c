// `cara deadletter list|replay [ID] --service S`: the poison events a service's consumers set
// aside, and replaying them once the cause is fixed (operator role only).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

// cara deadletter list --service S | replay [ID] --service S (no ID: every one not replayed).
int cmd_deadletter(cli_t *cli, int argc, char **argv) {
    const char *sub = argc > 1 ? argv[1] : "";
    const char *service = cli_opt(argc, argv, "--service", NULL);
    Cara__DeadLetterReplay req = CARA__DEAD_LETTER_REPLAY__INIT;
    if (!service || (strcmp(sub, "list") != 0 && strcmp(sub, "replay") != 0)) {
        fprintf(stderr, "usage: cara deadletter list|replay [ID] --service S\n");
        return CLI_FAIL;
    }
    if (strcmp(sub, "list") == 0) {
        req.id = -1;  // the protocol: id < 0 lists, 0 replays all, > 0 replays one
    } else if (argc > 2 && argv[2][0] != '-') {
        char *end = NULL;
        errno = 0;
        long long id = strtoll(argv[2], &end, 10);
        if (*end || errno != 0 || id <= 0) {
            cli_print_json(json_pack("{s:s, s:[{s:s, s:s}]}", "status", "INVALID", "errors",
                                     "field", "id", "reason", "must be a positive integer"));
            return CLI_INVALID;
        }
        req.id = id;
    } else {
        req.id = 0;
    }
    Cara__Reply *reply = cli_call(cli, service, &req.base);
    if (!reply)
        return CLI_FAIL;
    int rc = cli_print_reply(reply, &cara__dead_letter_list__descriptor);
    cara__reply__free_unpacked(reply, NULL);
    return rc;
}
