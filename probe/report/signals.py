"""Signals beyond the three labels: what a label alone does not show.

- **language switch**: the reply is written in another script than the prompt (a Uyghur
  question answered in Chinese, a Chinese one in English). Scripts, not languages: English,
  Spanish and Indonesian share Latin script, so a switch between them is not seen.
- **reasoning diverges**: the model's reasoning engages with the question at length, and then
  its answer refuses or deflects: it knew, and declined.
- **cross-language inconsistency**: the same prompt gets different (majority) labels in
  different languages.
"""

from __future__ import annotations

import re

import pandas as pd

from probe.classify.text import dominant_script
from probe.report.tables import LABELS

# How much of a reply decides its script: the opening is where a reply commits to a language,
# and reading all of 100k replies char by char in Python would dominate the report's time.
SCRIPT_PREFIX = 400
# Reasoning "engages" when it says at least this many words (two CJK characters count as one
# word, since CJK text has no spaces). Forty words is more than a bare "this is sensitive".
ENGAGED_WORDS = 40


# Characters that are certainly letters of one script as `script_of` defines it (fully assigned
# blocks, letters only: no marks or punctuation), for the exact fast path in `script_of_reply`.
_SURE = (
    ("han", "\u4e00-\u9fff\u3400-\u4dbf"),
    ("hangul", "\uac00-\ud7a3\u1100-\u11ff"),
    ("latin", "A-Za-z"),
    ("cyrillic", "\u0410-\u044f\u0401\u0451"),
    ("arabic", "\u0621-\u064a"),
)
# Each pattern removes everything *but* the sure letters: len(sub("", text)) counts them
# (one C-speed pass, no list of matches).
_OTHER_THAN = tuple((script, re.compile(f"[^{chars}]+")) for script, chars in _SURE)
_OTHER_THAN_KANA = re.compile("[^\u3041-\u3096\u30a1-\u30fa]+")
_KANA_BLOCK = re.compile("[\u3040-\u30ff]")


def script_of_reply(text: str, cache: dict[str, str] | None = None) -> str:
    """`dominant_script` of the opening of a reply, with the same result, faster.

    dominant_script says "kana" when kana letters exceed 5% of letters, else the script with
    the most letters. Counting sure letters with a C-speed regex settles most replies exactly:
    kana letters above 5% of all characters are above 5% of letters; a script holding more than
    half of all characters (and no kana at all) holds more than half of the letters. Anything
    else, mixed or unusual, goes to dominant_script itself.
    """
    prefix = text[:SCRIPT_PREFIX]
    if prefix.isascii():  # ASCII letters are all Latin
        return "latin" if any(ch.isalpha() for ch in prefix) else "other"
    size = len(prefix)
    if len(_OTHER_THAN_KANA.sub("", prefix)) > 0.05 * size:
        return "kana"
    if not _KANA_BLOCK.search(prefix):
        for script, other_than in _OTHER_THAN:
            if len(other_than.sub("", prefix)) * 2 > size:
                return script
    if cache is None:
        return dominant_script(prefix)
    got = cache.get(prefix)
    if got is None:
        got = cache[prefix] = dominant_script(prefix)
    return got


def language_switch(df: pd.DataFrame) -> pd.DataFrame:
    """Per response with text: prompt script, response script and whether they differ.

    Replies or prompts with no letters ("other") are never counted as a switch.
    """
    ok = df[(df["outcome"] == "ok") & df["response"].fillna("").str.strip().ne("")]
    cache: dict[str, str] = {}
    prompts = ok["prompt"].fillna("").to_numpy(dtype=object)
    prompt_scripts = {p: script_of_reply(p, cache) for p in set(prompts)}
    p_script = [prompt_scripts[p] for p in prompts]
    # plain Python strings: iterating an Arrow-backed column costs more than the regexes
    r_script = [script_of_reply(t, cache) for t in ok["response"].to_numpy(dtype=object)]
    out = ok[["response_id", "model", "topic_id", "prompt_id", "lang", "status"]].copy()
    out["prompt_script"] = p_script
    out["response_script"] = r_script
    out["switched"] = (
        out["prompt_script"].ne(out["response_script"])
        & out["prompt_script"].ne("other")
        & out["response_script"].ne("other")
    )
    return out


