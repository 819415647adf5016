/*
 * test_cuda_fault.c - an asynchronous device fault surfaces as LP_EDEVICE carrying CUDA's own
 * error string at the next sync, and nothing aborts. A kernel is launched on a pointer that is
 * not device memory; the launch itself succeeds (the fault happens later on the device), so
 * the op returns LP_OK and be->sync reports the fault. The CUDA context is unusable after an
 * illegal access, hence this test runs alone in its own process. Exit 77 without a device.
 */
#include "gpu_util.h"

static void test_async_fault(void **state)
{
    (void)state;
    const lp_backend *be = gpu_cuda_or_skip();
    lp_err err;
    lp_err_clear(&err);
    float *bogus = (float *)(uintptr_t)0x1000; /* never a device allocation */
    lp_status st = be->fill(be, 1 << 20, 1.0f, bogus, &err);
    if (st == LP_OK)
        st = be->sync(be, &err);
    printf("fault: %s\n", err.msg);
    assert_int_equal(st, LP_EDEVICE);
    assert_non_null(strstr(err.msg, "cuda"));
    assert_non_null(strstr(err.msg, "illegal") ? strstr(err.msg, "illegal")
                                               : strstr(err.msg, "invalid"));
}

int main(void)
{
    gpu_cuda_or_skip();
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_async_fault)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
