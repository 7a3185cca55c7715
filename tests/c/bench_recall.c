/* C-side latency of the 5-node cycle recall: the array path (axonal_engine_recall_seeds) and the JSON
 * path (axonal_engine_recall). Usage: bench_recall [iterations]. Prints p50/p99 of each. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "axonal.h"

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *name, double *samples, int n) {
    qsort(samples, (size_t)n, sizeof *samples, by_value);
    printf("| %s | %.2f µs | %.2f µs |\n", name, samples[n / 2] / 1e3, samples[n * 99 / 100] / 1e3);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 200000;
    if (n < 100) n = 100;
    const uint32_t src[] = {0, 1, 2, 3, 4}, dst[] = {1, 2, 3, 4, 0};
    const float w[] = {1, 1, 1, 1, 1};
    axonal_graph_builder *b;
    axonal_graph *g;
    axonal_engine *e;
    if (axonal_graph_builder_new(5, &b) || axonal_graph_builder_add_edges(b, src, dst, w, 5) || axonal_graph_builder_build(b, &g) ||
        axonal_engine_new(g, "{\"spreading\": {\"max_depth\": 3}}", &e)) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    double *samples = malloc(sizeof *samples * (size_t)n);
    uint32_t seed = 0, nodes[8], flags;
    float acts[8];
    size_t count, len;
    char *json;
    for (int i = 0; i < n / 10; i++) axonal_engine_recall_seeds(e, &seed, NULL, 1, nodes, acts, 8, &count, &flags);
    for (int i = 0; i < n; i++) {
        double t = now_ns();
        axonal_engine_recall_seeds(e, &seed, NULL, 1, nodes, acts, 8, &count, &flags);
        samples[i] = now_ns() - t;
    }
    printf("| C call (%d calls) | p50 | p99 |\n|---|---|---|\n", n);
    report("axonal_engine_recall_seeds", samples, n);
    for (int i = 0; i < n; i++) {
        double t = now_ns();
        axonal_engine_recall(e, "{\"seeds\": [0]}", &json, &len);
        axonal_string_free(json);
        samples[i] = now_ns() - t;
    }
    report("axonal_engine_recall (JSON in and out)", samples, n);
    free(samples);
    axonal_engine_free(e);
    axonal_graph_free(g);
    return count == 4 ? 0 : 1;
}
