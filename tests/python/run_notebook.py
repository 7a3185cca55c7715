"""The monitoring notebook, docs/notebooks/monitoring.ipynb: its cells are defined below.

`--write` builds the notebook from these cells, executes it headless (nbclient) and saves it with
its outputs (committed, so it reads well on GitHub). Without `--write` (scripts/test) it executes the
committed notebook, after checking that it still has these cells. Either way it checks the outputs:
no error cells, the breaker opened under chaos and closed again, the monitor drew the transitions,
and the tuner applied a change and logged it.

    target/venv/bin/python tests/python/run_notebook.py [--write]
"""

import pathlib
import sys

import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "docs" / "notebooks" / "monitoring.ipynb"

CELLS = [
    (
        "markdown",
        """# Monitoring a live Axonal engine

This notebook builds an engine on a real semantic network (WordNet 3.0 nouns from Debian's
`wordnet-base`; a generated graph where it is missing), runs a recall workload, injects faults, and
watches `axonal.notebook.Monitor` catch the circuit breaker opening, half-opening and closing again.
It ends with the auto-tuner's decision and audit log. `scripts/test` executes it headless and checks
its outputs.""",
    ),
    (
        "code",
        """import pathlib, random, threading, time
import numpy as np
import axonal
from axonal.notebook import Monitor

WORDNET = pathlib.Path("/usr/share/wordnet/data.noun")

def wordnet_nouns(path):
    \"\"\"Noun synsets as nodes; hypernym/hyponym (and other) pointers between nouns as edges.\"\"\"
    ids, labels, edges = {}, [], []
    weight = {"@": 0.8, "@i": 0.8, "~": 0.6, "~i": 0.6, "#m": 0.6, "#p": 0.6, "#s": 0.6, "%m": 0.6, "%p": 0.6, "%s": 0.6}
    lines = [l for l in path.read_text(encoding="latin-1").splitlines() if not l.startswith("  ")]
    for line in lines:
        fields = line.split()
        ids[fields[0]] = len(labels)
        labels.append(fields[4])
    for line in lines:
        fields = line.split()
        words = int(fields[3], 16)
        at = 4 + 2 * words
        for p in range(int(fields[at])):
            symbol, target, pos = fields[at + 1 + 4 * p : at + 4 + 4 * p]
            if pos == "n" and symbol in weight:
                edges.append((ids[fields[0]], ids[target], weight[symbol]))
    src, dst, w = zip(*edges)
    return axonal.Graph.from_edges(src, dst, w, num_nodes=len(labels), labels=labels), "WordNet 3.0 nouns"

def generated(n=50_000):
    rng = np.random.default_rng(1)
    src = rng.integers(0, n, 8 * n, dtype=np.uint32)
    dst = rng.integers(0, n, 8 * n, dtype=np.uint32)
    return axonal.Graph.from_edges(src, dst, np.full(8 * n, 0.5, dtype=np.float32), num_nodes=n), "generated"

graph, name = wordnet_nouns(WORDNET) if WORDNET.exists() else generated()
print(f"{name}: {graph.num_nodes} nodes, {graph.num_edges} edges")""",
    ),
    (
        "code",
        """engine = axonal.Engine(graph, {
    "spreading": {"latency_budget_ms": 20},
    "breaker": {"window_size": 20, "min_calls": 10, "cooldown_ms": 1000, "max_cooldown_ms": 4000},
    "health": {"interval_ms": 250},
})
transitions = []
engine.on_breaker_transition(lambda event: transitions.append(f"{event['from']} → {event['to']} ({event['reason']})"))
dog = graph.find("dog")
if dog is not None:
    r = engine.recall([dog], k=5)
    print("dog →", [graph.label(int(v)) for v in r.nodes])
monitor = Monitor(engine, interval=0.25, history=400)
monitor.show()""",
    ),
    (
        "code",
        """def workload(seconds, threads=2):
    stop = time.monotonic() + seconds
    def run(seed):
        rng = random.Random(seed)
        while time.monotonic() < stop:
            engine.recall([rng.randrange(graph.num_nodes)])
    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers: w.start()
    for w in workers: w.join()

workload(1.5)                                   # healthy
engine.set_chaos(failure_rate=1.0, seed=7)      # every spread fails: the breaker opens
monitor.mark("failures on")                     # a dashed line on every chart
workload(1.5)
engine.clear_chaos()                            # faults stop: half-open after the cooldown, then closed
monitor.mark("failures off")
deadline = time.monotonic() + 15
while engine.breaker_state != "closed" and time.monotonic() < deadline:
    workload(0.25)
workload(0.5)
monitor.poll()
print("breaker transitions:", *transitions, sep="\\n  ")""",
    ),
    (
        "code",
        """monitor.stop()
monitor  # the final panel: the breaker timeline marks each transition""",
    ),
    (
        "markdown",
        """## The auto-tuner under latency pressure

Every hot-tier phase now takes 6 ms longer (chaos), so the hot tier's 10 ms timeout truncates most
spreads and deeper recalls overrun the 20 ms budget. The breaker is held closed so that slow calls
keep spreading; one tuning step takes the baseline, the next one acts — and the audit log says which
knob it moved and why, with its predicted improvement.""",
    ),
    (
        "code",
        """engine.breaker_override = "forced_closed"
engine.autotune_now()                                # baseline interval
engine.set_chaos(latency_ms={"hot": 6.0}, seed=3)
workload(1.5)
decision = engine.autotune_now()
print("tuner decision:", decision["action"], "—", decision["reason"])
engine.clear_chaos()
engine.breaker_override = "auto"
def changes(old, new, prefix=""):
    for key in old:
        if isinstance(old[key], dict):
            yield from changes(old[key], new[key], f"{prefix}{key}.")
        elif old[key] != new[key]:
            yield f"{prefix}{key} {old[key]} → {new[key]}"

for entry in engine.autotune_audit():
    print(f"audit: {entry['action']} {', '.join(changes(entry['old'], entry['new']))}, predicted {entry['predicted']:.0%}")
engine.close()""",
    ),
]


