// The C++17 wrapper: RAII, exceptions carrying status and message, std::function callbacks.
#include <atomic>
#include <cmath>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <stdlib.h>
#include <unistd.h>

#include "axonal.hpp"

static int passed = 0, failed = 0;

#define CHECK(cond, what)                                                        \
    do {                                                                         \
        if (cond) {                                                              \
            passed++;                                                            \
        } else {                                                                 \
            failed++;                                                            \
            std::fprintf(stderr, "FAIL %s:%d: %s (%s)\n", __FILE__, __LINE__, #cond, what); \
        }                                                                        \
    } while (0)

static axonal::Graph cycle() {
    axonal::GraphBuilder builder(5);
    builder.add_edges({0, 1, 2, 3, 4}, {1, 2, 3, 4, 0}, {1, 1, 1, 1, 1}).set_tier(4, axonal::Tier::Cold).set_label(0, "start");
    return builder.build();
}

int main() {
    axonal::Graph graph = cycle();
    CHECK(graph.node_count() == 5 && graph.edge_count() == 5, "counts");
    axonal::Engine engine(graph, R"({"spreading": {"max_depth": 3}, "breaker": {"window_size": 10, "min_calls": 5}})");

    auto r = engine.recall_seeds({0}, 10);
    CHECK(r.nodes.size() == 4 && r.nodes[3] == 3 && std::fabs(r.activations[3] - 0.512f) < 1e-6f, "worked example 1");
    CHECK(!r.fallback && !r.truncated, "flags");
    std::string json = engine.recall(R"({"seeds": [0], "k": 2})");
    CHECK(json.find("\"label\":\"start\"") != std::string::npos, json.c_str());

    // A batch answers each cue as recall_seeds does; a bad cue throws, naming it.
    auto batch = engine.recall_batch({{0}, {2, 3}, {4}}, 10);
    CHECK(batch.size() == 3 && batch[0].nodes == r.nodes && batch[0].activations == r.activations, "batch cue 0 as its own recall");
    auto third = engine.recall_seeds({4}, 10);
    CHECK(batch[2].nodes == third.nodes && batch[2].flags == third.flags, "batch cue 2 as its own recall");
    try {
        engine.recall_batch({{0}, {77}}, 4);
        CHECK(false, "no exception");
    } catch (const axonal::Error &e) {
        CHECK(e.status() == AXONAL_STATUS_RECALL && std::string(e.what()).find("cues[1].seeds") != std::string::npos, e.what());
    }

    // Errors are exceptions with the status and the message.
    try {
        engine.update_config(R"({"spreading": {"max_depht": 3}})");
        CHECK(false, "no exception");
    } catch (const axonal::Error &e) {
        CHECK(e.status() == AXONAL_STATUS_CONFIG, e.what());
        CHECK(std::string(e.what()).find("spreading.max_depht") != std::string::npos, e.what());
    }
    try {
        engine.recall_seeds({99}, 4);
        CHECK(false, "no exception");
    } catch (const axonal::Error &e) {
        CHECK(e.status() == AXONAL_STATUS_RECALL, e.what());
    }
    try {
        axonal::GraphBuilder bad(2);
        bad.add_edges({0}, {1}, {NAN});
        CHECK(false, "no exception");
    } catch (const axonal::Error &e) {
        CHECK(e.status() == AXONAL_STATUS_GRAPH, e.what());
    }

    // Callbacks as std::function.
    std::atomic<int> probe_calls{0};
    uint64_t probe = engine.register_probe("queue", [&] {
        probe_calls++;
        return std::make_pair(1u, std::string("backlog"));
    }, R"({"interval_ms": 3600000})");
    std::string entry = engine.check_probe("queue");
    CHECK(entry.find("\"reason\":\"backlog\"") != std::string::npos && probe_calls >= 1, entry.c_str());
    uint64_t thrower = engine.register_probe("thrower", []() -> std::pair<uint32_t, std::string> { throw std::runtime_error("boom"); },
                                             R"({"interval_ms": 3600000})");
    entry = engine.check_probe("thrower");
    CHECK(entry.find("boom") != std::string::npos, entry.c_str());
    engine.unregister_probe(probe);
    engine.unregister_probe(thrower);

    std::vector<std::string> events;
    uint64_t callback = engine.on_breaker_transition([&](const std::string &event) { events.push_back(event); });
    engine.set_chaos(R"({"failure_rate": 1.0, "seed": 1})");
    for (int i = 0; i < 10; i++) engine.recall_seeds({0}, 4);
    engine.clear_chaos();
    engine.flush_transition_events();
    CHECK(engine.breaker_state() == 2, "breaker open");
    CHECK(events.size() == 1 && events[0].find("\"to\":\"open\"") != std::string::npos, "transition seen");
    engine.remove_transition_callback(callback);

    // The living graph and snapshots.
    {
        axonal::Engine live(graph, R"({"autotune": {"enabled": false}})");
        uint32_t first = live.add_nodes(2, {axonal::Tier::Warm, axonal::Tier::Hot}, {"fresh", ""});
        CHECK(first == 5 && live.graph_version() == 1, "add_nodes");
        CHECK(live.add_edges({4, 5}, {5, 6}, {1.0f, 0.5f}) == 2, "add_edges");
        CHECK(live.set_weights({5}, {6}, {0.25f}) == 3 && live.set_tiers({6}, {axonal::Tier::Cold}) == 4, "set_weights, set_tiers");
        CHECK(live.remove_edges({4}, {5}) == 5 && live.compact() == 5, "remove_edges, compact");
        std::string recalled = live.recall(R"({"seeds": [5], "k": 3})");
        CHECK(recalled.find("\"graph_version\":5") != std::string::npos, recalled.c_str());
        try {
            live.remove_edges({4}, {5});
            CHECK(false, "no exception");
        } catch (const axonal::Error &e) {
            CHECK(e.status() == AXONAL_STATUS_GRAPH && std::string(e.what()).find("no edge 4 -> 5") != std::string::npos, e.what());
        }
        try {
            live.add_edges({0, 1}, {1}, {0.5f, 0.5f});
            CHECK(false, "no exception");
        } catch (const axonal::Error &e) {
            CHECK(e.status() == AXONAL_STATUS_INVALID_ARGUMENT, e.what());
        }
        try {
            live.add_nodes(10, {}, {}, std::vector<float>(4, 1.0f), 4);  // 4 values for 10 nodes
            CHECK(false, "no exception");
        } catch (const axonal::Error &e) {
            CHECK(e.status() == AXONAL_STATUS_INVALID_ARGUMENT && std::string(e.what()).find("embeddings") != std::string::npos,
                  e.what());
        }
        CHECK(live.graph_version() == 5, "rejected batches make no version");
        char dir[] = "/tmp/axonal-cpp-XXXXXX";
        CHECK(mkdtemp(dir) != nullptr, "mkdtemp");
        std::string path = std::string(dir) + "/live.axs";
        CHECK(live.save(path) == 5, "engine save");
        axonal::Graph loaded = axonal::Graph::load(path);
        CHECK(loaded.node_count() == 7 && loaded.edge_count() == 6, "loaded counts");
        axonal::Engine restored(loaded);
        CHECK(restored.graph_version() == 5, "restored version");
        // The results (not the stats, which carry timings) are the same.
        auto results = [](const std::string &json) { return json.substr(0, json.find("\"stats\"")); };
        CHECK(results(restored.recall(R"({"seeds": [5], "k": 3})")) == results(recalled), "restored recalls the same");
        CHECK(loaded.save(path) > 64, "graph save");
        std::remove(path.c_str());
        try {
            axonal::Graph::load(path);
            CHECK(false, "no exception");
        } catch (const axonal::Error &e) {
            CHECK(e.status() == AXONAL_STATUS_GRAPH && std::string(e.what()).find("live.axs") != std::string::npos, e.what());
        }
        rmdir(dir);
    }

    // Move-only owners: moving leaves the source empty and the target working.
    axonal::Engine moved = std::move(engine);
    CHECK(moved.snapshot_json().find("\"schema\"") != std::string::npos, "moved engine works");
    CHECK(moved.prometheus_text().find("axonal_spreading_recalls_total") != std::string::npos, "prometheus");

    // Concurrent use from several threads.
    moved.set_breaker_override("forced_closed");
    std::vector<std::thread> threads;
    std::atomic<int> errors{0};
    for (int t = 0; t < 4; t++) {
        threads.emplace_back([&] {
            for (int i = 0; i < 200; i++) {
                try {
                    moved.recall_seeds({static_cast<uint32_t>(i % 5)}, 4);
                } catch (...) {
                    errors++;
                }
            }
        });
    }
    for (auto &t : threads) t.join();
    CHECK(errors == 0, "concurrent recalls");

    // The HTTP server: RAII, the real port, and errors as exceptions.
    {
        axonal::Server server = moved.serve_http("127.0.0.1:0");
        std::string addr = server.local_addr();
        CHECK(addr.rfind("127.0.0.1:", 0) == 0 && addr != "127.0.0.1:0", addr.c_str());
        CHECK(server.url() == "http://" + addr, "url");
        axonal::Server everywhere = moved.serve_http("0.0.0.0:0");
        CHECK(everywhere.url().rfind("http://127.0.0.1:", 0) == 0, everywhere.url().c_str());
        try {
            moved.serve_http(addr);
            CHECK(false, "no exception for a taken port");
        } catch (const axonal::Error &e) {
            CHECK(e.status() == AXONAL_STATUS_CONFIG, e.what());
        }
        try {
            moved.serve_http("127.0.0.1:0", R"({"admin_tokn": "x"})");
            CHECK(false, "no exception for an unknown option");
        } catch (const axonal::Error &e) {
            CHECK(std::string(e.what()).find("admin_tokn") != std::string::npos, e.what());
        }
        server.stop();
        server.stop();
    }

    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
