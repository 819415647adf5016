/*
 * test_cuda_transformer.c - the transformer ops of the "cuda" table (layernorm_forward,
 * softmax_rows, gather_rows) against the "ref" table: the whole of
 * tests/numerics/test_backend_transformer.c (seeded random shapes, masks shared by attention
 * groups, in-place aliasing, hand-computed values, argument errors, a bad gather index
 * reported before anything is written) run with the CUDA table in place of cpu.
 * Exit 77 without a device.
 */
#include "gpu_util.h"

#define LP_TRANSFORMER_TABLE gpu_cuda_or_skip()
#include "../numerics/test_backend_transformer.c"
