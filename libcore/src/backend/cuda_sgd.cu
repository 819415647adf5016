/*
 * cuda_sgd.cu - one SGD step with momentum (PyTorch's torch.optim.SGD, dampening 0) over n
 * parameters, the float loop of cpu.c:
 *   g = grad + wd p;  buf = mu buf + g;  p -= lr (nesterov ? g + mu buf : buf)   (mu > 0)
 *   p -= lr (grad + wd p)                                                          (mu = 0)
 *
 * Launch: one element per thread, LP_CU_THREADS per block, grid-stride.
 */
#include "backend/cuda_common.cuh"

__global__ void k_sgd(size_t n, float lr, float wd, float mu, int nesterov, float *p,
                      const float *g, float *buf)
{
    LP_CU_FOR(i, n)
    {
        if (mu > 0) {
            float gi = g[i] + wd * p[i];
            float b = mu * buf[i] + gi;
            buf[i] = b;
            p[i] -= lr * (nesterov ? gi + mu * b : b);
        } else {
            p[i] -= lr * (g[i] + wd * p[i]);
        }
    }
}

extern "C" cudaError_t lp_cu_sgd(cudaStream_t s, size_t n, float lr, float wd, float mu,
                                 int nesterov, float *p, const float *g, float *buf)
{
    if (n)
        k_sgd<<<lp_cu_grid_for(n, LP_CU_THREADS), LP_CU_THREADS, 0, s>>>(n, lr, wd, mu, nesterov, p,
                                                                         g, buf);
    return LP_CU_LAUNCHED();
}
