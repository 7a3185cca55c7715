/* The complete example of docs/c-api.md: build a graph, recall, read the result and the health. */
#include <stdio.h>
#include <stdlib.h>

#include <axonal.h>

static void die(const char *what, axonal_status status) {
    char message[512];
    size_t written = 0;
    axonal_last_error_message(message, sizeof message, &written);
    fprintf(stderr, "%s failed: %s: %s\n", what, axonal_status_str(status), message);
    exit(1);
}

int main(void) {
    /* doctor(0) → nurse(1), doctor(0) → hospital(2), nurse(1) → hospital(2) */
    const uint32_t src[] = {0, 0, 1}, dst[] = {1, 2, 2};
    const float weight[] = {0.9f, 0.6f, 0.8f};
    axonal_graph_builder *builder = NULL;
    axonal_graph *graph = NULL;
    axonal_engine *engine = NULL;
    axonal_status s;

    if ((s = axonal_graph_builder_new(3, &builder))) die("builder_new", s);
    if ((s = axonal_graph_builder_add_edges(builder, src, dst, weight, 3))) die("add_edges", s);
    if ((s = axonal_graph_builder_set_label(builder, 2, "hospital"))) die("set_label", s);
    if ((s = axonal_graph_builder_set_tier(builder, 2, 2 /* cold */))) die("set_tier", s);
    if ((s = axonal_graph_builder_build(builder, &graph))) die("build", s); /* consumes builder */
    if ((s = axonal_engine_new(graph, "{\"spreading\": {\"max_depth\": 2}}", &engine))) die("engine_new", s);
    axonal_graph_free(graph); /* the engine keeps its own reference */

    /* Hot path: arrays in, arrays out, no JSON. */
    uint32_t seed = 0, nodes[8], flags = 0;
    float activations[8];
    size_t count = 0;
    if ((s = axonal_engine_recall_seeds(engine, &seed, NULL, 1, nodes, activations, 8, &count, &flags))) die("recall_seeds", s);
    for (size_t i = 0; i < count; i++) printf("node %u activation %.3f\n", nodes[i], activations[i]);
    if (flags & AXONAL_RECALL_FLAG_FALLBACK) printf("answered by the fallback\n");

    /* JSON in, JSON out; strings from the library are freed with axonal_string_free. */
    char *json = NULL;
    size_t len = 0;
    if ((s = axonal_engine_recall(engine, "{\"seeds\": [[0, 1.0]], \"k\": 2}", &json, &len))) die("recall", s);
    printf("%s\n", json);
    axonal_string_free(json);
    if ((s = axonal_engine_health_json(engine, &json, &len))) die("health_json", s);
    printf("%s\n", json);
    axonal_string_free(json);

    axonal_engine_free(engine); /* stops and joins the engine's threads */
    return 0;
}
