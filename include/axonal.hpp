/*
 * Axonal — a header-only C++17 RAII wrapper over the C ABI (axonal.h).
 *
 * Graph, GraphBuilder and Engine are move-only owners of their C handles. Every failure throws
 * axonal::Error, which carries the axonal_status and the library's message. Callbacks are
 * std::function; exceptions thrown by a callback never cross into the library (a probe that throws
 * reports unhealthy with the exception's message; a throwing transition callback is ignored).
 * Thread-safety follows the C types: an Engine may be used from many threads at once; a
 * GraphBuilder from one.
 */
#ifndef AXONAL_HPP
#define AXONAL_HPP

#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "axonal.h"

namespace axonal {

/* A failed call: its status (AXONAL_STATUS_*) and message. */
class Error : public std::runtime_error {
public:
    Error(axonal_status status, const std::string &message)
        : std::runtime_error(std::string(axonal_status_str(status)) + ": " + message), status_(status) {}
    axonal_status status() const noexcept { return status_; }

private:
    axonal_status status_;
};

namespace detail {

inline std::string last_error() {
    size_t needed = 0;
    axonal_last_error_message(nullptr, 0, &needed);
    std::string message(needed + 1, '\0');
    axonal_last_error_message(&message[0], message.size(), &needed);
    message.resize(needed);
    return message;
}

inline void check(axonal_status status) {
    if (status != AXONAL_STATUS_OK) throw Error(status, last_error());
}

/* Take ownership of a string the library returned (freed even if copying it throws). */
inline void same_length(size_t a, size_t b, size_t c) {
    if (a != b || b != c) throw Error(AXONAL_STATUS_INVALID_ARGUMENT, "arrays differ in length");
}

inline std::string take(char *text, size_t len) {
    struct Free {
        char *p;
        ~Free() { axonal_string_free(p); }
    } owner{text};
    return std::string(owner.p, len);
}

using Probe = std::function<std::pair<uint32_t, std::string>()>;
using Transition = std::function<void(const std::string &)>;

inline uint32_t probe_trampoline(void *userdata, char *reason, size_t reason_len) {
    try {
        auto result = (*static_cast<Probe *>(userdata))();
        std::strncpy(reason, result.second.c_str(), reason_len - 1);
        reason[reason_len - 1] = '\0';
        return result.first;
    } catch (const std::exception &e) {
        std::strncpy(reason, e.what(), reason_len - 1);
        reason[reason_len - 1] = '\0';
        return 2;
    } catch (...) {
        std::strncpy(reason, "probe threw", reason_len - 1);
        return 2;
    }
}

inline void transition_trampoline(void *userdata, const char *event_json, size_t len) {
    try {
        (*static_cast<Transition *>(userdata))(std::string(event_json, len));
    } catch (...) {
        /* Never unwind into the library. */
    }
}

template <typename T>
void destroy(void *userdata) {
    delete static_cast<T *>(userdata);
}

}  // namespace detail

/* Tiers of a node. */
enum class Tier : uint32_t { Hot = 0, Warm = 1, Cold = 2 };

/* An immutable graph; shared by engines, freed when the last owner lets go. */
class Graph {
public:
    explicit Graph(axonal_graph *handle) : g_(handle) {}
    Graph(Graph &&other) noexcept : g_(std::exchange(other.g_, nullptr)) {}
    Graph &operator=(Graph &&other) noexcept {
        std::swap(g_, other.g_);
        return *this;
    }
    Graph(const Graph &) = delete;
    Graph &operator=(const Graph &) = delete;
    ~Graph() { axonal_graph_free(g_); }

    /* Load from a TSV edge list and an optional node file ("" for none). */
    static Graph from_tsv(const std::string &edges, const std::string &nodes = "") {
        axonal_graph *g = nullptr;
        detail::check(axonal_graph_from_tsv(edges.c_str(), nodes.empty() ? nullptr : nodes.c_str(), &g));
        return Graph(g);
    }

    size_t node_count() const {
        size_t n = 0;
        detail::check(axonal_graph_node_count(g_, &n));
        return n;
    }

