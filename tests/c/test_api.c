/* The C ABI end to end: worked examples, JSON documents, callbacks, bad input, concurrency. */
#define _DEFAULT_SOURCE
#include <math.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "axonal.h"
#include "check.h"

static char last_error[1024];

static const char *error_text(void) {
    size_t written = 0;
    axonal_last_error_message(last_error, sizeof last_error, &written);
    return last_error;
}

static axonal_graph *graph_of(uint32_t n, const uint32_t *src, const uint32_t *dst, const float *w, size_t m) {
    axonal_graph_builder *b = NULL;
    axonal_graph *g = NULL;
    if (axonal_graph_builder_new(n, &b) != AXONAL_STATUS_OK) return NULL;
    if (axonal_graph_builder_add_edges(b, src, dst, w, m) != AXONAL_STATUS_OK) {
        axonal_graph_builder_free(b);
        return NULL;
    }
    if (axonal_graph_builder_build(b, &g) != AXONAL_STATUS_OK) return NULL;
    return g;
}

static axonal_graph *cycle5(void) {
    static const uint32_t src[] = {0, 1, 2, 3, 4}, dst[] = {1, 2, 3, 4, 0};
    static const float w[] = {1, 1, 1, 1, 1};
    return graph_of(5, src, dst, w, 5);
}

static axonal_engine *engine_of(const axonal_graph *g, const char *config) {
    axonal_engine *e = NULL;
    axonal_status s = axonal_engine_new(g, config, &e);
    CHECK(s == AXONAL_STATUS_OK, "engine_new: %s", error_text());
    return e;
}

/* Parse a JSON document the library returned, and free the string. */
static cJSON *take_json(char *text) {
    cJSON *json = cJSON_Parse(text);
    axonal_string_free(text);
    return json;
}

static double number_at(const cJSON *json, const char *a, const char *b) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(json, a);
    if (b) x = cJSON_GetObjectItemCaseSensitive(x, b);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

static void test_versions(void) {
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", AXONAL_VERSION_MAJOR, AXONAL_VERSION_MINOR, AXONAL_VERSION_PATCH);
    CHECK(strcmp(axonal_version(), expected) == 0, "version %s vs header %s", axonal_version(), expected);
    CHECK(axonal_abi_version() == AXONAL_ABI_VERSION, "abi %u", axonal_abi_version());
    CHECK(strcmp(axonal_status_str(AXONAL_STATUS_OK), "ok") == 0, "status_str ok");
    CHECK(strcmp(axonal_status_str(9999), "unknown status") == 0, "unknown status");
}

static void test_worked_examples(void) {
    /* 1. Cycle 0→1→2→3→4→0, depth 3, seed {0: 1}. The worked examples check semantics: their budget
       is one no run under valgrind (tens of times slower, threads serialised) can exceed, or a call
       judged slow would be answered by the fallback (CI saw it once: flags 17, two results). */
    axonal_graph *g = cycle5();
    axonal_engine *e = engine_of(g, "{\"spreading\": {\"max_depth\": 3, \"latency_budget_ms\": 60000}}");
    uint32_t seed = 0, nodes[8], flags = 99;
    float acts[8];
    size_t count = 0;
    axonal_status s = axonal_engine_recall_seeds(e, &seed, NULL, 1, nodes, acts, 8, &count, &flags);
    CHECK(s == AXONAL_STATUS_OK, "recall_seeds: %s", error_text());
    const float expected[] = {1.0f, 0.8f, 0.64f, 0.512f};
    CHECK(count == 4, "cycle count %zu (node 4 not reached)", count);
    for (size_t i = 0; i < 4 && i < count; i++) {
        CHECK(nodes[i] == i && fabsf(acts[i] - expected[i]) < 1e-6f, "cycle result %zu: %u %f", i, nodes[i], acts[i]);
    }
    CHECK(flags == 0, "flags %u", flags);
    /* capacity acts as k. */
    s = axonal_engine_recall_seeds(e, &seed, NULL, 1, nodes, acts, 2, &count, NULL);
    CHECK(s == AXONAL_STATUS_OK && count == 2 && nodes[1] == 1, "capacity 2 → %zu", count);
    /* One buffer may be both the seeds and the output: inputs are read before outputs are written. */
    nodes[0] = 0;
    s = axonal_engine_recall_seeds(e, nodes, NULL, 1, nodes, acts, 8, &count, NULL);
    CHECK(s == AXONAL_STATUS_OK && count == 4 && nodes[0] == 0 && nodes[3] == 3, "aliased seeds/out_nodes: %zu", count);
    char *json = NULL;
    size_t len = 0;
    s = axonal_engine_recall(e, "{\"seeds\": [[0, 1.0]]}", &json, &len);
    CHECK(s == AXONAL_STATUS_OK && json && strlen(json) == len, "recall json: %s", error_text());
    cJSON *r = take_json(json);
    CHECK(fabs(number_at(r, "stats", "mass") - 1.952) < 1e-6, "mass %f", number_at(r, "stats", "mass"));
    CHECK(strcmp(cJSON_GetObjectItem(r, "source")->valuestring, "spreading") == 0, "source");
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r, "results")) == 4, "4 results");
    for (int i = 0; i < 4 && i < cJSON_GetArraySize(cJSON_GetObjectItem(r, "results")); i++) {
        const cJSON *row = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "results"), i);
        CHECK(number_at(row, "node", NULL) == i && number_at(row, "hops", NULL) == i, "result %d: node and hops %d", i, i);
        CHECK(cJSON_IsString(cJSON_GetObjectItem(row, "tier")), "result %d has a tier", i);
    }
    cJSON_Delete(r);
    axonal_engine_free(e);
    axonal_graph_free(g);

    /* 2. Diamond, depth 2. */
    static const uint32_t dsrc[] = {0, 0, 1, 2}, ddst[] = {1, 2, 3, 3};
    static const float dw[] = {0.5f, 0.5f, 1, 1};
    g = graph_of(4, dsrc, ddst, dw, 4);
    e = engine_of(g, "{\"spreading\": {\"max_depth\": 2, \"latency_budget_ms\": 60000}}");
    s = axonal_engine_recall_seeds(e, &seed, NULL, 1, nodes, acts, 8, &count, &flags);
    CHECK(s == AXONAL_STATUS_OK && count == 4, "diamond count %zu", count);
    CHECK(nodes[1] == 3 && fabsf(acts[1] - 0.64f) < 1e-6f, "A[3] = %f", acts[1]);
    CHECK(nodes[2] == 1 && nodes[3] == 2 && fabsf(acts[2] - 0.4f) < 1e-6f && fabsf(acts[3] - 0.4f) < 1e-6f, "A[1], A[2]");
    axonal_engine_free(e);
    axonal_graph_free(g);

    /* 3. Two-cycle, decay 0.5, depth 4: fire_once and reverberate. */
    static const uint32_t tsrc[] = {0, 1}, tdst[] = {1, 0};
    static const float tw[] = {1, 1};
    g = graph_of(2, tsrc, tdst, tw, 2);
    const char *policies[] = {"fire_once", "reverberate"};
    const double masses[] = {0.5, 0.625};
    for (int i = 0; i < 2; i++) {
        char config[256];
        snprintf(config, sizeof config,
                 "{\"spreading\": {\"decay\": 0.5, \"max_depth\": 4, \"cycle_policy\": \"%s\", \"latency_budget_ms\": 60000}}",
                 policies[i]);
        e = engine_of(g, config);
        s = axonal_engine_recall(e, "{\"seeds\": {\"0\": 1.0}}", &json, &len);
        CHECK(s == AXONAL_STATUS_OK, "two-cycle recall: %s", error_text());
        r = take_json(json);
        CHECK(fabs(number_at(r, "stats", "mass") - masses[i]) < 1e-6, "%s mass %f", policies[i], number_at(r, "stats", "mass"));
        cJSON_Delete(r);
        axonal_engine_free(e);
    }
    axonal_graph_free(g);
}

