/*
 * process.c - process-level start-up helpers for main() (see base.h). Library code never calls
 * these: they replace the running program.
 */
#include "lepton/base.h"

#include <stdlib.h>
#include <unistd.h>

void lp_process_passive_openmp(char **argv)
{
    if (getenv("OMP_WAIT_POLICY"))
        return;
    if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc): carry on with the spinning default */
}