    size_t edge_count() const {
        size_t n = 0;
        detail::check(axonal_graph_edge_count(g_, &n));
        return n;
    }

    /* Save as a snapshot (temporary file, sync, rename); returns the file's size. */
    uint64_t save(const std::string &path) const {
        uint64_t bytes = 0;
        detail::check(axonal_graph_save(g_, path.c_str(), &bytes));
        return bytes;
    }

    /* Load a snapshot (mapped, every checksum verified). */
    static Graph load(const std::string &path) {
        axonal_graph *g = nullptr;
        detail::check(axonal_graph_load(path.c_str(), &g));
        return Graph(g);
    }

    const axonal_graph *get() const noexcept { return g_; }

private:
    axonal_graph *g_;
};

/* Collects nodes and edges; build() consumes it. */
class GraphBuilder {
public:
    explicit GraphBuilder(uint32_t node_count) { detail::check(axonal_graph_builder_new(node_count, &b_)); }
    GraphBuilder(GraphBuilder &&other) noexcept : b_(std::exchange(other.b_, nullptr)) {}
    GraphBuilder &operator=(GraphBuilder &&other) noexcept {
        std::swap(b_, other.b_);
        return *this;
    }
    GraphBuilder(const GraphBuilder &) = delete;
    GraphBuilder &operator=(const GraphBuilder &) = delete;
    ~GraphBuilder() { axonal_graph_builder_free(b_); }

    GraphBuilder &add_edges(const std::vector<uint32_t> &src, const std::vector<uint32_t> &dst, const std::vector<float> &weight) {
        if (src.size() != dst.size() || src.size() != weight.size()) throw Error(AXONAL_STATUS_INVALID_ARGUMENT, "edge arrays differ in length");
        if (src.empty()) return *this; /* nothing to add (the C call rejects a zero length) */
        detail::check(axonal_graph_builder_add_edges(b_, src.data(), dst.data(), weight.data(), src.size()));
        return *this;
    }
    GraphBuilder &set_tier(uint32_t node, Tier tier) {
        detail::check(axonal_graph_builder_set_tier(b_, node, static_cast<uint32_t>(tier)));
        return *this;
    }
    GraphBuilder &set_label(uint32_t node, const std::string &label) {
        detail::check(axonal_graph_builder_set_label(b_, node, label.c_str()));
        return *this;
    }
    GraphBuilder &set_embedding(uint32_t node, const std::vector<float> &embedding) {
        detail::check(axonal_graph_builder_set_embedding(b_, node, embedding.data(), embedding.size()));
        return *this;
    }

    Graph build() {
        axonal_graph *g = nullptr;
        axonal_status status = axonal_graph_builder_build(std::exchange(b_, nullptr), &g);
        detail::check(status);
        return Graph(g);
    }

private:
    axonal_graph_builder *b_ = nullptr;
};

/* The answer of Engine::recall_seeds (and of each cue of Engine::recall_batch). */
struct Results {
    std::vector<uint32_t> nodes;
    std::vector<float> activations;
    bool fallback = false;
    bool truncated = false;
    uint32_t flags = 0; /* AXONAL_RECALL_FLAG_* bits: who answered, why */
};

#ifdef AXONAL_FEATURE_HTTP
class Server;
#endif

/* A spreading-activation engine; thread-safe. */
class Engine {
public:
    /* config_json: docs/spec.md §14 JSON, "" for defaults. */
    explicit Engine(const Graph &graph, const std::string &config_json = "") {
        detail::check(axonal_engine_new(graph.get(), config_json.empty() ? nullptr : config_json.c_str(), &e_));
    }
    Engine(Engine &&other) noexcept : e_(std::exchange(other.e_, nullptr)) {}
    Engine &operator=(Engine &&other) noexcept {
        std::swap(e_, other.e_);
        return *this;
    }
    Engine(const Engine &) = delete;
    Engine &operator=(const Engine &) = delete;
    ~Engine() { axonal_engine_free(e_); }