def build() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, text in CELLS:
        cell = nbformat.v4.new_markdown_cell(text) if kind == "markdown" else nbformat.v4.new_code_cell(text)
        nb.cells.append(cell)
    return nb


def text_of(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                raise SystemExit(f"error cell: {output.get('ename')}: {output.get('evalue')}")
            parts.append(output.get("text", ""))
            parts.extend(str(v) for v in output.get("data", {}).values())
    return "\n".join(parts)


def main() -> None:
    write = "--write" in sys.argv
    nb = build()
    if not write:
        # Execute the committed notebook, after checking that it is the one these cells describe.
        committed = nbformat.read(NOTEBOOK, as_version=4)
        if [c.source for c in committed.cells] != [c.source for c in nb.cells]:
            raise SystemExit(f"{NOTEBOOK.relative_to(ROOT)} differs from the cells in {__file__}: run it with --write")
        nb = committed
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    out = text_of(nb)
    for expected in ("closed → open", "open → half_open", "half_open → closed", 'class="transition"', "audit: apply",
                     "<title>failures on</title>", 'class="fault"',
                     # the panel's own record of a state shorter than its poll interval
                     "<title>breaker open → half_open</title>"):
        if expected not in out:
            raise SystemExit(f"the notebook's outputs lack {expected!r}")
    if write:
        NOTEBOOK.parent.mkdir(parents=True, exist_ok=True)
        for cell in nb.cells:  # stable files: no execution timestamps
            cell.get("metadata", {}).pop("execution", None)
        nbformat.write(nb, NOTEBOOK)
        print(f"wrote {NOTEBOOK.relative_to(ROOT)}")
    print("notebook: breaker opened and closed, monitor showed it, no error cells")


if __name__ == "__main__":
    main()
