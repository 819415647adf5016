/*
 * test_cuda_parity.c - every op of the "cuda" table against the "ref" table: the whole of
 * tests/numerics/test_backend_parity.c (fresh seeded random inputs, sizes 1, odd, > 100000;
 * every op, in-place aliasing, gemm transposes and leading dimensions, losses, optimizers,
 * dropout bit for bit, im2col/col2im and pooling) run with the CUDA table in place of cpu.
 *
 * Its tolerances are per element (|got - want| <= atol + rtol |want|, rtol <= 1e-5), which
 * bounds the NMSE far below the 1e-7 required of fp32 device ops. Exit 77 without a device.
 */
#include "gpu_util.h"

#define LP_PARITY_TABLE gpu_cuda_or_skip()
#include "../numerics/test_backend_parity.c"
