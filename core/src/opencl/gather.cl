// One pull step of one tier: next[v] += Σ send[u] · w over v's in-edges from that tier, in CSR order.
// Contraction into fused multiply-adds is off, so each term is rounded as on the CPU.
#pragma OPENCL FP_CONTRACT OFF

__kernel void gather(__global const uint *offsets, __global const uint *sources, __global const float *weights,
                     __global const float *send, __global float *next, const uint n) {
    const uint v = get_global_id(0);
    if (v >= n) {
        return;
    }
    float acc = next[v];
    const uint end = offsets[v + 1];
    for (uint e = offsets[v]; e < end; e++) {
        acc += send[sources[e]] * weights[e];
    }
    next[v] = acc;
}
