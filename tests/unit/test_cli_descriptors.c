// Every message of every .proto is in the client's descriptor table (client/cli.c), so that
// `cara fetch` decodes every stream event and `cara` shows every reply as JSON. Compares the
// generated headers in build/gen with the table's text.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Reads a whole file (malloc'd).
static char *s_slurp(const char *path) {
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    assert_true(size >= 0);
    rewind(f);
    char *text = malloc((size_t)size + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)size, f), (size_t)size);
    text[size] = '\0';
    fclose(f);
    return text;
}

static void test_every_message_in_table(void **state) {
    (void)state;
    char *table = s_slurp("client/cli.c");
    glob_t g;
    assert_int_equal(glob("build/gen/*.pb-c.h", 0, NULL, &g), 0);
    assert_true(g.gl_pathc >= 4);
    int checked = 0, missing = 0;
    const char *marker = "extern const ProtobufCMessageDescriptor ";
    for (size_t i = 0; i < g.gl_pathc; i++) {
        char *header = s_slurp(g.gl_pathv[i]);
        for (char *p = header; (p = strstr(p, marker)); p++) {
            char name[160], entry[170];
            if (sscanf(p + strlen(marker), "%150[a-z0-9_]", name) != 1)
                continue;
            snprintf(entry, sizeof entry, "&%s,", name);
            checked++;
            if (!strstr(table, entry)) {
                printf("# missing in client/cli.c s_descriptors: %s (%s)\n", name,
                       g.gl_pathv[i]);
                missing++;
            }
        }
        free(header);
    }
    globfree(&g);
    free(table);
    assert_true(checked > 40);
    assert_int_equal(missing, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_message_in_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