static void test_documents(void) {
    axonal_graph *g = cycle5();
    /* A budget and a probe timeout no run under valgrind (tens of times slower, threads serialised)
       can exceed: the probe check below asserts a healthy engine, not the machine's speed. */
    axonal_engine *e = engine_of(g, "{\"spreading\": {\"latency_budget_ms\": 60000}, \"health\": {\"timeout_ms\": 60000}}");
    uint32_t seed = 0, nodes[4];
    float acts[4];
    size_t count, len;
    for (int i = 0; i < 20; i++) axonal_engine_recall_seeds(e, &seed, NULL, 1, nodes, acts, 4, &count, NULL);
    char *text = NULL;

    CHECK(axonal_engine_snapshot_json(e, &text, &len) == AXONAL_STATUS_OK, "snapshot: %s", error_text());
    cJSON *snap = take_json(text);
    CHECK(snap != NULL, "snapshot parses");
    const char *keys[] = {"schema", "windows", "totals", "spreading", "health", "export"};
    for (size_t i = 0; i < 6; i++) CHECK(cJSON_HasObjectItem(snap, keys[i]), "snapshot.%s", keys[i]);
    const cJSON *spreading = cJSON_GetObjectItem(snap, "spreading");
    const char *skeys[] = {"latency", "fallback", "breaker", "gpu", "pool", "autotune", "budget_violations_total", "recalls_total", "failures_total"};
    for (size_t i = 0; i < 9; i++) CHECK(cJSON_HasObjectItem(spreading, skeys[i]), "spreading.%s", skeys[i]);
    CHECK(number_at(spreading, "recalls_total", NULL) == 20, "recalls_total %f", number_at(spreading, "recalls_total", NULL));
    cJSON_Delete(snap);

    CHECK(axonal_engine_health_json(e, &text, &len) == AXONAL_STATUS_OK, "health");
    cJSON *health = take_json(text);
    CHECK(health && cJSON_HasObjectItem(health, "status") && cJSON_HasObjectItem(health, "probes"), "health shape");
    CHECK(cJSON_HasObjectItem(cJSON_GetObjectItem(health, "probes"), "spreading"), "spreading probe registered");
    cJSON_Delete(health);

    CHECK(axonal_engine_check_probe(e, "spreading", &text, &len) == AXONAL_STATUS_OK, "check_probe");
    cJSON *probe = take_json(text);
    const cJSON *probe_reason = probe ? cJSON_GetObjectItem(probe, "reason") : NULL;
    CHECK(probe && strcmp(cJSON_GetObjectItem(probe, "status")->valuestring, "healthy") == 0, "spreading probe healthy (%s)",
          cJSON_IsString(probe_reason) ? probe_reason->valuestring : "no reason");
    cJSON_Delete(probe);

    CHECK(axonal_engine_prometheus_text(e, &text, &len) == AXONAL_STATUS_OK, "prometheus");
    CHECK(strstr(text, "axonal_spreading_recalls_total 20") != NULL, "exposition counts the recalls");
    CHECK(strstr(text, "# TYPE axonal_spreading_latency_seconds histogram") != NULL, "histogram type");
    axonal_string_free(text);

    CHECK(axonal_engine_update_config(e, "{\"spreading\": {\"max_depth\": 4}}") == AXONAL_STATUS_OK, "update_config");
    CHECK(axonal_engine_config_json(e, &text, &len) == AXONAL_STATUS_OK, "config");
    cJSON *config = take_json(text);
    CHECK(number_at(cJSON_GetObjectItem(config, "spreading"), "max_depth", NULL) == 4, "applied");
    CHECK(cJSON_HasObjectItem(config, "autotune") && cJSON_HasObjectItem(config, "breaker"), "config shape");
    cJSON_Delete(config);

    CHECK(axonal_engine_autotune_audit_json(e, &text, &len) == AXONAL_STATUS_OK, "audit");
    cJSON *audit = take_json(text);
    CHECK(audit && cJSON_IsArray(cJSON_GetObjectItem(audit, "entries")) && cJSON_HasObjectItem(audit, "schema"), "audit shape");
    cJSON_Delete(audit);
    CHECK(axonal_engine_autotune_now(e, &text, &len) == AXONAL_STATUS_OK, "autotune_now");
    cJSON *decision = take_json(text);
    CHECK(decision && strcmp(cJSON_GetObjectItem(decision, "action")->valuestring, "no_change") == 0, "decision");
    cJSON_Delete(decision);
    CHECK(axonal_engine_set_autotune_enabled(e, false) == AXONAL_STATUS_OK, "disable tuner");
    axonal_engine_free(e);
    axonal_graph_free(g);
}

/* --- the auto-tuner through the ABI: a real change, and its audit entry's fields --- */

static void test_tuner_audit(void) {
    axonal_graph *g = cycle5();
    /* Every depth of a spread from node 0 has its frontier on the hot tier; 20 ms of injected latency
       per hot phase makes a depth-4 recall ~80 ms against a 30 ms budget, a quarter of it at the last
       depth. (The sleeps dominate even under valgrind, where the spread's own work is 50x slower.) */
    axonal_engine *e = engine_of(g,
                                 "{\"threads\": 1, \"spreading\": {\"max_depth\": 4, \"latency_budget_ms\": 30, "
                                 "\"tier_timeouts_ms\": {\"hot\": 0, \"warm\": 0, \"cold\": 0}}}");
    CHECK(axonal_engine_set_breaker_override(e, "forced_closed") == AXONAL_STATUS_OK, "breaker forced closed");
    char *text = NULL;
    size_t len = 0;
    CHECK(axonal_engine_autotune_now(e, &text, &len) == AXONAL_STATUS_OK, "baseline step");
    axonal_string_free(text);
    CHECK(axonal_engine_set_chaos(e, "{\"latency_ms\": {\"hot\": 20}}") == AXONAL_STATUS_OK, "chaos: %s", error_text());
    uint32_t seed = 0, nodes[8];
    float acts[8];
    size_t count;
    /* The tuner acts on an interval of at least 20 recalls. */
    for (int i = 0; i < 24; i++) axonal_engine_recall_seeds(e, &seed, NULL, 1, nodes, acts, 8, &count, NULL);
    CHECK(axonal_engine_autotune_now(e, &text, &len) == AXONAL_STATUS_OK, "tuning step");
    cJSON *decision = take_json(text);
    const char *action = cJSON_GetStringValue(cJSON_GetObjectItem(decision, "action"));
    const char *why = cJSON_GetStringValue(cJSON_GetObjectItem(decision, "reason"));
    CHECK(action && strcmp(action, "applied") == 0, "latency pressure applies a change: %s (%s)", action ? action : "(none)",
          why ? why : "");
    cJSON_Delete(decision);
    axonal_engine_set_chaos(e, NULL);

    CHECK(axonal_engine_autotune_audit_json(e, &text, &len) == AXONAL_STATUS_OK, "audit");
    cJSON *audit = take_json(text);
    const cJSON *entries = cJSON_GetObjectItem(audit, "entries");
    CHECK(cJSON_GetArraySize(entries) == 1, "one audit entry");
    const cJSON *entry = cJSON_GetArrayItem(entries, 0);
    const char *fields[] = {"at", "action", "old", "new", "reason", "predicted", "observed"};
    for (size_t i = 0; i < 7; i++) CHECK(cJSON_HasObjectItem(entry, fields[i]), "audit entry has %s", fields[i]);
    CHECK(number_at(entry, "predicted", NULL) > 0.10, "predicted over the 10 %% threshold: %f", number_at(entry, "predicted", NULL));
    CHECK(number_at(cJSON_GetObjectItem(entry, "old"), "max_depth", NULL) == 4, "old depth 4");
    CHECK(number_at(cJSON_GetObjectItem(entry, "new"), "max_depth", NULL) == 3, "new depth 3");
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(entry, "observed")), "observed is null until the next interval");
    const char *reason = cJSON_GetStringValue(cJSON_GetObjectItem(entry, "reason"));
    CHECK(reason && strstr(reason, "over the 30.0 ms budget"), "reason explains: %s", reason ? reason : "(none)");
    cJSON_Delete(audit);
    CHECK(axonal_engine_config_json(e, &text, &len) == AXONAL_STATUS_OK, "config");
    cJSON *config = take_json(text);
    CHECK(number_at(cJSON_GetObjectItem(config, "spreading"), "max_depth", NULL) == 3, "the live config follows the tuner");
    cJSON_Delete(config);
    axonal_engine_free(e);
    axonal_graph_free(g);
}

/* --- callbacks --- */

typedef struct {
    int frees;
    int calls;
    const axonal_engine *engine;
    char transitions[16][32];
    int transition_count;
} callback_state;

static void count_free(void *userdata) { ((callback_state *)userdata)->frees++; }

static uint32_t failing_probe(void *userdata, char *reason, size_t reason_len) {
    callback_state *state = userdata;
    state->calls++;
    /* A probe may call back into the engine. */
    char *config = NULL;
    size_t len = 0;
    if (axonal_engine_config_json(state->engine, &config, &len) == AXONAL_STATUS_OK) axonal_string_free(config);
    snprintf(reason, reason_len, "disk %d%% full", 97);
    return 2;
}

static void record_transition(void *userdata, const char *event_json, size_t len) {
    callback_state *state = userdata;
    cJSON *event = cJSON_Parse(event_json);
    if (event && state->transition_count < 16 && strlen(event_json) == len) {
        snprintf(state->transitions[state->transition_count++], 32, "%s>%s", cJSON_GetObjectItem(event, "from")->valuestring,
                 cJSON_GetObjectItem(event, "to")->valuestring);
    }
    cJSON_Delete(event);
    uint32_t breaker = 99;
    axonal_engine_breaker_state(state->engine, &breaker); /* re-entrant call from the dispatcher */
}

/* A probe that counts its calls and sleeps `sleep_ms` in each (state shared with library threads). */
typedef struct {
    atomic_int calls;
    atomic_int frees;
    int sleep_ms;
} timed_probe_state;

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint32_t timed_probe(void *userdata, char *reason, size_t reason_len) {
    timed_probe_state *state = userdata;
    atomic_fetch_add(&state->calls, 1);
    sleep_ms(state->sleep_ms);
    (void)reason;
    (void)reason_len;
    return 0;
}

static void timed_free(void *userdata) { atomic_fetch_add(&((timed_probe_state *)userdata)->frees, 1); }