def language_switch_summary(per_response: pd.DataFrame) -> pd.DataFrame:
    """Share of replies in another script, per model and prompt language."""
    if per_response.empty:
        return pd.DataFrame(columns=["model", "lang", "n", "switched", "rate", "to_scripts"])
    grouped = per_response.groupby(["model", "lang"], sort=True)
    summary = grouped["switched"].agg(n="size", switched="sum").reset_index()
    summary["switched"] = summary["switched"].astype(int)
    summary["rate"] = summary["switched"] / summary["n"]
    switched = per_response[per_response["switched"]]
    to = (
        switched.groupby(["model", "lang"])["response_script"]
        .agg(lambda s: ", ".join(f"{k} {v}" for k, v in s.value_counts().items()))
        .rename("to_scripts")
    )
    return summary.merge(to, on=["model", "lang"], how="left").fillna({"to_scripts": ""})


def reasoning_words(text: str) -> int:
    """Words in a reasoning text, counting two CJK characters as one word."""
    cjk = sum(1 for ch in text if "\u3040" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af")
    return len(text.split()) + cjk // 2


def reasoning_divergence(df: pd.DataFrame) -> pd.DataFrame:
    """Replies labelled refusal or deflection whose reasoning engages with the question."""
    declined = df[df["status"].isin(["refusal", "deflection"])]
    reasoning = declined["reasoning"].fillna("").str.strip()
    has = declined[reasoning.ne("")]
    if has.empty:
        return has.assign(reasoning_words=pd.Series(dtype=int))
    out = has.assign(reasoning_words=has["reasoning"].fillna("").map(reasoning_words))
    return out[out["reasoning_words"] >= ENGAGED_WORDS]


def reasoning_summary(df: pd.DataFrame, divergent: pd.DataFrame) -> pd.DataFrame:
    """Per model: replies with reasoning, declined replies, and declined-while-engaged ones."""
    with_reasoning = df[df["reasoning"].fillna("").str.strip().ne("")]
    base = with_reasoning.groupby("model").size().rename("with_reasoning")
    declined = (
        with_reasoning[with_reasoning["status"].isin(["refusal", "deflection"])]
        .groupby("model")
        .size()
        .rename("declined_with_reasoning")
    )
    div = divergent.groupby("model").size().rename("diverging")
    out = pd.concat([base, declined, div], axis=1).fillna(0).astype(int).reset_index()
    return out.rename(columns={"index": "model"})


def majority_labels(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The most frequent label per group (ties broken refusal > deflection > answer, so a
    tie never hides a refusal), with the counts behind it."""
    labelled = df[df["status"].isin(LABELS)]
    if labelled.empty:
        return pd.DataFrame(columns=[*keys, "label", "counts"])
    counts = (
        labelled.groupby([*keys, "status"], observed=True)
        .size()
        .unstack("status", fill_value=0)
        .reindex(columns=list(LABELS), fill_value=0)
    )
    label = counts.idxmax(axis=1)  # first maximum wins: LABELS order is refusal first
    text = counts.apply(
        lambda r: " ".join(f"{lab}:{int(r[lab])}" for lab in LABELS if r[lab]), axis=1
    )
    return pd.DataFrame({"label": label, "counts": text}).reset_index()


def consistency(df: pd.DataFrame) -> pd.DataFrame:
    """Prompts (per model) whose majority label differs between languages."""
    sens = df[~df["is_control"]] if "is_control" in df else df
    maj = majority_labels(sens, ["model", "topic_id", "prompt_id", "lang"])
    if maj.empty:
        return pd.DataFrame(
            columns=["model", "topic_id", "prompt_id", "langs", "labels", "consistent"]
        )
    maj = maj.sort_values(["model", "topic_id", "prompt_id", "lang"])
    maj = maj.assign(pair=maj["lang"] + "=" + maj["label"].astype(str))
    out = (
        maj.groupby(["model", "topic_id", "prompt_id"], sort=False)
        .agg(langs=("lang", "size"), n_labels=("label", "nunique"), labels=("pair", ", ".join))
        .reset_index()
    )
    out["consistent"] = out["n_labels"].eq(1)
    return out.drop(columns="n_labels")


def consistency_summary(per_prompt: pd.DataFrame) -> pd.DataFrame:
    """Per model: prompts asked in 2+ languages, and the share labelled differently."""
    multi = per_prompt[per_prompt["langs"] >= 2]
    if multi.empty:
        return pd.DataFrame(columns=["model", "prompts", "inconsistent", "rate"])
    out = (
        multi.groupby("model")
        .agg(prompts=("consistent", "size"), inconsistent=("consistent", lambda s: int((~s).sum())))
        .reset_index()
    )
    out["rate"] = out["inconsistent"] / out["prompts"]
    return out
