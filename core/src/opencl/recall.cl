// Whole recalls on the device (docs/spec.md §3, §19). The spreading state of `lanes` cues lives in
// lane-interleaved arrays: entry `v * lanes + lane` is node v of cue `lane`, so the work-items of one
// node are neighbours, read that node's in-edges once between them, and read `send` coalesced. Every
// kernel takes one work-item per (node, lane); `lanes` is a power of two dividing the work-group
// size, so a work-group holds whole nodes and item `lid` works on lane `lid % lanes`.
//
// Arithmetic is the CPU's, term by term (contraction into fused multiply-adds is off): a gather
// adds a tier's in-edge terms in CSR order (source id, then insertion order), tiers hot to cold.
#pragma OPENCL FP_CONTRACT OFF
#pragma OPENCL EXTENSION cl_khr_int64_base_atomics : enable

#define UNREACHED 255
// `shift` is log2(lanes): entry `gid` is node `gid >> shift`, lane `gid & (lanes - 1)`.

// Per-lane counters of one depth: nodes fired per tier [0, 3), their out-edges per tier [3, 6), and
// the activation delivered by the depth's finish [6], in units of 2^-30.
#define COUNTERS 7
#define DELIVERED_SCALE 1073741824.0f
// The mass is summed in units of 2^-40 (the CPU's scale; exact for activations >= 2^-17).
#define MASS_SCALE 1099511627776.0f