static void test_probe_schedule_and_timeout(void) {
    axonal_graph *g = cycle5();
    axonal_engine *e = engine_of(g, NULL);
    uint64_t ticking_id = 0, hung_id = 0;
    timed_probe_state ticking = {0}, hung = {0};
    hung.sleep_ms = 600;
    CHECK(axonal_engine_register_probe(e, "ticking", "{\"interval_ms\": 50, \"timeout_ms\": 1000, \"critical\": false}", timed_probe,
                                       &ticking, timed_free, &ticking_id) == AXONAL_STATUS_OK,
          "register ticking: %s", error_text());
    for (int i = 0; i < 300 && atomic_load(&ticking.calls) < 3; i++) sleep_ms(10);
    CHECK(atomic_load(&ticking.calls) >= 3, "the background runner calls the probe on its schedule (%d calls)", atomic_load(&ticking.calls));

    CHECK(axonal_engine_register_probe(e, "hung", "{\"interval_ms\": 3600000, \"timeout_ms\": 50}", timed_probe, &hung, timed_free,
                                       &hung_id) == AXONAL_STATUS_OK,
          "register hung: %s", error_text());
    char *text = NULL;
    size_t len = 0;
    CHECK(axonal_engine_check_probe(e, "hung", &text, &len) == AXONAL_STATUS_OK, "check hung: %s", error_text());
    cJSON *entry = take_json(text);
    const char *reason = cJSON_GetStringValue(cJSON_GetObjectItem(entry, "reason"));
    const char *status = cJSON_GetStringValue(cJSON_GetObjectItem(entry, "status"));
    CHECK(reason && strncmp(reason, "timeout", 7) == 0, "a hung probe times out: %s", reason ? reason : "(none)");
    CHECK(status && strcmp(status, "unhealthy") == 0, "and is unhealthy at once: %s", status ? status : "(none)");
    cJSON_Delete(entry);
    CHECK(axonal_engine_health_json(e, &text, &len) == AXONAL_STATUS_OK, "health");
    cJSON *health = take_json(text);
    const char *overall = cJSON_GetStringValue(cJSON_GetObjectItem(health, "status"));
    CHECK(overall && strcmp(overall, "unhealthy") == 0, "a critical hung probe makes the engine unhealthy: %s", overall ? overall : "(none)");
    cJSON_Delete(health);

    /* Unregistering a hung probe returns (after at most its timeout); its userdata is freed exactly
       once, when the hung check returns. */
    CHECK(axonal_engine_unregister_probe(e, hung_id) == AXONAL_STATUS_OK, "unregister hung");
    for (int i = 0; i < 300 && atomic_load(&hung.frees) == 0; i++) sleep_ms(10);
    CHECK(atomic_load(&hung.frees) == 1, "hung probe's userdata freed once (%d)", atomic_load(&hung.frees));
    CHECK(axonal_engine_unregister_probe(e, ticking_id) == AXONAL_STATUS_OK, "unregister ticking");
    CHECK(atomic_load(&ticking.frees) == 1, "ticking probe's userdata freed once at unregistration");
    int calls = atomic_load(&ticking.calls);
    sleep_ms(150);
    CHECK(atomic_load(&ticking.calls) == calls, "no call after unregistration");
    axonal_engine_free(e);
    axonal_graph_free(g);
}

static void test_callbacks(void) {
    axonal_graph *g = cycle5();
    axonal_engine *e = engine_of(g, "{\"breaker\": {\"window_size\": 10, \"min_calls\": 5, \"cooldown_ms\": 600000, \"max_cooldown_ms\": 600000}}");
    callback_state probe_state = {0}, transition_state = {0};
    probe_state.engine = e;
    transition_state.engine = e;
    uint64_t probe_id = 0, transition_id = 0;
    CHECK(axonal_engine_register_probe(e, "disk", "{\"interval_ms\": 3600000, \"critical\": false}", failing_probe, &probe_state, count_free,
                                       &probe_id) == AXONAL_STATUS_OK,
          "register_probe: %s", error_text());
    char *text = NULL;
    size_t len = 0;
    CHECK(axonal_engine_check_probe(e, "disk", &text, &len) == AXONAL_STATUS_OK, "check disk: %s", error_text());
    cJSON *entry = take_json(text);
    CHECK(entry && strcmp(cJSON_GetObjectItem(entry, "reason")->valuestring, "disk 97% full") == 0, "probe reason");
    /* The background runner's first check (due at registration) may also have run: hysteresis says
       one failure in a row degrades, two (failure_threshold) make it unhealthy. */
    double failures = number_at(entry, "consecutive_failures", NULL);
    const char *probe_status = cJSON_GetStringValue(cJSON_GetObjectItem(entry, "status"));
    CHECK(failures >= 1 && probe_status && strcmp(probe_status, failures >= 2 ? "unhealthy" : "degraded") == 0,
          "hysteresis after %.0f failures: %s", failures, probe_status ? probe_status : "(none)");
    CHECK(entry && cJSON_IsFalse(cJSON_GetObjectItem(entry, "critical")), "non-critical");
    cJSON_Delete(entry);
    CHECK(probe_state.calls >= 1, "probe ran %d", probe_state.calls);
    CHECK(axonal_engine_unregister_probe(e, probe_id) == AXONAL_STATUS_OK, "unregister");
    CHECK(probe_state.frees == 1, "probe userdata freed once: %d", probe_state.frees);
    CHECK(axonal_engine_unregister_probe(e, probe_id) == AXONAL_STATUS_NOT_FOUND, "second unregister: not found");

    CHECK(axonal_engine_on_breaker_transition(e, record_transition, &transition_state, count_free, &transition_id) == AXONAL_STATUS_OK,
          "on_breaker_transition");
    /* Chaos: every spread fails, so the breaker opens after min_calls outcomes. */
    CHECK(axonal_engine_set_chaos(e, "{\"failure_rate\": 1.0, \"seed\": 3}") == AXONAL_STATUS_OK, "set_chaos: %s", error_text());
    uint32_t seed = 0, nodes[8], flags = 0, state = 0;
    float acts[8];
    size_t count = 0;
    for (int i = 0; i < 10; i++) axonal_engine_recall_seeds(e, &seed, NULL, 1, nodes, acts, 8, &count, &flags);
    CHECK(flags & AXONAL_RECALL_FLAG_FALLBACK, "answered by the fallback");
    CHECK(axonal_engine_breaker_state(e, &state) == AXONAL_STATUS_OK && state == 2, "breaker open: %u", state);
    CHECK(axonal_engine_set_chaos(e, NULL) == AXONAL_STATUS_OK, "clear chaos");
    CHECK(axonal_engine_set_breaker_override(e, "forced_closed") == AXONAL_STATUS_OK, "override");
    CHECK(axonal_engine_set_breaker_override(e, "auto") == AXONAL_STATUS_OK, "override auto");
    CHECK(axonal_engine_flush_transition_events(e) == AXONAL_STATUS_OK, "flush");
    CHECK(transition_state.transition_count == 2, "transitions seen: %d", transition_state.transition_count);
    CHECK(strcmp(transition_state.transitions[0], "closed>open") == 0, "first %s", transition_state.transitions[0]);
    CHECK(transition_state.transition_count < 2 || strcmp(transition_state.transitions[1], "open>closed") == 0, "second %s",
          transition_state.transitions[1]);
    CHECK(axonal_engine_remove_transition_callback(e, transition_id) == AXONAL_STATUS_OK, "remove callback");
    CHECK(transition_state.frees == 1, "transition userdata freed once");
    CHECK(axonal_engine_remove_transition_callback(e, transition_id) == AXONAL_STATUS_NOT_FOUND, "remove twice");

    /* userdata_free runs at engine free for callbacks still registered. */
    callback_state late = {0};
    late.engine = e;
    uint64_t id;
    CHECK(axonal_engine_on_breaker_transition(e, record_transition, &late, count_free, &id) == AXONAL_STATUS_OK, "register late");
    axonal_engine_free(e);
    CHECK(late.frees == 1, "freed at engine free: %d", late.frees);
    axonal_graph_free(g);
}

static int status_is(axonal_status got, axonal_status want, const char *what) {
    if (got != want) {
        fprintf(stderr, "  %s: got %s (%u), want %s; message: %s\n", what, axonal_status_str(got), got, axonal_status_str(want), error_text());
        return 0;
    }
    return 1;
}

static int message_has(const char *needle) { return strstr(error_text(), needle) != NULL; }

