/*
 * test_cuda_batchnorm.c - batchnorm_forward / batchnorm_backward of the "cuda" table against
 * the "ref" table: the whole of tests/numerics/test_backend_batchnorm.c (seeded random NCHW
 * inputs in train and eval mode, in-place aliasing, running averages, argument errors) run
 * with the CUDA table in place of cpu. Its per-element tolerances (rtol 2e-5) bound the NMSE
 * far below the 1e-7 asked of fp32 device ops. Exit 77 without a device.
 */
#include "gpu_util.h"

#define LP_BATCHNORM_TABLE gpu_cuda_or_skip()
#include "../numerics/test_backend_batchnorm.c"
