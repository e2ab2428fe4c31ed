/* test_vecmath.c — exp_softmax() against exp() in double over its whole
 * domain (every 31st float of [−86.6, 0], 3.6e7 values), plus the edges:
 * exp(0) = 1 exactly, clamping below −86.6, NaN in → NaN out. */
#include <stdint.h>
#include <string.h>
#include "check.h"
#include "vecmath.h"

/* Distance in units in the last place of the float nearest to `exact`. */
static double ulps(float got, double exact) {
    float near = (float)exact;
    float next = nextafterf(near, INFINITY);
    return fabs((double)got - exact) / ((double)next - (double)near);
}

int main(void) {
    /* negative floats in bit order: 0x80000000 (−0) up to −86.6 */
    float lo = -86.6f;
    uint32_t first = 0x80000000u, last;
    memcpy(&last, &lo, sizeof last);
    double worst = 0.0;
    float worst_x = 0.0f;
    long count = 0;
    for (uint32_t bits = first; bits <= last; bits += 31) {
        float x;
        memcpy(&x, &bits, sizeof x);
        double u = ulps(exp_softmax(x), exp((double)x));
        if (u > worst) { worst = u; worst_x = x; }
        count++;
    }
    CHECK(worst <= 1.5, "exp_softmax is %.2f ulp off at x = %.9g", worst, worst_x);
    CHECK(count > 36000000, "only %ld values checked", count);
    printf("exp_softmax: %ld values, worst %.3f ulp at %.9g\n", count, worst, worst_x);

    CHECK(exp_softmax(0.0f) == 1.0f, "exp(0) = %.9g", exp_softmax(0.0f));
    CHECK(exp_softmax(-0.0f) == 1.0f, "exp(-0) = %.9g", exp_softmax(-0.0f));
    float tiny = exp_softmax(-1000.0f);
    CHECK(tiny > 0.0f && tiny < 3e-38f && isnormal(tiny), "exp(-1000) = %.9g", tiny);
    CHECK(exp_softmax(-INFINITY) == tiny, "exp(-inf) = %.9g", exp_softmax(-INFINITY));
    CHECK(isnan(exp_softmax(NAN)), "exp(NaN) = %.9g", exp_softmax(NAN));
    CHECK(isnan(exp_softmax(-NAN)), "exp(-NaN) = %.9g", exp_softmax(-NAN));
    /* a vectorized loop gives the same values as the scalar calls */
    float xs[1000], ys[1000];
    for (int i = 0; i < 1000; i++) xs[i] = -0.0866f * i;
    #pragma omp simd
    for (int i = 0; i < 1000; i++) ys[i] = exp_softmax(xs[i]);
    int differ = 0;
    for (int i = 0; i < 1000; i++) differ += ys[i] != exp_softmax(xs[i]);
    CHECK(differ == 0, "%d of 1000 vectorized results differ from scalar ones", differ);
    return test_done("vecmath");
}