static void test_bad_input(void) {
    axonal_graph_builder *b = NULL;
    axonal_graph *g = NULL;
    static const uint32_t src[] = {0, 1}, dst[] = {1, 9};
    static const float w[] = {0.5f, 0.5f};
    float nan_weight[] = {NAN};
    uint32_t zero = 0, one = 1;

    CHECK(status_is(axonal_graph_builder_new(3, NULL), AXONAL_STATUS_NULL_ARGUMENT, "builder_new out"), "builder_new NULL out");
    CHECK(message_has("out must not be NULL"), "message names the argument: %s", last_error);
    CHECK(axonal_graph_builder_new(3, &b) == AXONAL_STATUS_OK, "builder_new");
    CHECK(status_is(axonal_graph_builder_add_edges(NULL, src, dst, w, 1), AXONAL_STATUS_NULL_ARGUMENT, "add_edges b"), "NULL builder");
    CHECK(status_is(axonal_graph_builder_add_edges(b, NULL, dst, w, 1), AXONAL_STATUS_NULL_ARGUMENT, "add_edges src"), "NULL src");
    CHECK(message_has("src"), "names src");
    CHECK(status_is(axonal_graph_builder_add_edges(b, src, NULL, w, 1), AXONAL_STATUS_NULL_ARGUMENT, "add_edges dst"), "NULL dst");
    CHECK(status_is(axonal_graph_builder_add_edges(b, src, dst, NULL, 1), AXONAL_STATUS_NULL_ARGUMENT, "add_edges weight"), "NULL weight");
    CHECK(status_is(axonal_graph_builder_add_edges(b, src, dst, w, SIZE_MAX), AXONAL_STATUS_INVALID_ARGUMENT, "len: a length"),
          "impossible len");
    CHECK(status_is(axonal_graph_builder_add_edges(b, src, dst, w, 0), AXONAL_STATUS_INVALID_ARGUMENT, "add_edges len 0"), "zero length");
    CHECK(status_is(axonal_graph_builder_add_edges(b, src, dst, w, 2), AXONAL_STATUS_GRAPH, "out-of-range dst"), "out-of-range node");
    CHECK(message_has("edge 1") && message_has("node 9"), "names edge and node: %s", last_error);
    CHECK(status_is(axonal_graph_builder_add_edges(b, &zero, &one, nan_weight, 1), AXONAL_STATUS_GRAPH, "NaN weight"), "NaN weight");
    CHECK(message_has("weight NaN"), "names the weight: %s", last_error);
    float above_one[] = {1.5f}, negative[] = {-0.5f}, zero_w[] = {0.0f};
    CHECK(status_is(axonal_graph_builder_add_edges(b, &zero, &one, above_one, 1), AXONAL_STATUS_GRAPH, "weight 1.5"), "weight above one");
    CHECK(status_is(axonal_graph_builder_add_edges(b, &zero, &one, negative, 1), AXONAL_STATUS_GRAPH, "weight -0.5"), "negative weight");
    CHECK(status_is(axonal_graph_builder_add_edges(b, &zero, &one, zero_w, 1), AXONAL_STATUS_GRAPH, "weight 0"), "zero weight");
    CHECK(axonal_graph_builder_set_embedding(b, 0, w, 2) == AXONAL_STATUS_OK, "embedding dim 2");
    CHECK(status_is(axonal_graph_builder_set_embedding(b, 1, w, 1), AXONAL_STATUS_GRAPH, "mixed dims"), "mixed embedding dimensions");
    CHECK(message_has("dimension 1") && message_has("have 2"), "names both dimensions: %s", last_error);
    CHECK(status_is(axonal_graph_builder_set_tier(b, 0, 7), AXONAL_STATUS_INVALID_ARGUMENT, "tier 7"), "unknown enum value");
    CHECK(message_has("tier 7"), "names the tier");
    CHECK(status_is(axonal_graph_builder_set_label(b, 0, "\xff\xfe"), AXONAL_STATUS_INVALID_UTF8, "label"), "invalid UTF-8");
    CHECK(status_is(axonal_graph_builder_set_label(b, 0, NULL), AXONAL_STATUS_NULL_ARGUMENT, "label NULL"), "NULL label");
    CHECK(status_is(axonal_graph_builder_set_label(b, 7, "x"), AXONAL_STATUS_GRAPH, "label node"), "label node out of range");
    CHECK(status_is(axonal_graph_builder_set_embedding(b, 0, w, 0), AXONAL_STATUS_INVALID_ARGUMENT, "dim 0"), "zero dim");
    CHECK(status_is(axonal_graph_builder_set_embedding(b, 0, NULL, 2), AXONAL_STATUS_NULL_ARGUMENT, "embedding NULL"), "NULL embedding");
    CHECK(axonal_graph_builder_add_edges(b, src, dst, w, 1) == AXONAL_STATUS_OK, "a rejected call lost nothing");
    CHECK(status_is(axonal_graph_builder_build(b, NULL), AXONAL_STATUS_NULL_ARGUMENT, "build out"), "NULL build out (consumes b)");
    CHECK(status_is(axonal_graph_builder_build(NULL, &g), AXONAL_STATUS_NULL_ARGUMENT, "build b"), "NULL builder build");
    CHECK(status_is(axonal_graph_from_tsv(NULL, NULL, &g), AXONAL_STATUS_NULL_ARGUMENT, "tsv path"), "NULL tsv path");
    CHECK(status_is(axonal_graph_from_tsv("/nonexistent/edges.tsv", NULL, &g), AXONAL_STATUS_IO, "tsv io"), "missing file");
    CHECK(message_has("/nonexistent/edges.tsv"), "names the file");
    {
        char path[] = "/tmp/axonal-c-test-XXXXXX";
        int fd = mkstemp(path);
        FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (f) {
            fputs("0\t1\t0.5\n# comment\n1\t2\n", f);
            fclose(f);
        }
        CHECK(status_is(axonal_graph_from_tsv(path, NULL, &g), AXONAL_STATUS_GRAPH, "tsv line"), "malformed TSV line");
        CHECK(message_has(":3:") && message_has("expected 3 tab-separated fields"), "names the line: %s", last_error);
        remove(path);
    }
    size_t n;
    CHECK(status_is(axonal_graph_node_count(NULL, &n), AXONAL_STATUS_NULL_ARGUMENT, "node_count"), "NULL graph");

    g = cycle5();
    CHECK(axonal_graph_node_count(g, &n) == AXONAL_STATUS_OK && n == 5, "node_count");
    CHECK(axonal_graph_edge_count(g, &n) == AXONAL_STATUS_OK && n == 5, "edge_count");
    axonal_engine *e = NULL;
    CHECK(status_is(axonal_engine_new(NULL, NULL, &e), AXONAL_STATUS_NULL_ARGUMENT, "engine_new g"), "NULL graph");
    CHECK(status_is(axonal_engine_new(g, NULL, NULL), AXONAL_STATUS_NULL_ARGUMENT, "engine_new out"), "NULL out");
    CHECK(status_is(axonal_engine_new(g, "{\"spreading\": ", &e), AXONAL_STATUS_INVALID_JSON, "config JSON"), "malformed JSON");
    e = (axonal_engine *)&n; /* stale garbage in the out-parameter: a failure must overwrite it */
    CHECK(status_is(axonal_engine_new(g, "{\"bogus\": 1}", &e), AXONAL_STATUS_CONFIG, "unknown key"), "unknown config key");
    CHECK(e == NULL, "*out is NULL after a failure");
    CHECK(message_has("bogus"), "names the key: %s", last_error);
    CHECK(status_is(axonal_engine_new(g, "{\"spreading\": {\"decay\": 2}}", &e), AXONAL_STATUS_CONFIG, "bad decay"), "bad value");
    CHECK(message_has("spreading.decay"), "names the field");
    /* With an OpenCL platform (PoCL in CI) "required" succeeds; without one it is UNAVAILABLE. */
    axonal_status opencl = axonal_engine_new(g, "{\"opencl\": \"required\"}", &e);
    CHECK(opencl == AXONAL_STATUS_OK || (opencl == AXONAL_STATUS_UNAVAILABLE && message_has("needs a device")), "opencl required: %s",
          error_text());
    if (opencl == AXONAL_STATUS_OK) axonal_engine_free(e);
    e = NULL;

    e = engine_of(g, NULL);
    uint32_t nodes[4], bad_seed = 99;
    float acts[4], bad_act = NAN;
    size_t count;
    char *text = NULL;
    size_t len;
    CHECK(status_is(axonal_engine_recall_seeds(NULL, &zero, NULL, 1, nodes, acts, 4, &count, NULL), AXONAL_STATUS_NULL_ARGUMENT, "e"), "NULL engine");
    CHECK(status_is(axonal_engine_recall_seeds(e, NULL, NULL, 1, nodes, acts, 4, &count, NULL), AXONAL_STATUS_NULL_ARGUMENT, "seeds"), "NULL seeds");
    CHECK(status_is(axonal_engine_recall_seeds(e, &zero, NULL, 0, nodes, acts, 4, &count, NULL), AXONAL_STATUS_INVALID_ARGUMENT, "count"), "0 seeds");
    CHECK(status_is(axonal_engine_recall_seeds(e, &zero, NULL, 1, NULL, acts, 4, &count, NULL), AXONAL_STATUS_NULL_ARGUMENT, "nodes"), "NULL out_nodes");
    CHECK(status_is(axonal_engine_recall_seeds(e, &zero, NULL, 1, nodes, NULL, 4, &count, NULL), AXONAL_STATUS_NULL_ARGUMENT, "acts"), "NULL out_acts");
    CHECK(status_is(axonal_engine_recall_seeds(e, &zero, NULL, 1, nodes, acts, 0, &count, NULL), AXONAL_STATUS_INVALID_ARGUMENT, "cap"), "0 capacity");
    CHECK(status_is(axonal_engine_recall_seeds(e, &zero, NULL, 1, nodes, acts, 4, NULL, NULL), AXONAL_STATUS_NULL_ARGUMENT, "count"), "NULL count");
    CHECK(status_is(axonal_engine_recall_seeds(e, &zero, NULL, 1, nodes, acts, SIZE_MAX, &count, NULL), AXONAL_STATUS_INVALID_ARGUMENT, "cap"),
          "impossible capacity");
    CHECK(status_is(axonal_engine_recall_seeds(e, &bad_seed, NULL, 1, nodes, acts, 4, &count, NULL), AXONAL_STATUS_RECALL, "seed 99"), "out-of-range seed");
    CHECK(message_has("node 99 out of range"), "names the seed: %s", last_error);
    CHECK(status_is(axonal_engine_recall_seeds(e, &zero, &bad_act, 1, nodes, acts, 4, &count, NULL), AXONAL_STATUS_RECALL, "NaN act"), "NaN activation");
    CHECK(status_is(axonal_engine_recall(e, NULL, &text, &len), AXONAL_STATUS_NULL_ARGUMENT, "cue"), "NULL cue");
    CHECK(status_is(axonal_engine_recall(e, "{\"seeds\": [0]", &text, &len), AXONAL_STATUS_INVALID_JSON, "cue JSON"), "malformed cue");
    CHECK(status_is(axonal_engine_recall(e, "{\"seeds\": [0], \"extra\": 1}", &text, &len), AXONAL_STATUS_RECALL, "cue key"), "unknown cue key");
    CHECK(status_is(axonal_engine_recall(e, "{\"seeds\": [0]}", NULL, &len), AXONAL_STATUS_NULL_ARGUMENT, "out_json"), "NULL out_json");
    CHECK(status_is(axonal_engine_recall(e, "{\"seeds\": [0]}", &text, NULL), AXONAL_STATUS_NULL_ARGUMENT, "out_len"), "NULL out_len");
    CHECK(status_is(axonal_engine_recall(e, "{\"seeds\": [\"\xff\"]}", &text, &len), AXONAL_STATUS_INVALID_UTF8, "utf8"), "invalid UTF-8 cue");
    CHECK(status_is(axonal_engine_update_config(e, "{\"spreading\": {\"nope\": 1}}"), AXONAL_STATUS_CONFIG, "patch key"), "unknown patch key");
    CHECK(message_has("spreading.nope"), "names it: %s", last_error);
    CHECK(status_is(axonal_engine_update_config(e, "[1"), AXONAL_STATUS_INVALID_JSON, "patch JSON"), "malformed patch");
    CHECK(status_is(axonal_engine_update_config(e, NULL), AXONAL_STATUS_NULL_ARGUMENT, "patch NULL"), "NULL patch");
    CHECK(status_is(axonal_engine_set_breaker_override(e, "sideways"), AXONAL_STATUS_INVALID_ARGUMENT, "mode"), "unknown override");
    CHECK(status_is(axonal_engine_set_chaos(e, "{\"failure_rate\": 3}"), AXONAL_STATUS_CONFIG, "chaos"), "bad chaos value");
    CHECK(message_has("chaos.failure_rate"), "names it");
    CHECK(status_is(axonal_engine_set_chaos(e, "{\"failure_rate\": "), AXONAL_STATUS_INVALID_JSON, "chaos JSON"), "malformed chaos");
    CHECK(status_is(axonal_engine_check_probe(e, "nope", &text, &len), AXONAL_STATUS_NOT_FOUND, "probe"), "unknown probe");
    CHECK(status_is(axonal_engine_snapshot_json(e, NULL, &len), AXONAL_STATUS_NULL_ARGUMENT, "snapshot out"), "NULL snapshot out");
    uint64_t id;
    CHECK(status_is(axonal_engine_register_probe(e, "p", NULL, NULL, NULL, NULL, &id), AXONAL_STATUS_NULL_ARGUMENT, "probe fn"), "NULL probe fn");
    CHECK(status_is(axonal_engine_register_probe(e, "p", "{\"interval_ms\": 0}", failing_probe, NULL, NULL, &id), AXONAL_STATUS_CONFIG, "opts"),
          "bad probe options");
    CHECK(status_is(axonal_engine_register_probe(e, "spreading", NULL, failing_probe, NULL, NULL, &id), AXONAL_STATUS_CONFIG, "dup"),
          "duplicate probe name");
    callback_state owned = {0};
    CHECK(status_is(axonal_engine_on_breaker_transition(e, NULL, &owned, count_free, &id), AXONAL_STATUS_NULL_ARGUMENT, "fn"), "NULL callback");
    CHECK(owned.frees == 1, "ownership passes even on failure: userdata freed once (%d)", owned.frees);

    /* Every remaining pointer argument, NULL: a NULL_ARGUMENT status naming it, never a crash. */
    uint32_t state;
    CHECK(status_is(axonal_engine_replace_graph(e, NULL), AXONAL_STATUS_NULL_ARGUMENT, "replace g"), "NULL replacement graph");
    CHECK(status_is(axonal_engine_health_json(e, NULL, &len), AXONAL_STATUS_NULL_ARGUMENT, "health out"), "NULL health out");
    CHECK(status_is(axonal_engine_config_json(e, &text, NULL), AXONAL_STATUS_NULL_ARGUMENT, "config len"), "NULL config len");
    CHECK(status_is(axonal_engine_prometheus_text(e, NULL, &len), AXONAL_STATUS_NULL_ARGUMENT, "prom out"), "NULL prometheus out");
    CHECK(status_is(axonal_engine_autotune_audit_json(e, NULL, &len), AXONAL_STATUS_NULL_ARGUMENT, "audit out"), "NULL audit out");
    CHECK(status_is(axonal_engine_autotune_now(e, NULL, &len), AXONAL_STATUS_NULL_ARGUMENT, "now out"), "NULL autotune_now out");
    CHECK(status_is(axonal_engine_check_probe(e, NULL, &text, &len), AXONAL_STATUS_NULL_ARGUMENT, "probe name"), "NULL probe name");
    CHECK(status_is(axonal_engine_register_probe(e, NULL, NULL, failing_probe, NULL, NULL, &id), AXONAL_STATUS_NULL_ARGUMENT, "name"),
          "NULL probe registration name");
    CHECK(status_is(axonal_engine_register_probe(e, "p2", NULL, failing_probe, NULL, NULL, NULL), AXONAL_STATUS_NULL_ARGUMENT, "out_id"),
          "NULL probe out_id");
    CHECK(status_is(axonal_engine_set_breaker_override(e, NULL), AXONAL_STATUS_NULL_ARGUMENT, "mode"), "NULL override mode");
    CHECK(status_is(axonal_engine_breaker_state(e, NULL), AXONAL_STATUS_NULL_ARGUMENT, "state out"), "NULL breaker state out");
    CHECK(status_is(axonal_engine_breaker_state(NULL, &state), AXONAL_STATUS_NULL_ARGUMENT, "state e"), "NULL engine (breaker_state)");
    CHECK(status_is(axonal_graph_builder_set_tier(NULL, 0, 0), AXONAL_STATUS_NULL_ARGUMENT, "tier b"), "NULL builder (set_tier)");
    CHECK(status_is(axonal_graph_builder_set_label(NULL, 0, "x"), AXONAL_STATUS_NULL_ARGUMENT, "label b"), "NULL builder (set_label)");
    CHECK(status_is(axonal_graph_edge_count(g, NULL), AXONAL_STATUS_NULL_ARGUMENT, "edge_count out"), "NULL edge_count out");
    axonal_graph *loaded = (axonal_graph *)&state; /* garbage: must be overwritten with NULL on failure */
    CHECK(status_is(axonal_graph_from_tsv(NULL, NULL, &loaded), AXONAL_STATUS_NULL_ARGUMENT, "tsv path"), "NULL TSV path");
    CHECK(loaded == NULL, "*out is NULL after a failed from_tsv");

    /* The last error: truncation and sizing. */
    axonal_engine_update_config(e, "{\"bogus\": 1}");
    char tiny[8];
    size_t written = 0;
    CHECK(axonal_last_error_message(tiny, sizeof tiny, &written) == AXONAL_STATUS_BUFFER_TOO_SMALL, "too-small buffer");
    CHECK(strlen(tiny) == 7 && written > 7, "truncated to fit, full length reported (%zu)", written);
    CHECK(axonal_last_error_message(NULL, 0, &written) == AXONAL_STATUS_BUFFER_TOO_SMALL && written > 0, "size query");
    axonal_engine_free(e);
    axonal_graph_free(g);
    axonal_string_free(NULL);
    axonal_engine_free(NULL);
    axonal_graph_free(NULL);
    axonal_graph_builder_free(NULL);
}

