/*
 * process.c - process-level start-up helpers for main() (see base.h). Library code never calls
 * these: they replace the running program.
 */
#include "lepton/base.h"

#include <cblas.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* OpenBLAS core names of the kernels without AVX: what Debian's DYNAMIC_ARCH build (0.3.21)
 * falls back to on an x86-64 CPU model it does not know (e.g. family 6 model 207). */
static bool generic_core(const char *name)
{
    static const char *const old[] = {"Prescott", "Core2",  "Penryn",    "Dunnington",
                                      "Nehalem",  "Atom",   "Katmai",    "Coppermine",
                                      "Northwood", "Banias", "Opteron",  "Barcelona",
                                      "Bobcat",   "Opteron_SSE3"};
    for (size_t i = 0; name && i < sizeof old / sizeof old[0]; i++)
        if (strcmp(name, old[i]) == 0)
            return true;
    return false;
}

/* The OpenBLAS core type this CPU's instructions allow when OpenBLAS itself picked a generic
 * one; NULL to leave OpenBLAS's choice alone. */
static const char *better_coretype(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (!generic_core(openblas_get_corename()))
        return NULL;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return "Haswell";
#endif
    return NULL;
}

void lp_process_tune(char **argv)
{
    if (getenv("LEPTON_REEXEC")) /* this is the re-executed program: never loop */
        return;
    bool changed = false;
    if (!getenv("OMP_WAIT_POLICY"))
        changed |= setenv("OMP_WAIT_POLICY", "passive", 1) == 0;
    if (!getenv("OPENBLAS_THREAD_TIMEOUT") && !getenv("GOTO_THREAD_TIMEOUT"))
        changed |= setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1) == 0;
    const char *core = getenv("OPENBLAS_CORETYPE") ? NULL : better_coretype();
    if (core)
        changed |= setenv("OPENBLAS_CORETYPE", core, 1) == 0;
    if (!changed || setenv("LEPTON_REEXEC", "1", 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc): carry on with the defaults the program loaded with */
    unsetenv("LEPTON_REEXEC");
}

bool lp_cli_help_requested(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "help") == 0)
        return true;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return true;
    return false;
}
