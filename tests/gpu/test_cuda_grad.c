/*
 * test_cuda_grad.c - finite-difference gradient checks of every backward op ON THE DEVICE:
 * tests/numerics/test_backend_grad.c (activations, the three losses, bias, dropout with a fixed
 * mask, max and average pooling, the im2col/col2im adjoint identity) run on the ref and cuda
 * tables, with its tolerances. Exit 77 without a device.
 */
#include "gpu_util.h"

#define LP_GRAD_TABLE gpu_cuda_or_skip()
#include "../numerics/test_backend_grad.c"