/* --- concurrency: 8 recalling threads, one polling snapshots and updating config --- */

typedef struct {
    axonal_engine *engine;
    int failures;
    int recalls;
    volatile int *stop;
} worker;

static void *recaller(void *arg) {
    worker *w = arg;
    uint32_t seed = (uint32_t)(w->recalls % 5), nodes[8];
    float acts[8];
    size_t count;
    w->recalls = 0;
    for (int i = 0; i < 400; i++) {
        seed = (seed + 1) % 5;
        if (axonal_engine_recall_seeds(w->engine, &seed, NULL, 1, nodes, acts, 8, &count, NULL) != AXONAL_STATUS_OK) w->failures++;
        w->recalls++;
    }
    return NULL;
}

static void *poller(void *arg) {
    worker *w = arg;
    char *text;
    size_t len;
    int depth = 2;
    while (!*w->stop) {
        if (axonal_engine_snapshot_json(w->engine, &text, &len) != AXONAL_STATUS_OK) w->failures++;
        else axonal_string_free(text);
        char patch[64];
        snprintf(patch, sizeof patch, "{\"spreading\": {\"max_depth\": %d}}", depth);
        depth = depth == 2 ? 4 : 2;
        if (axonal_engine_update_config(w->engine, patch) != AXONAL_STATUS_OK) w->failures++;
        w->recalls++;
    }
    return NULL;
}

static void test_concurrency(void) {
    axonal_graph *g = cycle5();
    axonal_engine *e = engine_of(g, NULL);
    volatile int stop = 0;
    pthread_t threads[9];
    worker workers[9];
    for (int i = 0; i < 9; i++) {
        workers[i] = (worker){e, 0, i, &stop};
        pthread_create(&threads[i], NULL, i < 8 ? recaller : poller, &workers[i]);
    }
    for (int i = 0; i < 8; i++) pthread_join(threads[i], NULL);
    stop = 1;
    pthread_join(threads[8], NULL);
    int failures = 0, recalls = 0;
    for (int i = 0; i < 9; i++) {
        failures += workers[i].failures;
        if (i < 8) recalls += workers[i].recalls;
    }
    CHECK(failures == 0, "%d failed calls", failures);
    CHECK(recalls == 3200, "%d recalls", recalls);
    CHECK(workers[8].recalls > 0, "the poller ran");
    axonal_engine_free(e);
    axonal_graph_free(g);
}

#if defined(AXONAL_FEATURE_HTTP)
/* Send one HTTP/1.1 request to 127.0.0.1:port and read the reply into buf; returns the status code,
   or -1 when the connection failed. */