// Sum each of the `count` values of every work-item over the work-group, per lane: afterwards
// `scratch[c * size + l]` holds lane l's sum of value c, for l < lanes. `scratch` holds `count`
// values per work-item. Every work-item of the group must call it (it holds barriers).
static void reduce_per_lane(const ulong *values, const uint count, const uint lanes, __local ulong *scratch) {
    const uint lid = get_local_id(0);
    const uint size = get_local_size(0);
    for (uint c = 0; c < count; c++) {
        scratch[c * size + lid] = values[c];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = size / 2; s >= lanes; s >>= 1) {
        if (lid < s) {
            for (uint c = 0; c < count; c++) {
                scratch[c * size + lid] += scratch[c * size + lid + s];
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}

// Seeds in: x0 = A = the seed's activation, hops 0. Seeds are unique within a lane.
__kernel void seed(const uint count, const uint shift, __global const uint *nodes, __global const uint *lane_of,
                   __global const float *activations, __global float *current, __global float *activation,
                   __global uchar *hops) {
    const size_t i = get_global_id(0);
    if (i >= count) {
        return;
    }
    const size_t j = ((size_t)nodes[i] << shift) + lane_of[i];
    current[j] = activations[i];
    activation[j] = activations[i];
    hops[j] = 0;
}

// One pass over every (node, lane). With `finish`: x_{d+1} = min(1, next), A and hops updated, `next`
// cleared, the delivered activation counted. With `mark`: the frontier of the next depth is published
// in `send` (x · decay, 0 elsewhere) and counted per tier. `fired` holds the depth tag (depth + 1) at
// which a node first fired, so a marking can be redone with more tiers exhausted: a node the redone
// marking rejects loses the tag this depth gave it.
__kernel void advance(const uint n, const uint shift, const uint finish, const uint mark, const uchar hop,
                   const uchar tag, const float threshold, const float decay, const uint max_fan_out,
                   const uint reverberate, __global const uchar *exhausted, __global const uint *degree,
                   __global const uchar *tier, __global float *next, __global float *current,
                   __global float *activation, __global uchar *hops, __global uchar *fired, __global float *send,
                   __global ulong *counters, __local ulong *scratch) {
    const size_t gid = get_global_id(0);
    const uint lanes = 1u << shift;
    const uint lane = get_local_id(0) & (lanes - 1);
    const size_t v = gid >> shift;
    ulong count[COUNTERS] = {0, 0, 0, 0, 0, 0, 0};
    if (v < n) {
        float x;
        if (finish) {
            x = fmin(next[gid], 1.0f);
            next[gid] = 0.0f;
            current[gid] = x;
            if (x > 0.0f) {
                count[6] = max((uint)(x * DELIVERED_SCALE), 1u);
                activation[gid] = fmin(activation[gid] + x, 1.0f);
                if (hops[gid] == UNREACHED) {
                    hops[gid] = hop;
                }
            }
        } else {
            x = current[gid];
        }
        if (mark) {
            const uint t = tier[v];
            const uint d = degree[v];
            const uchar f = fired[gid];
            float y = 0.0f;
            if (x > 0.0f && x >= threshold && (max_fan_out == 0 || d <= max_fan_out)
                && (reverberate || f == 0 || f == tag) && !((exhausted[lane] >> t) & 1)) {
                y = x * decay;
                if (f == 0) {
                    fired[gid] = tag;
                }
                count[t] = 1;
                count[3 + t] = d;
            } else if (f == tag) {
                fired[gid] = 0;
            }
            send[gid] = y;
        }
    }
    reduce_per_lane(count, COUNTERS, lanes, scratch);
    const uint lid = get_local_id(0);
    if (lid < lanes) {
        for (uint c = 0; c < COUNTERS; c++) {
            const ulong sum = scratch[c * get_local_size(0) + lid];
            if (sum != 0) {
                atom_add(&counters[lid * COUNTERS + c], sum);
            }
        }
    }
}

// One tier's pull: next[v] += Σ send[u] · w over v's in-edges from that tier, in CSR order.
__kernel void gather(const uint n, const uint shift, __global const uint *offsets, __global const uint *sources,
                     __global const float *weights, __global const float *send, __global float *next) {
    const size_t gid = get_global_id(0);
    const size_t v = gid >> shift;
    if (v >= n) {
        return;
    }
    const uint lane = gid & ((1u << shift) - 1);
    float acc = next[gid];
    const uint end = offsets[v + 1];
    for (uint e = offsets[v]; e < end; e++) {
        acc += send[((size_t)sources[e] << shift) + lane] * weights[e];
    }
    next[gid] = acc;
}

// Results out: every seed and every node with A > 0 and A >= threshold, as its order key (activation
// descending, then id ascending, in one integer) and hops, appended to its lane's region of
// `capacity` entries; the mass (Σ A over non-seeds) per lane as a 128-bit sum, `mass[2 l]` the low
// word and `mass[2 l + 1]` the carries (2^40 units a node overflow 64 bits past 2^24 of mass).
__kernel void collect(const uint n, const uint shift, const float threshold, const ulong capacity,
                      __global const float *activation, __global const uchar *hops, __global uint *found,
                      __global ulong *keys, __global uchar *key_hops, __global ulong *mass,
                      __local ulong *scratch) {
    const size_t gid = get_global_id(0);
    const uint lanes = 1u << shift;
    const uint lane = get_local_id(0) & (lanes - 1);
    const size_t v = gid >> shift;
    ulong units = 0;
    if (v < n) {
        const float a = activation[gid];
        const uchar h = hops[gid];
        if (a > 0.0f) {
            if (h != 0) {
                units = (ulong)(a * MASS_SCALE);
            }
            if (h == 0 || a >= threshold) {
                const size_t slot = lane * capacity + atomic_inc(&found[lane]);
                keys[slot] = ((ulong)(0xFFFFFFFFu - as_uint(a)) << 32) | (ulong)v;
                key_hops[slot] = h;
            }
        }
    }
    reduce_per_lane(&units, 1, lanes, scratch);
    const uint lid = get_local_id(0);
    if (lid < lanes && scratch[lid] != 0) {
        const ulong sum = scratch[lid];  // a work-group's sum: at most 64 · 2^40
        const ulong before = atom_add(&mass[2 * lid], sum);
        if (before + sum < before) {
            atom_inc(&mass[2 * lid + 1]);
        }
    }
}