    void replace_graph(const Graph &graph) { detail::check(axonal_engine_replace_graph(e_, graph.get())); }

    /* The living graph (docs/spec.md §16): each call is one atomic batch and returns the new version. */
    /* Add count nodes (tiers, labels, embeddings: one per node or empty; an empty label is no label);
       returns the first new id. */
    uint32_t add_nodes(uint32_t count, const std::vector<Tier> &tiers = {}, const std::vector<std::string> &labels = {},
                       const std::vector<float> &embeddings = {}, size_t dim = 0) const {
        std::vector<uint32_t> tier_numbers;
        for (Tier t : tiers) tier_numbers.push_back(static_cast<uint32_t>(t));
        if (!tiers.empty() && tiers.size() != count) throw Error(AXONAL_STATUS_INVALID_ARGUMENT, "tiers: one per node");
        if (!labels.empty() && labels.size() != count) throw Error(AXONAL_STATUS_INVALID_ARGUMENT, "labels: one per node");
        if (!embeddings.empty() && (dim == 0 || embeddings.size() / dim != count || embeddings.size() % dim != 0))
            throw Error(AXONAL_STATUS_INVALID_ARGUMENT, "embeddings: count * dim values");
        std::vector<const char *> label_pointers;
        for (const std::string &l : labels) label_pointers.push_back(l.empty() ? nullptr : l.c_str());
        uint32_t first = 0;
        detail::check(axonal_engine_add_nodes(e_, count, tiers.empty() ? nullptr : tier_numbers.data(),
                                              labels.empty() ? nullptr : label_pointers.data(),
                                              embeddings.empty() ? nullptr : embeddings.data(), embeddings.empty() ? 0 : dim, &first,
                                              nullptr));
        return first;
    }
    uint64_t add_edges(const std::vector<uint32_t> &src, const std::vector<uint32_t> &dst, const std::vector<float> &weight) const {
        detail::same_length(src.size(), dst.size(), weight.size());
        uint64_t version = 0;
        detail::check(axonal_engine_add_edges(e_, src.data(), dst.data(), weight.data(), src.size(), &version));
        return version;
    }
    uint64_t set_weights(const std::vector<uint32_t> &src, const std::vector<uint32_t> &dst, const std::vector<float> &weight) const {
        detail::same_length(src.size(), dst.size(), weight.size());
        uint64_t version = 0;
        detail::check(axonal_engine_set_weights(e_, src.data(), dst.data(), weight.data(), src.size(), &version));
        return version;
    }
    uint64_t remove_edges(const std::vector<uint32_t> &src, const std::vector<uint32_t> &dst) const {
        detail::same_length(src.size(), dst.size(), src.size());
        uint64_t version = 0;
        detail::check(axonal_engine_remove_edges(e_, src.data(), dst.data(), src.size(), &version));
        return version;
    }
    uint64_t set_tiers(const std::vector<uint32_t> &nodes, const std::vector<Tier> &tiers) const {
        detail::same_length(nodes.size(), tiers.size(), nodes.size());
        std::vector<uint32_t> tier_numbers;
        for (Tier t : tiers) tier_numbers.push_back(static_cast<uint32_t>(t));
        uint64_t version = 0;
        detail::check(axonal_engine_set_tiers(e_, nodes.data(), tier_numbers.data(), nodes.size(), &version));
        return version;
    }
    uint64_t graph_version() const {
        uint64_t version = 0;
        detail::check(axonal_engine_graph_version(e_, &version));
        return version;
    }
    /* Fold pending changes into a fresh graph now; the version does not change. */
    uint64_t compact() const {
        uint64_t version = 0;
        detail::check(axonal_engine_compact(e_, &version));
        return version;
    }
    /* Save the current version as a snapshot; returns the version saved. */
    uint64_t save(const std::string &path) const {
        uint64_t version = 0;
        detail::check(axonal_engine_save(e_, path.c_str(), &version));
        return version;
    }