static int http_call(int port, const char *method, const char *path, const char *headers, const char *body, char *buf,
                     size_t cap) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    char request[1024];
    int n = snprintf(request, sizeof request,
                     "%s %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n%sContent-Length: %zu\r\n\r\n%s", method, path,
                     headers, strlen(body), body);
    if (write(fd, request, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    size_t used = 0;
    ssize_t got;
    while (used + 1 < cap && (got = read(fd, buf + used, cap - 1 - used)) > 0) used += (size_t)got;
    buf[used] = 0;
    close(fd);
    int status = -1;
    if (sscanf(buf, "HTTP/1.1 %d", &status) != 1) return -1;
    return status;
}

static int port_of(const axonal_http_server *server) {
    char *addr = NULL;
    size_t len = 0;
    CHECK(axonal_http_server_local_addr(server, &addr, &len) == AXONAL_STATUS_OK, "local_addr: %s", error_text());
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    int port = colon ? atoi(colon + 1) : 0;
    CHECK(addr && strncmp(addr, "127.0.0.1:", 10) == 0 && port > 0 && len == strlen(addr), "local addr %s", addr);
    axonal_string_free(addr);
    return port;
}

static void test_http(void) {
    CHECK(axonal_features() & AXONAL_FEATURE_BIT_HTTP, "the library has the HTTP surface");
    axonal_graph *g = cycle5();
    axonal_engine *e = engine_of(g, NULL);
    static char reply[65536];

    axonal_http_server *server = NULL;
    axonal_status s = axonal_engine_serve_http(e, "127.0.0.1:0", "{\"admin_token\": \"t0ken\"}", &server);
    CHECK(s == AXONAL_STATUS_OK && server, "serve_http: %s", error_text());
    int port = port_of(server);
    uint32_t seed = 0, nodes[4], flags = 0;
    size_t count = 0;
    float acts[4];
    axonal_engine_recall_seeds(e, &seed, NULL, 1, nodes, acts, 4, &count, &flags);

    CHECK(http_call(port, "GET", "/health/spreading", "", "", reply, sizeof reply) == 200, "%s", reply);
    CHECK(strstr(reply, "\"latency_budget_ms\"") != NULL, "%s", reply);
    CHECK(http_call(port, "GET", "/metrics", "", "", reply, sizeof reply) == 200, "%s", reply);
    CHECK(strstr(reply, "\naxonal_spreading_recalls_total 1\n") != NULL, "metrics after one recall");
    CHECK(http_call(port, "GET", "/api/v1/system/spreading/config", "", "", reply, sizeof reply) == 200, "%s", reply);
    CHECK(http_call(port, "GET", "/nope", "", "", reply, sizeof reply) == 404, "%s", reply);

    const char *write_override = "{\"breaker_override\": \"forced_open\"}";
    CHECK(http_call(port, "PUT", "/api/v1/system/spreading/config", "", write_override, reply, sizeof reply) == 403,
          "no token: %s", reply);
    CHECK(http_call(port, "PUT", "/api/v1/system/spreading/config", "Authorization: Bearer t0ken\r\n", "{\"x\": 1}",
                    reply, sizeof reply) == 400,
          "unknown key: %s", reply);
    CHECK(http_call(port, "PUT", "/api/v1/system/spreading/config", "Authorization: Bearer t0ken\r\n", write_override,
                    reply, sizeof reply) == 200,
          "admin write: %s", reply);
    uint32_t state = 0;
    axonal_engine_breaker_state(e, &state);
    CHECK(state == 2, "the write forced the breaker open (state %u)", state);

    /* Bad input is an error status, never a crash. */
    axonal_http_server *other = NULL;
    char taken[32];
    snprintf(taken, sizeof taken, "127.0.0.1:%d", port);
    CHECK(axonal_engine_serve_http(e, taken, NULL, &other) == AXONAL_STATUS_CONFIG && other == NULL, "taken port");
    CHECK(strstr(error_text(), "http.addr") != NULL, "%s", last_error);
    CHECK(axonal_engine_serve_http(e, "127.0.0.1:0", "{\"max_body_bytes\": 0}", &other) == AXONAL_STATUS_CONFIG,
          "bad option");
    CHECK(strstr(error_text(), "http.max_body_bytes") != NULL, "%s", last_error);
    CHECK(axonal_engine_serve_http(e, "127.0.0.1:0", "{", &other) == AXONAL_STATUS_CONFIG, "bad options JSON");
    CHECK(axonal_engine_serve_http(e, "\xff:0", NULL, &other) == AXONAL_STATUS_INVALID_UTF8, "bad UTF-8");
    CHECK(axonal_engine_serve_http(NULL, "127.0.0.1:0", NULL, &other) == AXONAL_STATUS_NULL_ARGUMENT, "NULL engine");
    CHECK(axonal_engine_serve_http(e, "127.0.0.1:0", NULL, NULL) == AXONAL_STATUS_NULL_ARGUMENT, "NULL out");
    CHECK(axonal_http_server_local_addr(NULL, NULL, NULL) == AXONAL_STATUS_NULL_ARGUMENT, "NULL server");
    char *no_addr = last_error; /* any non-NULL value: the call must clear it */
    size_t no_len = 7;
    CHECK(axonal_http_server_local_addr(NULL, &no_addr, &no_len) == AXONAL_STATUS_NULL_ARGUMENT && no_addr == NULL &&
              no_len == 0,
          "out-params cleared on failure");
    axonal_http_server_stop(NULL);

    /* Freeing the engine stops its servers; the handle stays valid until it is stopped. */
    axonal_engine_free(e);
    CHECK(http_call(port, "GET", "/health/spreading", "", "", reply, sizeof reply) == -1, "server stopped with the engine");
    CHECK(port_of(server) == port, "the handle still answers local_addr");
    axonal_http_server_stop(server);
    axonal_graph_free(g);
}

#endif

/* A transition callback that does not return until the test lets it (it sleeps in short steps). */
static atomic_int release_stuck;
static atomic_int stuck_entered;
static void stuck_transition(void *userdata, const char *event_json, size_t len) {
    (void)userdata;
    (void)event_json;
    (void)len;
    atomic_store(&stuck_entered, 1);
    while (!atomic_load(&release_stuck)) usleep(2000);
}

static double seconds_since(const struct timespec *start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* Revision 2 hardening at the C surface: huge counts, object-shaped JSON, the callback bound and a
   connectable URL. */
static void test_hardening(void) {
    /* A node count this machine cannot hold: GRAPH, naming the count and the bytes; no abort. */
    axonal_graph_builder *b = NULL;
    axonal_graph *g = NULL;
    CHECK(axonal_graph_builder_new(UINT32_MAX, &b) == AXONAL_STATUS_OK, "a builder costs nothing per node");
    CHECK(status_is(axonal_graph_builder_build(b, &g), AXONAL_STATUS_GRAPH, "build UINT32_MAX") && g == NULL, "huge build");
    CHECK(message_has("4294967295 nodes") && message_has("bytes needed"), "%s", last_error);
    char path[] = "/tmp/axonal-c-huge-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, "3000000000\t1\t0.5\n", 17) == 17, "write tsv");
    close(fd);
    CHECK(status_is(axonal_graph_from_tsv(path, NULL, &g), AXONAL_STATUS_GRAPH, "huge tsv") && g == NULL, "tsv");
    CHECK(message_has("3000000001 nodes") && message_has("bytes needed"), "%s", last_error);
    unlink(path);

    /* Object-shaped JSON is an object: an array never fills fields by position. */
    g = cycle5();
    axonal_engine *e = engine_of(g, "{\"callbacks\": {\"timeout_ms\": 200}}");
    CHECK(status_is(axonal_engine_set_chaos(e, "[]"), AXONAL_STATUS_CONFIG, "chaos []") && message_has("chaos: must be a JSON object"),
          "%s", last_error);
    CHECK(status_is(axonal_engine_set_chaos(e, "[{\"hot\": 5}, 0, 1.0]"), AXONAL_STATUS_CONFIG, "chaos array"), "array");
    char *chaos = NULL;
    size_t chaos_len = 0;
    CHECK(axonal_engine_config_json(e, &chaos, &chaos_len) == AXONAL_STATUS_OK, "config");
    axonal_string_free(chaos);

    /* A transition callback that never returns: later events go on, free returns within the bound. */
    uint64_t id = 0;
    CHECK(axonal_engine_on_breaker_transition(e, stuck_transition, NULL, NULL, &id) == AXONAL_STATUS_OK, "register stuck");
    CHECK(axonal_engine_set_breaker_override(e, "forced_open") == AXONAL_STATUS_OK, "override");
    for (int i = 0; i < 500 && !atomic_load(&stuck_entered); i++) usleep(2000);
    CHECK(atomic_load(&stuck_entered), "the stuck callback was called");
    CHECK(axonal_engine_flush_transition_events(e) == AXONAL_STATUS_OK, "flush returns after the timeout");
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    axonal_engine_free(e);
    double took = seconds_since(&start);
    CHECK(took < 1.5, "axonal_engine_free took %.2f s with a callback stuck", took);
    atomic_store(&release_stuck, 1);

#if defined(AXONAL_FEATURE_HTTP)
    /* Bound beyond loopback: the URL is connectable. */
    e = engine_of(g, NULL);
    axonal_http_server *server = NULL;
    CHECK(axonal_engine_serve_http(e, "0.0.0.0:0", NULL, &server) == AXONAL_STATUS_OK, "serve 0.0.0.0: %s", error_text());
    char *url = NULL;
    size_t url_len = 0;
    CHECK(axonal_http_server_url(server, &url, &url_len) == AXONAL_STATUS_OK && url, "url");
    CHECK(url && strncmp(url, "http://127.0.0.1:", 17) == 0 && strlen(url) == url_len, "connectable url: %s", url ? url : "");
    axonal_string_free(url);
    axonal_http_server_stop(server);
    axonal_engine_free(e);
#endif
    axonal_graph_free(g);
}


/* The living graph and snapshots: batches, versions, compaction, bad batches that change nothing,
 * saving and loading (and a loader that names what is wrong with a damaged file). */
static void test_living_graph(void) {
    axonal_graph *g = cycle5();
    axonal_engine *e = engine_of(g, "{\"autotune\": {\"enabled\": false}}");
    uint64_t version = 99;
    CHECK(axonal_engine_graph_version(e, &version) == AXONAL_STATUS_OK && version == 0, "version %llu", (unsigned long long)version);

    /* Two new nodes (warm, labelled), linked from the cycle. */
    const uint32_t tiers[] = {1, 0};
    const char *labels[] = {"added", NULL};
    uint32_t first = 0;
    axonal_status s = axonal_engine_add_nodes(e, 2, tiers, labels, NULL, 0, &first, &version);
    CHECK(s == AXONAL_STATUS_OK && first == 5 && version == 1, "add_nodes: %s first %u version %llu", error_text(), first,
          (unsigned long long)version);
    const uint32_t src[] = {4, 5}, dst[] = {5, 6};
    const float w[] = {1.0f, 0.5f};
    CHECK(axonal_engine_add_edges(e, src, dst, w, 2, &version) == AXONAL_STATUS_OK && version == 2, "add_edges: %s", error_text());
    uint32_t nodes[8];
    float acts[8];
    size_t count = 0;
    const uint32_t seed = 4;
    CHECK(axonal_engine_recall_seeds(e, &seed, NULL, 1, nodes, acts, 8, &count, NULL) == AXONAL_STATUS_OK, "recall: %s", error_text());
    /* 4 → {0, 5} → {1, 6} → {2}: ties in activation go to the lower id. */
    CHECK(count == 6 && nodes[1] == 0 && nodes[2] == 5 && nodes[5] == 6 && fabsf(acts[5] - 0.32f) < 1e-6f, "recall sees the new edges: %zu",
          count);

    const float heavier[] = {0.25f};
    CHECK(axonal_engine_set_weights(e, &src[1], &dst[1], heavier, 1, &version) == AXONAL_STATUS_OK && version == 3, "set_weights");
    const uint32_t cold[] = {2};
    CHECK(axonal_engine_set_tiers(e, &dst[1], cold, 1, &version) == AXONAL_STATUS_OK && version == 4, "set_tiers");
    CHECK(axonal_engine_remove_edges(e, &src[0], &dst[0], 1, NULL) == AXONAL_STATUS_OK, "remove_edges: %s", error_text());

    /* Bad batches: an error naming the entry, and no new version. */
    const uint32_t far[] = {0, 70};
    const float ok[] = {0.5f, 0.5f}, nan_w[] = {0.5f, NAN};
    CHECK(axonal_engine_add_edges(e, far, far, ok, 2, &version) == AXONAL_STATUS_GRAPH, "unknown node");
    CHECK(strstr(error_text(), "edge 1: source node 70 out of range") != NULL, "names the entry: %s", error_text());
    CHECK(axonal_engine_add_edges(e, src, dst, nan_w, 2, NULL) == AXONAL_STATUS_GRAPH && strstr(error_text(), "NaN"), "NaN weight");
    CHECK(axonal_engine_remove_edges(e, &src[0], &dst[0], 1, NULL) == AXONAL_STATUS_GRAPH, "missing pair");
    CHECK(strstr(error_text(), "remove_edges entry 0: no edge 4 -> 5") != NULL, "names the pair: %s", error_text());
    const uint32_t bad_tier[] = {3};
    CHECK(axonal_engine_set_tiers(e, &seed, bad_tier, 1, NULL) == AXONAL_STATUS_INVALID_ARGUMENT && strstr(error_text(), "tiers[0] = 3"),
          "bad tier: %s", error_text());
    const char bad_utf8[] = {'a', (char)0xff, 0};
    const char *bad_labels[] = {bad_utf8};
    CHECK(axonal_engine_add_nodes(e, 1, NULL, bad_labels, NULL, 0, NULL, NULL) == AXONAL_STATUS_INVALID_ARGUMENT &&
              strstr(error_text(), "labels[0] is not UTF-8"),
          "label not UTF-8: %s", error_text());
    const float row[] = {1, 2};
    CHECK(axonal_engine_add_nodes(e, 1, NULL, NULL, row, 0, NULL, NULL) == AXONAL_STATUS_INVALID_ARGUMENT, "embeddings without dim");
    CHECK(axonal_engine_add_edges(e, NULL, dst, w, 2, NULL) == AXONAL_STATUS_NULL_ARGUMENT, "NULL src");
    /* A length no buffer can have is refused, not read (a slice over it would abort the host). */
    CHECK(axonal_engine_add_edges(e, src, dst, w, SIZE_MAX, NULL) == AXONAL_STATUS_INVALID_ARGUMENT &&
              strstr(error_text(), "larger than any buffer"),
          "impossible length: %s", error_text());
    CHECK(axonal_engine_set_tiers(e, src, cold, SIZE_MAX / 2, NULL) == AXONAL_STATUS_INVALID_ARGUMENT, "impossible tiers length");
    CHECK(axonal_engine_graph_version(e, &version) == AXONAL_STATUS_OK && version == 5, "rejected batches made no version: %llu",
          (unsigned long long)version);

    uint64_t compacted = 0;
    CHECK(axonal_engine_compact(e, &compacted) == AXONAL_STATUS_OK && compacted == 5, "compact keeps the version");

    /* Save the engine, load it back as a graph, and start a second engine from it. */
    char dir[] = "/tmp/axonal-c-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[256];
    snprintf(path, sizeof path, "%s/engine.axs", dir);
    uint64_t saved = 0;
    CHECK(axonal_engine_save(e, path, &saved) == AXONAL_STATUS_OK && saved == 5, "engine_save: %s", error_text());
    axonal_graph *loaded = NULL;
    CHECK(axonal_graph_load(path, &loaded) == AXONAL_STATUS_OK, "graph_load: %s", error_text());
    size_t n = 0, m = 0;
    axonal_graph_node_count(loaded, &n);
    axonal_graph_edge_count(loaded, &m);
    CHECK(n == 7 && m == 6, "loaded %zu nodes, %zu edges", n, m);
    axonal_engine *restored = engine_of(loaded, NULL);
    CHECK(axonal_engine_graph_version(restored, &version) == AXONAL_STATUS_OK && version == 5, "restored version %llu",
          (unsigned long long)version);
    uint32_t nodes2[8];
    float acts2[8];
    size_t count2 = 0;
    axonal_engine_recall_seeds(e, &seed, NULL, 1, nodes, acts, 8, &count, NULL);
    axonal_engine_recall_seeds(restored, &seed, NULL, 1, nodes2, acts2, 8, &count2, NULL);
    CHECK(count == count2 && memcmp(nodes, nodes2, count * sizeof *nodes) == 0 && memcmp(acts, acts2, count * sizeof *acts) == 0,
          "the restored engine recalls bit for bit the same");
    uint64_t bytes = 0;
    char copy[256];
    snprintf(copy, sizeof copy, "%s/graph.axs", dir);
    CHECK(axonal_graph_save(loaded, copy, &bytes) == AXONAL_STATUS_OK && bytes > 64, "graph_save: %s", error_text());

    /* A damaged file: an error naming what is wrong, and no graph. */
    FILE *f = fopen(copy, "r+b");
    CHECK(f != NULL, "open the copy");
    if (f) {
        fseek(f, (long)bytes - 2, SEEK_SET);
        fputc(0x5a, f);
        fclose(f);
    }
    axonal_graph *damaged = (axonal_graph *)1;
    CHECK(axonal_graph_load(copy, &damaged) == AXONAL_STATUS_GRAPH && damaged == NULL, "damaged file refused");
    CHECK(strstr(error_text(), "checksum") != NULL || strstr(error_text(), "padding") != NULL, "names the damage: %s", error_text());
    CHECK(axonal_graph_load(NULL, &damaged) == AXONAL_STATUS_NULL_ARGUMENT, "NULL path");

    remove(path);
    remove(copy);
    rmdir(dir);
    axonal_engine_free(restored);
    axonal_graph_free(loaded);
    axonal_engine_free(e);
    axonal_graph_free(g);
}

/* Embedding cues through the ANN index (docs/spec.md §18): a JSON cue with an embedding, nodes
   added with embeddings found by the next recall, the index in the streaming snapshot's
   spreading.similarity section, and queries of the wrong dimension or all zeros refused with the
   value named. */
static void test_embedding_index(void) {
    enum { N = 400, DIM = 8 };
    axonal_graph_builder *b = NULL;
    axonal_graph *g = NULL;
    CHECK(axonal_graph_builder_new(N, &b) == AXONAL_STATUS_OK, "builder");
    for (uint32_t v = 0; v < N; v++) {
        float row[DIM];
        for (int i = 0; i < DIM; i++) row[i] = (float)((v * 7 + (uint32_t)i * 13) % 17) + 1.0f;
        axonal_graph_builder_set_embedding(b, v, row, DIM);
    }
    CHECK(axonal_graph_builder_build(b, &g) == AXONAL_STATUS_OK, "build: %s", error_text());
    axonal_engine *e = engine_of(g, "{\"similarity\": {\"index\": \"ann\"}, \"autotune\": {\"enabled\": false}}");
    /* A node added with its own direction is the best match at once (indexed or not yet). */
    const float added[DIM] = {100, -3, 0, 0, 0, 0, 0, 1};
    uint32_t first = 0;
    uint64_t version = 0;
    CHECK(axonal_engine_add_nodes(e, 1, NULL, NULL, added, DIM, &first, &version) == AXONAL_STATUS_OK && first == N, "add_nodes: %s",
          error_text());
    char *json = NULL;
    size_t len = 0;
    axonal_status s =
        axonal_engine_recall(e, "{\"embedding\": [100, -3, 0, 0, 0, 0, 0, 1], \"k\": 3}", &json, &len);
    cJSON *r = take_json(json);
    const cJSON *results = r ? cJSON_GetObjectItem(r, "results") : NULL;
    const cJSON *best = results ? cJSON_GetArrayItem(results, 0) : NULL;
    CHECK(s == AXONAL_STATUS_OK && best && (uint32_t)cJSON_GetObjectItem(best, "node")->valuedouble == N, "the added node first: %s",
          error_text());
    cJSON_Delete(r);
    s = axonal_engine_recall(e, "{\"embedding\": [1, 2, 3]}", &json, &len);
    CHECK(s != AXONAL_STATUS_OK && message_has("embedding") && message_has("dimension 3"), "wrong dimension: %s", error_text());
    s = axonal_engine_recall(e, "{\"embedding\": [0, 0, 0, 0, 0, 0, 0, 0]}", &json, &len);
    CHECK(s != AXONAL_STATUS_OK && message_has("zero vector"), "all zeros: %s", error_text());
    const float mixed[DIM + 1] = {1};
    CHECK(axonal_engine_add_nodes(e, 1, NULL, NULL, mixed, DIM + 1, &first, &version) != AXONAL_STATUS_OK && message_has("dimension"),
          "mixed dimensions refused: %s", error_text());
    /* The snapshot's spreading.similarity section says what answers. */
    CHECK(axonal_engine_snapshot_json(e, &json, &len) == AXONAL_STATUS_OK, "snapshot");
    cJSON *snap = take_json(json);
    const cJSON *sim = snap ? cJSON_GetObjectItem(cJSON_GetObjectItem(snap, "spreading"), "similarity") : NULL;
    const cJSON *method = sim ? cJSON_GetObjectItem(sim, "method") : NULL;
    CHECK(cJSON_IsString(method) && (strcmp(method->valuestring, "ann") == 0 || strcmp(method->valuestring, "building") == 0),
          "similarity section: %s", method && cJSON_IsString(method) ? method->valuestring : "(none)");
    cJSON_Delete(snap);
    axonal_engine_free(e);
    axonal_graph_free(g);
}

/* A batch answers each cue exactly as its own recall; malformed batches fail naming what is wrong. */
static void test_recall_batch(void) {
    enum { N = 300, M = 1500, CUES = 40, K = 8 };
    uint32_t src[M], dst[M];
    float w[M];
    for (uint32_t i = 0; i < M; i++) {
        src[i] = (i * 7919u) % N;
        dst[i] = (i * 104729u + 13u) % N;
        w[i] = 0.2f + (float)(i % 8) / 10.0f;
    }
    axonal_graph *g = graph_of(N, src, dst, w, M);
    axonal_engine *e = engine_of(g, "{\"threads\": 2, \"autotune\": {\"enabled\": false}}");
    uint32_t ids[CUES * 4];
    size_t offsets[CUES + 1] = {0};
    size_t at = 0;
    for (uint32_t c = 0; c < CUES; c++) {
        for (uint32_t j = 0; j < 1 + c % 4; j++) ids[at++] = (c * 31u + j * 17u) % N;
        offsets[c + 1] = at;
    }
    size_t out_offsets[CUES + 1];
    uint32_t nodes[CUES * K], flags[CUES];
    float acts[CUES * K];
    axonal_status s = axonal_engine_recall_batch(e, ids, NULL, offsets, CUES, K, out_offsets, nodes, acts, CUES * K, flags);
    CHECK(s == AXONAL_STATUS_OK, "recall_batch: %s", error_text());
    int same = 1;
    for (uint32_t c = 0; c < CUES && s == AXONAL_STATUS_OK; c++) {
        uint32_t one_nodes[K], one_flags = 0;
        float one_acts[K];
        size_t count = 0;
        axonal_engine_recall_seeds(e, ids + offsets[c], NULL, offsets[c + 1] - offsets[c], one_nodes, one_acts, K, &count, &one_flags);
        same &= count == out_offsets[c + 1] - out_offsets[c] && one_flags == flags[c];
        for (size_t i = 0; i < count && same; i++)
            same &= one_nodes[i] == nodes[out_offsets[c] + i] && memcmp(&one_acts[i], &acts[out_offsets[c] + i], sizeof(float)) == 0;
    }
    CHECK(same, "each cue of the batch answers as its own recall");

    /* k = 0: the configured recall.k (10 by default) for the capacity check and every cue. */
    s = axonal_engine_recall_batch(e, ids, NULL, offsets, CUES, 0, out_offsets, nodes, acts, CUES * K, flags);
    CHECK(s == AXONAL_STATUS_BUFFER_TOO_SMALL && message_has("× 10"), "k 0 is recall.k: %s", error_text());
    {
        size_t wide_offsets[CUES + 1];
        static uint32_t wide_nodes[CUES * 10];
        static float wide_acts[CUES * 10];
        s = axonal_engine_recall_batch(e, ids, NULL, offsets, CUES, 0, wide_offsets, wide_nodes, wide_acts, CUES * 10, NULL);
        int bounded = s == AXONAL_STATUS_OK;
        for (uint32_t c = 0; c < CUES && bounded; c++) bounded = wide_offsets[c + 1] - wide_offsets[c] <= 10;
        CHECK(bounded, "k 0 answers at most recall.k per cue: %s", error_text());
    }

    /* An empty batch answers nothing. */
    size_t empty_offsets[1] = {0}, empty_out[1] = {99};
    s = axonal_engine_recall_batch(e, NULL, NULL, empty_offsets, 0, K, empty_out, NULL, NULL, 0, NULL);
    CHECK(s == AXONAL_STATUS_OK && empty_out[0] == 0, "empty batch: %s", error_text());

    /* Bad input: each an error naming the problem. */
    uint32_t bad_ids[] = {1, 2, 9999, 3};
    size_t good_offsets[] = {0, 2, 3, 4}, backwards[] = {0, 3, 2, 4}, overrun[] = {0, 2, 5, 4};
    s = axonal_engine_recall_batch(e, bad_ids, NULL, good_offsets, 3, K, out_offsets, nodes, acts, CUES * K, flags);
    CHECK(s == AXONAL_STATUS_RECALL && message_has("cues[1].seeds") && message_has("9999"), "id out of range: %s", error_text());
    s = axonal_engine_recall_batch(e, ids, NULL, backwards, 3, K, out_offsets, nodes, acts, CUES * K, flags);
    CHECK(s == AXONAL_STATUS_RECALL && message_has("offsets[2]"), "offsets decrease: %s", error_text());
    s = axonal_engine_recall_batch(e, ids, NULL, overrun, 3, K, out_offsets, nodes, acts, CUES * K, flags);
    CHECK(s == AXONAL_STATUS_RECALL && message_has("offsets[2]: 5 overruns the 4 seed ids"), "a cue past the ids: %s", error_text());
    size_t empty_cue[] = {0, 1, 1, 2};
    s = axonal_engine_recall_batch(e, ids, NULL, empty_cue, 3, K, out_offsets, nodes, acts, CUES * K, flags);
    CHECK(s == AXONAL_STATUS_RECALL && message_has("cues[1].seeds"), "an empty cue: %s", error_text());
    s = axonal_engine_recall_batch(e, ids, NULL, offsets, CUES, K, out_offsets, nodes, acts, CUES * K - 1, flags);
    CHECK(s == AXONAL_STATUS_BUFFER_TOO_SMALL && message_has("capacity"), "capacity too small: %s", error_text());
    s = axonal_engine_recall_batch(e, ids, NULL, offsets, CUES, SIZE_MAX, out_offsets, nodes, acts, CUES * K, flags);
    CHECK(s == AXONAL_STATUS_BUFFER_TOO_SMALL && message_has("more than a size_t holds"), "cue_count × k overflows: %s", error_text());
    s = axonal_engine_recall_batch(e, ids, NULL, NULL, CUES, K, out_offsets, nodes, acts, CUES * K, flags);
    CHECK(s == AXONAL_STATUS_NULL_ARGUMENT && message_has("seed_offsets"), "NULL offsets: %s", error_text());

    /* A forced-open breaker: every cue answered by the fallback, its reason in its flags. */
    CHECK(axonal_engine_set_breaker_override(e, "forced_open") == AXONAL_STATUS_OK, "override");
    s = axonal_engine_recall_batch(e, ids, NULL, offsets, CUES, K, out_offsets, nodes, acts, CUES * K, flags);
    int refused = s == AXONAL_STATUS_OK;
    for (uint32_t c = 0; c < CUES && refused; c++)
        refused = (flags[c] & AXONAL_RECALL_FLAG_FALLBACK) && (flags[c] & AXONAL_RECALL_FLAG_BREAKER_OPEN);
    CHECK(refused, "forced open: every cue flagged fallback + breaker_open");
    axonal_engine_free(e);
    axonal_graph_free(g);
}

int main(void) {
    test_versions();
    test_worked_examples();
    test_documents();
    test_tuner_audit();
    test_callbacks();
    test_probe_schedule_and_timeout();
    test_bad_input();
    test_concurrency();
#if defined(AXONAL_FEATURE_HTTP)
    test_http();
#endif
    test_hardening();
    test_living_graph();
    test_embedding_index();
    test_recall_batch();
    return REPORT();
}
