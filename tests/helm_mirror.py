"""A local HELM mirror for tests: a HELM-layout tree written from a slice of helm_mmlu, served
over HTTP on 127.0.0.1 (standard library only), with fault injection and a request log.

Layout, as in HELM's bucket (../shared/HELM.md):
    <root>/<project>/benchmark_output/releases/<release>/{summary,runs_to_run_suites}.json
    <root>/<project>/benchmark_output/runs/<suite>/<run_name>/{run_spec,instances,
        display_predictions | per_instance_stats, stats}.json
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import polars as pl

LETTERS = "ABCDEFGHIJ"


def split_options(text: str) -> tuple[str, list[str]]:
    """Invert the reader's multiple-choice text: question and its lettered options.

    helm_mmlu texts end in "\\nA. ...\\nB. ...\\nC. ...\\nD. ..."; a text without that tail
    is all question.
    """
    cuts, end = [], len(text)
    for letter in "DCBA":
        at = text.rfind(f"\n{letter}. ", 0, end)
        if at < 0:
            return text, []
        cuts.append(at)
        end = at
    cuts.reverse()
    options = [text[a + 4:b] for a, b in zip(cuts, [*cuts[1:], len(text)])]
    return text[:cuts[0]], options


def run_name(subject: str, model: str) -> str:
    """An MMLU project run name, as HELM writes it."""
    return (f"mmlu:subject={subject},method=multiple_choice_joint,"
            f"model={model.replace('/', '_')},eval_split=test,groups=mmlu_{subject}")


def _dump(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def write_tree(frame: pl.DataFrame, root: Path, project: str = "mmlu",
               release: str = "v1.13.0", suite: str = "v1.0.0",
               per_instance_stats_runs: frozenset[str] = frozenset()) -> dict[str, str]:
    """Write the HELM tree of `frame` (helm_mmlu rows); returns run name -> model id.

    Runs named in per_instance_stats_runs get per_instance_stats.json instead of
    display_predictions.json (the reader's fallback). Every run also holds two `train`
    instances and a perturbed copy of its first instance, which the reader must ignore.
    """
    base = root / project / "benchmark_output"
    runs: dict[str, str] = {}
    for (subject,), rows in frame.sort("dataset").group_by("dataset", maintain_order=True):
        instances_frame = rows.select("helm_instance_id", "text").unique(
            "helm_instance_id", keep="first", maintain_order=True)
        instances = []
        for k in range(2):
            instances.append({"input": {"text": f"train question {k}"}, "references": [],
                              "split": "train", "id": f"id{k}"})
        for helm_id, text in instances_frame.iter_rows():
            question, options = split_options(text)
            instances.append({
                "input": {"text": question},
                "references": [{"output": {"text": o}, "tags": []} for o in options],
                "split": "test", "id": helm_id})
        first = dict(instances[2])
        instances.append({**first, "input": {"text": first["input"]["text"].upper()},
                          "perturbation": {"name": "robustness", "robustness": True}})
        for (model,), scores in rows.group_by("model", maintain_order=True):
            name = run_name(subject, model)
            runs[name] = model
            folder = base / "runs" / suite / name
            _dump(folder / "run_spec.json", {
                "name": name,
                "scenario_spec": {"class_name": "helm.benchmark.scenarios.mmlu_scenario."
                                  "MMLUScenario", "args": {"subject": subject}},
                "adapter_spec": {"method": "multiple_choice_joint", "model": model,
                                 "num_train_trials": 1, "max_train_instances": 5},
                "metric_specs": [], "groups": [f"mmlu_{subject}"]})
            _dump(folder / "instances.json", instances)
            pairs = list(scores.select("helm_instance_id", "score").iter_rows())
            perturbed = {"instance_id": pairs[0][0], "train_trial_index": 0,
                         "perturbation": {"name": "robustness"}}
            if name in per_instance_stats_runs:
                def stat(value: float) -> list[dict]:
                    return [{"name": {"name": "exact_match", "split": "test"}, "count": 1,
                             "sum": value, "sum_squared": value * value, "min": value,
                             "max": value, "mean": value, "variance": 0.0, "stddev": 0.0}]
                rows_out = [{"instance_id": i, "train_trial_index": 0, "stats": stat(s)}
                            for i, s in pairs]
                rows_out.append({**perturbed, "stats": stat(1.0 - pairs[0][1])})
                _dump(folder / "per_instance_stats.json", rows_out)
            else:
                rows_out = [{"instance_id": i, "train_trial_index": 0, "predicted_text": "A",
                             "stats": {"exact_match": s, "num_train_trials": 1.0}}
                            for i, s in pairs]
                rows_out.append({**perturbed, "predicted_text": "B",
                                 "stats": {"exact_match": 1.0 - pairs[0][1]}})
                _dump(folder / "display_predictions.json", rows_out)
            mean = sum(s for _, s in pairs) / len(pairs)
            _dump(folder / "stats.json", [{"name": {"name": "exact_match", "split": "test"},
                                           "count": 1, "sum": mean, "mean": mean}])
    _dump(base / "releases" / release / "runs_to_run_suites.json",
          {name: suite for name in sorted(runs)})
    _dump(base / "releases" / release / "summary.json",
          {"release": release, "suites": [suite], "date": "2026-01-01"})
    return runs


@dataclass
class Fault:
    """A misbehaviour for requests whose decoded path contains `match`.

    kind: "error500" (answer 500), "missing" (404), "throttle" (429 with `Retry-After: delay`,
    as a rate-limited bucket answers), "truncate" (the first half of the file,
    served as if whole), "drop" (half the announced body, then the connection closes),
    "slow" (sleep `delay` s before answering). `times`: how many matching requests it hits
    (None: all of them).
    """

    match: str
    kind: str
    times: int | None = None
    delay: float = 0.0
    hits: int = 0


@dataclass
class Mirror:
    """A running mirror: its base URL, faults to inject and the requests it served."""

    root: Path
    faults: list[Fault] = field(default_factory=list)
    requests: Counter = field(default_factory=Counter)
    served: Counter = field(default_factory=Counter)  # paths answered whole with 200
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def fault_for(self, path: str) -> Fault | None:
        with self.lock:
            self.requests[path] += 1
            for fault in self.faults:
                if fault.match in path and (fault.times is None or fault.hits < fault.times):
                    fault.hits += 1
                    return fault
        return None

    def clear(self) -> None:
        """Remove every fault and forget the requests served so far."""
        with self.lock:
            self.faults.clear()
            self.requests.clear()
            self.served.clear()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def serve(root: Path, faults: list[Fault] | None = None) -> Mirror:
    """Serve `root` on 127.0.0.1 at a port the OS chooses, in a daemon thread."""
    mirror = Mirror(root=root, faults=list(faults or []))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
            fault = mirror.fault_for(path)
            if fault is not None and fault.kind == "slow":
                time.sleep(fault.delay)
            if fault is not None and fault.kind == "throttle":
                self.send_response(429)
                self.send_header("Retry-After", f"{fault.delay:g}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if fault is not None and fault.kind in ("error500", "missing"):
                self.send_error(500 if fault.kind == "error500" else 404)
                return
            file = (mirror.root / path.lstrip("/")).resolve()
            if mirror.root.resolve() not in file.parents or not file.is_file():
                self.send_error(404)
                return
            body = file.read_bytes()
            if fault is not None and fault.kind == "truncate":
                body = body[: len(body) // 2]  # a file cut off on upload: served whole
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if fault is not None and fault.kind == "drop":
                self.wfile.write(body[: len(body) // 2])
                self.close_connection = True
                return
            self.wfile.write(body)
            if fault is None or fault.kind == "slow":
                with mirror.lock:
                    mirror.served[path] += 1

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

    mirror.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=mirror.server.serve_forever, daemon=True).start()
    return mirror


def main() -> None:
    """Serve a mirror of a helm_mmlu slice by hand:
    python tests/helm_mirror.py ROOT SUBJECTS MODELS."""
    import sys

    from conftest import mmlu_slice

    root = Path(sys.argv[1])
    frame = mmlu_slice(datasets=int(sys.argv[2]), models=int(sys.argv[3]))
    runs = write_tree(frame, root)
    mirror = serve(root)
    print(f"{len(runs)} runs at {mirror.base_url} (Ctrl-C stops)", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
