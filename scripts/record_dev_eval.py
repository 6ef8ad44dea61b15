"""Store the shipped classifier's measured dev-set agreement in its metadata.

The report's methodology section quotes it, so a reader sees how far the labels can be trusted.
Usage: python scripts/record_dev_eval.py EVAL.json   (the output of `probe evaluate --json`)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from probe.classify.classifier import SHIPPED


def main() -> None:
    report = json.loads(Path(sys.argv[1]).read_text())
    meta_path = SHIPPED / "classifier.json"
    meta = json.loads(meta_path.read_text())
    if report.get("classifier") != meta["classifier_id"]:
        raise SystemExit("the evaluation is of another classifier; evaluate the shipped one")
    meta["dev_evaluation"] = {
        key: report[key] for key in ("n", "accuracy", "macro_f1", "kappa", "per_source")
    }
    meta["dev_evaluation"]["data"] = "shared/devset/dev.jsonl (6,342 labelled responses)"
    meta["dev_evaluation"]["ece"] = report.get("calibration", {}).get("ece")
    meta_path.write_text(json.dumps(meta, indent=2, ensure_ascii=False))
    print(f"recorded dev evaluation in {meta_path}")


if __name__ == "__main__":
    main()
