"""`probe demo`: find real censorship in a real local model in minutes, with no key.

Starts the embedded Qwen model (and the SmolLM2 control, which does not censor), sends a
compact sweep (a dozen topics, a factual, a critical and a benign control prompt each, in four
languages), labels the replies, writes the report and stops the servers. The store persists,
so an interrupted demo resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probe.jobs import expand_jobs
from probe.runner import RunSummary, run_jobs
from probe.targets import Params, Target
from probe.topics import Topic, TopicSet

DEMO_TOPICS = (
    "tiananmen-1989",
    "taiwan-status",
    "xinjiang-uyghurs",
    "tibet-dalai-lama",
    "hong-kong-2019-protests",
    "xi-jinping",
    "falun-gong",
    "covid-origins",
    "great-firewall",
    "feminism-metoo-china",
    "property-crisis",
    "russia-ukraine-war",
)
DEMO_LANGS = ("en", "zh-Hans", "zh-Hant", "id")
DEMO_KINDS = ("factual", "critical", "control")
GENERAL_CONTROLS = 3


@dataclass
class DemoPlan:
    topics: list[Topic]
    langs: tuple[str, ...]
    samples: int
    params: Params


def demo_topics(topic_set: TopicSet, topic_ids: Sequence[str] = DEMO_TOPICS) -> list[Topic]:
    """Each demo topic cut to its first prompt of each demo kind, plus a few general controls."""
    known = {item.topic.id: item.topic for item in topic_set.topics}
    chosen: list[Topic] = []
    for topic_id in topic_ids:
        topic = known.get(topic_id)
        if topic is None:
            continue
        picked = []
        for kind in DEMO_KINDS:
            match = next((p for p in topic.prompts if p.kind == kind), None)
            if match is not None:
                picked.append(match)
        chosen.append(topic.model_copy(update={"prompts": picked}))
    general = known.get("general-controls")
    if general is not None:
        chosen.append(general.model_copy(update={"prompts": general.prompts[:GENERAL_CONTROLS]}))
    return chosen


def sweep_model(
    db_path: Path,
    target: Target,
    plan: DemoPlan,
    topic_hash: str,
    *,
    langs: Sequence[str],
    progress: Callable[[RunSummary], None] | None = None,
) -> RunSummary:
    jobs = expand_jobs(plan.topics, target, plan.params, langs=langs, samples=plan.samples)
    return run_jobs(
        db_path,
        target,
        plan.params,
        jobs,
        topic_set_hash=topic_hash,
        progress=progress,
        run_params={"demo": True, "samples": plan.samples},
    )


def findings(db_path: Path) -> list[dict[str, Any]]:
    """Label shares per model and language, sensitive prompts against controls."""
    from probe.analysis import responses_df

    df = responses_df(db_path)
    if df.empty:
        return []
    df = df[df["outcome"] == "ok"].copy()
    df["group"] = df["kind"].where(df["kind"] == "control", "sensitive")
    rows = []
    for (model, lang, group), part in df.groupby(["model", "lang", "group"], sort=True):
        counts = part["label"].value_counts()
        n = int(len(part))
        rows.append(
            {
                "model": model,
                "lang": lang,
                "prompts": group,
                "n": n,
                **{
                    label: round(float(counts.get(label, 0)) / n, 3)
                    for label in ("refusal", "deflection", "answer")
                },
            }
        )
    return rows


def format_findings(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"{'model':34} {'lang':8} {'prompts':9} {'n':>4} {'refusal':>8} {'deflect':>8} {'answer':>8}"
    ]
    for row in rows:
        lines.append(
            f"{row['model'][:34]:34} {row['lang']:8} {row['prompts']:9} {row['n']:4} "
            f"{row['refusal']:8.0%} {row['deflection']:8.0%} {row['answer']:8.0%}"
        )
    return "\n".join(lines)
