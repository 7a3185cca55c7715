"""The README's Python example runs as written."""

import pathlib
import re


def test_the_readme_python_example_runs(capsys):
    readme = (pathlib.Path(__file__).parents[2] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert len(blocks) == 2, "the example, and the Ray example (run by test_ray.py on its cluster)"
    exec(compile(blocks[0], "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "[0 3 1]" in out and "spreading" in out
    assert "[[0, 3], [1, 2]]" in out, "the batch answered each cue"
    assert "spreading.decay" in out
    assert "\n200\n" in out, "the example served /health/spreading"
    assert "True ann" in out, "the embedding cue found its own node through the index"
