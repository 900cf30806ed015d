// dot4_probe.cl: checks that a 4-way int8 dot-product path of dot4.h builds *and* computes
// the right answer on this device (a driver may advertise an extension it cannot compile).
//
//   dot4_probe   out[i] = dot4(a[i], b[i], c[i]) for i < n
//
// Macros: USE_DP4A or USE_KHR_DOT, as dot4.h reads them (neither: the portable path).
#include "dot4.h"

kernel void dot4_probe(const global int* a, const global int* b, const global int* c,
                       global int* out, const int n)
{
    const int i = get_global_id(0);
    if (i < n)
        out[i] = dot4(a[i], b[i], c[i]);
}
