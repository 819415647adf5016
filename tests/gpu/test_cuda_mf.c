/*
 * test_cuda_mf.c - the recommender on the "cuda" table: the whole of
 * tests/numerics/test_mf_table.c run with device "cuda": implicit-ALS factors after 3 sweeps
 * match the CPU solver's (NMSE < 1e-7, reasons at TOL_ALS_NMSE) and repeat bit for bit; every
 * als_solve row satisfies its normal equations (relative residual < 1e-5) and a singular system
 * is LP_ENUMERIC naming its row; BPR in both device modes (lock-free Hogwild, deterministic
 * mini-batches) reaches the CPU solver's held-out AUC within 0.03; two --deterministic runs are
 * bit-identical; deterministic bpr_epoch matches ref's mini-batch epoch (NMSE < 1e-9).
 * Exit 77 without a device.
 */
#include "gpu_util.h"

#define LP_MF_TABLE "cuda"
#define LP_MF_TABLE_IS_DEVICE 1
#define LP_MF_TABLE_SETUP() ((void)gpu_cuda_or_skip())
#include "../numerics/test_mf_table.c"
