/*
 * seed_spawn_msg.c — writes tests/fuzz/corpus/spawn_msg/: spawn messages
 * as the daemon encodes them (spawnmsg_encode), for a few specs. Not built
 * by CMake; from the repository's root:
 *   cc -D_GNU_SOURCE -Iinclude -iquote src tests/fuzz/tools/seed_spawn_msg.c \
 *      src/spawn_msg.c src/validate.c $(pkg-config --cflags --libs jansson) \
 *      -o /tmp/seed_spawn_msg && /tmp/seed_spawn_msg tests/fuzz/corpus/spawn_msg
 */
#include <stdio.h>
#include <stdlib.h>

#include "spawn_msg.h"

static void put(const char *dir, const char *name, const sandbox_spec *spec, uint8_t bits)
{
    static char buf[SPAWNMSG_MAX];
    size_t len = 0;
    if (spawnmsg_encode(spec, bits, buf, &len) < 0)
        exit(1);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f))
        exit(1);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    const char *py[] = {"/usr/bin/python3", "-u", "/var/runtime/bootstrap.py", NULL};
    const char *env[] = {"HEARTH_HANDLER=handler.handler", "PATH=/usr/bin:/bin", NULL};
    const char *secrets[] = {"db-password", "api-key", NULL};
    sandbox_spec s = {.argv = py,
                      .envp = env,
                      .code_dir = "/tmp/hearth-fuzz-code/fn/1",
                      .uid = 100001,
                      .gid = 100001,
                      .memory_bytes = 128u << 20,
                      .max_open_files = 256,
                      .pids_max = 64,
                      .cpu_millis = 1000,
                      .hostname = "fn",
                      .isolate = true,
                      .secrets_fd = -1};
    put(argv[1], "python", &s, 0);
    s.secrets = secrets;
    put(argv[1], "secrets", &s, SPAWNMSG_SECRETS);
    s.secrets = NULL;
    s.prebuilt = true;
    s.code_dir = "/tmp/hearth-fuzz-code";
    put(argv[1], "prebuilt", &s, 0);
    s.prebuilt = false;
    s.host_network = true;
    s.uid = 0;
    s.gid = 0;
    s.code_dir = "/etc";
    put(argv[1], "greedy", &s, 0x07 | SPAWNMSG_CG_MEMORY);
    const char *node[] = {"/usr/bin/node", "/var/runtime/bootstrap.js", NULL};
    const char *none[] = {NULL};
    sandbox_spec n = {.argv = node,
                      .envp = none,
                      .code_dir = "/tmp/x/../../etc",
                      .hostname = "UPPER case",
                      .egress = true,
                      .secrets_fd = -1};
    put(argv[1], "node_bad", &n, 0);
    return 0;
}