    /* The top k results for seed ids (activations: empty for all 1.0). */
    Results recall_seeds(const std::vector<uint32_t> &seeds, size_t k, const std::vector<float> &activations = {}) const {
        if (!activations.empty() && activations.size() != seeds.size()) throw Error(AXONAL_STATUS_INVALID_ARGUMENT, "activations differ in length from seeds");
        Results r;
        r.nodes.resize(k);
        r.activations.resize(k);
        size_t count = 0;
        uint32_t flags = 0;
        detail::check(axonal_engine_recall_seeds(e_, seeds.data(), activations.empty() ? nullptr : activations.data(), seeds.size(), r.nodes.data(),
                                                 r.activations.data(), k, &count, &flags));
        r.nodes.resize(count);
        r.activations.resize(count);
        r.fallback = flags & AXONAL_RECALL_FLAG_FALLBACK;
        r.truncated = flags & AXONAL_RECALL_FLAG_TRUNCATED;
        r.flags = flags;
        return r;
    }

    /* The top k results of each cue (seed ids, activation 1.0), exactly as recall_seeds answers it,
       in one call (docs/spec.md §19). An invalid cue throws, naming it, and nothing is recalled. */
    std::vector<Results> recall_batch(const std::vector<std::vector<uint32_t>> &cues, size_t k) const {
        if (k == 0) throw Error(AXONAL_STATUS_INVALID_ARGUMENT, "k must be at least 1 (it sizes the result buffers)");
        std::vector<uint32_t> ids;
        std::vector<size_t> offsets{0};
        for (const auto &cue : cues) {
            ids.insert(ids.end(), cue.begin(), cue.end());
            offsets.push_back(ids.size());
        }
        std::vector<size_t> out_offsets(cues.size() + 1);
        std::vector<uint32_t> nodes(cues.size() * k);
        std::vector<float> activations(cues.size() * k);
        std::vector<uint32_t> flags(cues.size());
        detail::check(axonal_engine_recall_batch(e_, ids.data(), nullptr, offsets.data(), cues.size(), k, out_offsets.data(), nodes.data(),
                                                 activations.data(), nodes.size(), flags.data()));
        std::vector<Results> out(cues.size());
        for (size_t i = 0; i < cues.size(); ++i) {
            out[i].nodes.assign(nodes.begin() + out_offsets[i], nodes.begin() + out_offsets[i + 1]);
            out[i].activations.assign(activations.begin() + out_offsets[i], activations.begin() + out_offsets[i + 1]);
            out[i].fallback = flags[i] & AXONAL_RECALL_FLAG_FALLBACK;
            out[i].truncated = flags[i] & AXONAL_RECALL_FLAG_TRUNCATED;
            out[i].flags = flags[i];
        }
        return out;
    }

    /* Recall from a cue JSON to the result JSON (docs/spec.md §15). */
    std::string recall(const std::string &cue_json) const { return json(axonal_engine_recall, cue_json); }
    std::string snapshot_json() const { return json(axonal_engine_snapshot_json); }
    std::string prometheus_text() const { return json(axonal_engine_prometheus_text); }
    std::string health_json() const { return json(axonal_engine_health_json); }
    std::string check_probe(const std::string &name) const { return json(axonal_engine_check_probe, name); }
    std::string config_json() const { return json(axonal_engine_config_json); }
    std::string autotune_audit_json() const { return json(axonal_engine_autotune_audit_json); }
    std::string autotune_now() const { return json(axonal_engine_autotune_now); }

    void update_config(const std::string &patch_json) const { detail::check(axonal_engine_update_config(e_, patch_json.c_str())); }
    void set_breaker_override(const std::string &mode) const { detail::check(axonal_engine_set_breaker_override(e_, mode.c_str())); }
    uint32_t breaker_state() const {
        uint32_t state = 0;
        detail::check(axonal_engine_breaker_state(e_, &state));
        return state;
    }
    void set_autotune_enabled(bool enabled) const { detail::check(axonal_engine_set_autotune_enabled(e_, enabled)); }
    void set_chaos(const std::string &chaos_json) const { detail::check(axonal_engine_set_chaos(e_, chaos_json.c_str())); }
    void clear_chaos() const { detail::check(axonal_engine_set_chaos(e_, nullptr)); }

