/*
 * test_cuda_nn_grad.c - finite-difference checks of the whole network's loss gradient ON THE
 * DEVICE: tests/numerics/test_nn_grad.c (every parameter, each loss and activation, with and
 * without dropout) run on the ref and cuda tables with its tolerances. Exit 77 (before main,
 * from a constructor) when there is no device.
 */
#include "gpu_util.h"

__attribute__((constructor)) static void skip_without_device(void)
{
    gpu_cuda_or_skip();
}

#define LP_NN_GRAD_TABLE "cuda"
#include "../numerics/test_nn_grad.c"
