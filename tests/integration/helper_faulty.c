// Test helper that fails on purpose, to prove the harness's exit check catches it. As a plain
// process: `helper_faulty leak|ubsan|crash|clean`. As a service (in any slot, `--config FILE`):
// a service on the real runtime that leaks a block or crashes on its second tick (config
// "faulty": "leak" or "crash") or exits cleanly ("clean").
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cara/service.h"

static char *volatile s_leak; // dropped on purpose: nothing points at the block afterwards

// Leaks one block (the pointer is overwritten, so LeakSanitizer finds it unreachable).
static void s_leak_once(void) {
    s_leak = malloc(4096);
    if (s_leak)
        memset(s_leak, 0x5a, 4096);
    s_leak = NULL;
}

// Does the named fault. Returns the exit code to use.
static int s_fault(const char *mode) {
    if (strcmp(mode, "leak") == 0) {
        s_leak_once();
        return 0;
    }
    if (strcmp(mode, "ubsan") == 0) {
        volatile int big = INT_MAX;
        int sum = big + 1; // signed overflow: UBSan "runtime error:"
        return sum == 0;
    }
    if (strcmp(mode, "crash") == 0) {
        raise(SIGSEGV);
        return 0;
    }
    return 0;
}

// The fault comes on the second tick, about a second after start: the first tick runs at once,
// before the harness has seen the service healthy, and a crash there is a failed start instead.
static void s_tick(service_t *svc) {
    static int ticks;
    const char *mode = config_str(service_config(svc), "faulty", "clean");
    if (++ticks == 2)
        s_fault(mode);
}

int main(int argc, char **argv) {
    if (argc == 2)
        return s_fault(argv[1]);
    static const migration_t migrations[] = {{"001_faulty.sql", "SELECT 1;"}, {NULL, NULL}};
    service_spec_t spec = {.name = "intake", .migrations = migrations, .tick = s_tick};
    return service_main(argc, argv, &spec);
}