    /* fn returns {status (0 healthy, 1 degraded, 2 unhealthy), reason}. */
    uint64_t register_probe(const std::string &name, detail::Probe fn, const std::string &options_json = "") const {
        uint64_t id = 0;
        auto *owned = new detail::Probe(std::move(fn));
        detail::check(axonal_engine_register_probe(e_, name.c_str(), options_json.empty() ? nullptr : options_json.c_str(), detail::probe_trampoline,
                                                   owned, detail::destroy<detail::Probe>, &id));
        return id;
    }
    void unregister_probe(uint64_t id) const { detail::check(axonal_engine_unregister_probe(e_, id)); }

    /* fn receives each transition event's JSON, in order, on the engine's dispatcher thread. */
    uint64_t on_breaker_transition(detail::Transition fn) const {
        uint64_t id = 0;
        auto *owned = new detail::Transition(std::move(fn));
        detail::check(axonal_engine_on_breaker_transition(e_, detail::transition_trampoline, owned, detail::destroy<detail::Transition>, &id));
        return id;
    }
    void remove_transition_callback(uint64_t id) const { detail::check(axonal_engine_remove_transition_callback(e_, id)); }
    void flush_transition_events() const { detail::check(axonal_engine_flush_transition_events(e_)); }

#ifdef AXONAL_FEATURE_HTTP
    /* Serve the HTTP surface (docs/spec.md §12) on addr ("127.0.0.1:0" picks a free port); options_json as in
       axonal_engine_serve_http, "" for defaults (admin writes disabled). */
    Server serve_http(const std::string &addr = "127.0.0.1:9464", const std::string &options_json = "") const;
#endif

    const axonal_engine *get() const noexcept { return e_; }

private:
    template <typename F>
    std::string json(F f) const {
        char *text = nullptr;
        size_t len = 0;
        detail::check(f(e_, &text, &len));
        return detail::take(text, len);
    }
    template <typename F>
    std::string json(F f, const std::string &arg) const {
        char *text = nullptr;
        size_t len = 0;
        detail::check(f(e_, arg.c_str(), &text, &len));
        return detail::take(text, len);
    }

    axonal_engine *e_ = nullptr;
};

#ifdef AXONAL_FEATURE_HTTP
/* A running HTTP server; stops (closing its connections) when destroyed. Thread-safe. It holds its
   engine weakly: destroying the Engine first is fine (that stops the server; this object then only
   frees its handle). */
class Server {
public:
    explicit Server(axonal_http_server *s) noexcept : s_(s) {}
    Server(Server &&other) noexcept : s_(std::exchange(other.s_, nullptr)) {}
    Server &operator=(Server &&other) noexcept {
        std::swap(s_, other.s_);
        return *this;
    }
    Server(const Server &) = delete;
    Server &operator=(const Server &) = delete;
    ~Server() { axonal_http_server_stop(s_); }

    /* "host:port" with the real port. */
    std::string local_addr() const {
        char *text = nullptr;
        size_t len = 0;
        detail::check(axonal_http_server_local_addr(s_, &text, &len));
        return detail::take(text, len);
    }

    /* "http://host:port" a client on this host can connect to (loopback for 0.0.0.0 / ::). */
    std::string url() const {
        char *text = nullptr;
        size_t len = 0;
        detail::check(axonal_http_server_url(s_, &text, &len));
        return detail::take(text, len);
    }
    /* Stop now (the destructor then does nothing). */
    void stop() noexcept { axonal_http_server_stop(std::exchange(s_, nullptr)); }

private:
    axonal_http_server *s_ = nullptr;
};

inline Server Engine::serve_http(const std::string &addr, const std::string &options_json) const {
    axonal_http_server *s = nullptr;
    detail::check(axonal_engine_serve_http(e_, addr.c_str(), options_json.empty() ? nullptr : options_json.c_str(), &s));
    return Server(s);
}
#endif

}  // namespace axonal

#endif
