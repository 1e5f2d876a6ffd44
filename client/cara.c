// `cara`: the command-line client for police, provider, triage, finance and operator staff.
//   cara [--config FILE] [--request-id ID] COMMAND [ARGS...]
// The configuration is --config FILE, else $CARA_CLIENT_CONFIG, else var/etc/client.json
// (see cli.h). Exit codes: 0 success, 2 validation error, 1 any other failure.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cara/log.h"
#include "cara/uuid.h"
#include "cli.h"

// The command table: one line per area, `{name, cmd_<area>, usage}`. Each area lives in its
// own client/cmd_<area>.c and is declared in cli.h (or at the top of this file).
static const cli_command_t s_commands[] = {
    // --- operators (client/cmd_keys.c, cmd_health.c, cmd_deadletter.c, cmd_fetch.c) ---
    {"keys", cmd_keys,
     "keys new --role R --org O --out FILE [--keyring RING] [--name N] [--force]\n"
     "       keys revoke KEY_OR_NAME [--keyring RING]\n"
     "       keys list [--keyring RING]"},
    {"health", cmd_health, "health SERVICE"},
    {"status", cmd_status, "status [--json]"},
    {"deadletter", cmd_deadletter, "deadletter list|replay [ID] --service S"},
    {"fetch", cmd_fetch, "fetch SERVICE [--after N] [--max M]"},
    // --- service areas: add one line per area below (referral, outcomes, triage, cohort,
    //     booking, attendance, contact, victim, cases, contract, invoice, training, national) ---
    {"referral", cmd_referral,
     "referral submit FILE.json [--json] | show ID | amend ID FILE.json --reason R\n"
     "       referral withdraw ID --reason-code caution_rescinded|error|other --reason R\n"
     "       referral rejected [--after ID] [--limit N]"},
    {"outcomes", cmd_outcomes, "outcomes [--after N] [--max M]"},

    {"triage", cmd_area,
     "triage decide --referral_id ID --decision approve|return [--pathway P] [--reason R]\n"
     "       triage needs --referral_id ID --json FILE | overdue | show --referral_id ID\n"
     "       triage alerts [--since YYYY-MM-DD]"},
    {"cohort", cmd_area,
     "cohort create --cohort_type T --town X --part_a_date D --part_b_date D [--capacity N]\n"
     "       cohort list | cancel --cohort_id ID --reason R"},
    {"booking", cmd_area,
     "booking book --referral_id ID [--cohort_id ID] | cancel --referral_id ID --reason R\n"
     "       booking shortfall"},
    {"attendance", cmd_area,
     "attendance record --cohort_id ID --part A|B --entries '[{\"referral_id\": ..., "
     "\"status\": \"attended\"}]'"},
    {"contact", cmd_area, "contact record --referral_id ID --channel C --outcome O [--at T]"},
    {"victim", cmd_area,
     "victim record --referral_id ID --kind K [--notes N] | list --referral_id ID"},
    {"cases", cmd_area,
     "cases [--status open|booked|completed|non_compliant|withdrawn] [--at_risk true]"},
    {"contract", cmd_area,
     "contract add FILE.json | vary --contract_id C --delivery_cap_pence N --reason R\n"
     "       contract status --contract_id C"},
    {"training", cmd_area,
     "training record --contract_id C --facilitators N --actual_cost_pence P --delivered_on D"},
    {"invoice", cmd_invoice,
     "invoice run --period YYYY-MM | list [--contract_id C] [--period P] | show NUMBER\n"
     "       invoice export --format json|csv [--contract_id C] [--period P]"},
    {"national", cmd_area,
     "national export --period 2025Q2 [--format json|csv|html] [--publish true]"},
    // --- end of the service areas ---
    {NULL, NULL, NULL},
};

static void s_usage(FILE *out) {
    fprintf(out, "usage: cara [--config FILE] [--request-id ID] COMMAND [ARGS...]\n\n");
    for (const cli_command_t *c = s_commands; c->name; c++)
        fprintf(out, "  cara %s\n", c->usage);
}

int main(int argc, char **argv) {
    const char *config_path = NULL;
    const char *request_id = NULL;
    char **args = calloc((size_t)argc + 1, sizeof *args);
    int n = 0;
    int rc = CLI_FAIL;
    cli_t *cli = NULL;
    // A reader that closes the pipe (`cara fetch ... | head`) is a write error (EPIPE), handled
    // like any other: exit 1, and fetch/outcomes still print the `last` cursor written.
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        perror("cara: signal");
        free(args);
        return CLI_FAIL;
    }
    if (!args)
        return CLI_FAIL;
    // Global options may appear anywhere; everything else goes to the command.
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "--request-id") == 0) &&
            i + 1 < argc) {
            if (strcmp(argv[i], "--config") == 0)
                config_path = argv[i + 1];
            else
                request_id = argv[i + 1];
            i++;
        } else {
            args[n++] = argv[i];
        }
    }
    if (n == 0 || strcmp(args[0], "help") == 0 || strcmp(args[0], "--help") == 0 ||
        strcmp(args[0], "-h") == 0) {
        s_usage(n == 0 ? stderr : stdout);
        rc = n == 0 ? CLI_FAIL : CLI_OK;
        goto cleanup;
    }
    log_init("cara", log_level_parse(getenv("CARA_LOG_LEVEL") ? getenv("CARA_LOG_LEVEL") : "warn"));
    const cli_command_t *command = NULL;
    for (const cli_command_t *c = s_commands; c->name; c++)
        if (strcmp(c->name, args[0]) == 0)
            command = c;
    if (!command) {
        fprintf(stderr, "cara: unknown command \"%s\"\n", args[0]);
        s_usage(stderr);
        goto cleanup;
    }
    if (cli_flag(n, args, "--help")) {
        printf("usage: cara %s\n", command->usage);
        rc = CLI_OK;
        goto cleanup;
    }
    if (request_id && !uuid_valid(request_id)) {
        fprintf(stderr, "cara: --request-id must be a UUID (a retry is recognised by it)\n");
        goto cleanup;
    }
    cli = cli_new(config_path, request_id);
    if (!cli)
        goto cleanup;
    cli_set_argv(cli, argc, argv);
    rc = command->run(cli, n, args);
cleanup:
    cli_destroy(&cli);
    free(args);
    return rc;
}
