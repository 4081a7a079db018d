"""Interaction features: contacts by channel and topic, complaints, waits, surveys, sentiment.

One DuckDB query computes every window. Flags that are missing (NA) count as "no":
a complaint whose ``resolved`` flag is unknown is not counted as unresolved.

A caveat the data contract imposes: ``resolved`` is the flag as exported, not as it
stood at ``as_of`` (there is no resolution timestamp), so a complaint raised before
``as_of`` and resolved after it reads as resolved at ``as_of``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from churnguard.config import InteractionsFeatures
from churnguard.features.catalogue import FeatureInfo
from churnguard.features.engine import (
    DAY_US, SqlTable, name_parts, positions, run_query, sql_string, sql_timestamp, with_columns,
)

FAMILY = "interactions"
TABLES = ("interactions",)
P = FAMILY
SURVEYS = {"csat": ("satisfaction score", 5, "down"), "nps": ("NPS answer", 10, "down"), "ces": ("effort score", 7, "up")}
# How each survey is worded as a reason, which end of its scale is bad (the data
# contract's directions: CSAT 1-5, 5 best; NPS 0-10, 0-6 detractors; CES 1-7, 7 the
# most effort) and from where an answer is worrying enough to say.
SURVEY_REASONS = {
    "csat": ("satisfaction", "where 5 is best", "<= 3", "< 3.5"),
    "nps": ("NPS answer", "a detractor", "<= 6", "<= 6"),
    "ces": ("effort", "where 7 is hardest", ">= 5", ">= 4.5"),
}
NPS_DETRACTOR_MAX = 6  # NPS answers 0-6 are detractors by the standard definition
# Averaged measures and the feature each becomes (seconds are shown in minutes).
MEANS = {"wait_seconds": P + "_wait_mean_minutes_{w}d", "handle_seconds": P + "_handle_mean_minutes_{w}d",
         **{s: P + "_" + s + "_mean_{w}d" for s in ("csat", "nps", "ces")}, "sentiment": P + "_sentiment_mean_{w}d"}
OPTIONAL = {"topic": "str", "is_complaint": "boolean", "resolved": "boolean", "abandoned": "boolean",
            "escalated": "boolean", "wait_seconds": "float64", "handle_seconds": "float64", "csat": "float64",
            "nps": "float64", "ces": "float64", "sentiment": "float64"}


def resolve(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp, spec: InteractionsFeatures) -> InteractionsFeatures:
    """Fill ``channels`` (every channel seen) and ``topics`` (the ``top_k_topics`` most frequent).

    Only interactions strictly before `as_of` count; ties in frequency go to the
    alphabetically first topic; both lists come back sorted. Lists already set stay.

    Examples
    --------
    >>> ev = pd.DataFrame({
    ...     "customer_id": ["a"] * 4, "channel": ["phone", "chat", "chat", "email"],
    ...     "topic": ["billing", "outage", "outage", "moving"],
    ...     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-03-01"])})
    >>> spec = resolve({"interactions": ev}, pd.Timestamp("2024-02-01"), InteractionsFeatures(top_k_topics=1))
    >>> spec.channels, spec.topics
    (('chat', 'phone'), ('outage',))
    """
    if spec.channels is not None and spec.topics is not None:
        return spec
    counts = run_query(
        f"""SELECT 'channel' AS kind, channel AS value, count(*) AS n FROM interactions
            WHERE timestamp < {sql_timestamp(as_of)} AND channel IS NOT NULL GROUP BY channel
            UNION ALL
            SELECT 'topic', topic, count(*) FROM interactions
            WHERE timestamp < {sql_timestamp(as_of)} AND topic IS NOT NULL GROUP BY topic""",
        {"interactions": with_columns(tables["interactions"], OPTIONAL)[["timestamp", "channel", "topic"]]},
    )
    channels, topics = spec.channels, spec.topics
    if channels is None:
        channels = tuple(sorted(counts.loc[counts["kind"] == "channel", "value"].astype("str")))
    if topics is None:
        ranked = counts[counts["kind"] == "topic"].sort_values(["n", "value"], ascending=[False, True])
        topics = tuple(sorted(ranked["value"].astype("str").head(spec.top_k_topics)))
    return replace(spec, channels=channels, topics=topics)


def _windowed_infos(w, channels: dict[str, str], topics: dict[str, str], repeat_days: int) -> list[FeatureInfo]:
    last = f"in the last {w} days"
    infos = [
        FeatureInfo(f"{P}_contacts_{w}d", P, f"Contacts in the {w} days before as_of", "count",
                    reason=f"contacted us {{{P}_contacts_{w}d:.0f}} times {last}", fact="contacts",
                    reason_if=f"{P}_contacts_{w}d > 0"),
    ]
    for value, part in channels.items():
        infos.append(FeatureInfo(
            f"{P}_contacts_{part}_{w}d", P, f"Contacts through channel {value} in the {w} days before as_of", "count",
            reason=f"{{{P}_contacts_{part}_{w}d:.0f}} {value} contacts {last}", fact="contacts",
            reason_if=f"{P}_contacts_{part}_{w}d > 0"))
    for value, part in topics.items():
        infos.append(FeatureInfo(
            f"{P}_topic_{part}_{w}d", P, f"Contacts about topic {value} in the {w} days before as_of", "count",
            reason=f"{{{P}_topic_{part}_{w}d:.0f}} contacts about {value} {last}", fact=f"topic {value}",
            reason_if=f"{P}_topic_{part}_{w}d > 0"))
    infos += [
        FeatureInfo(f"{P}_complaints_{w}d", P, f"Complaints in the {w} days before as_of", "count",
                    reason=f"{{{P}_complaints_{w}d:.0f}} complaints {last}", fact="complaints",
                    reason_if=f"{P}_complaints_{w}d > 0"),
        FeatureInfo(f"{P}_complaints_unresolved_{w}d", P, f"Complaints marked unresolved, {w} days before as_of",
                    "count",
                    reason=f"{{{P}_complaints_unresolved_{w}d:.0f}} of {{{P}_complaints_{w}d:.0f}} complaints "
                           f"{last} unresolved", fact="complaints",
                    reason_if=f"{P}_complaints_unresolved_{w}d > 0"),
        FeatureInfo(f"{P}_complaints_unresolved_share_{w}d", P,
                    f"Share of the complaints of the last {w} days marked unresolved (NaN without complaints)",
                    "share",
                    reason=f"{{{P}_complaints_unresolved_share_{w}d:.0%}} of complaints {last} unresolved",
                    fact="complaints", reason_if=f"{P}_complaints_unresolved_share_{w}d > 0"),
        FeatureInfo(f"{P}_repeat_contacts_{w}d", P,
                    f"Contacts within {repeat_days} days of the previous contact, {w} days before as_of", "count",
                    reason=f"came back {{{P}_repeat_contacts_{w}d:.0f}} times within {repeat_days} days of a "
                           f"previous contact {last}", fact="repeat contacts",
                    reason_if=f"{P}_repeat_contacts_{w}d > 0"),
        FeatureInfo(f"{P}_escalations_{w}d", P, f"Escalated contacts in the {w} days before as_of", "count",
                    reason=f"{{{P}_escalations_{w}d:.0f}} escalated contacts {last}", fact="escalations",
                    reason_if=f"{P}_escalations_{w}d > 0"),
        FeatureInfo(f"{P}_abandoned_{w}d", P, f"Contacts abandoned in the queue or IVR, {w} days before as_of",
                    "count", reason=f"gave up waiting {{{P}_abandoned_{w}d:.0f}} times {last}", fact="waiting",
                    reason_if=f"{P}_abandoned_{w}d > 0"),
        FeatureInfo(f"{P}_wait_mean_minutes_{w}d", P, f"Average wait in minutes, {w} days before as_of", "minutes",
                    reason=f"waited {{{P}_wait_mean_minutes_{w}d:.0f}} minutes on average {last}", fact="waiting",
                    reason_if=f"{P}_wait_mean_minutes_{w}d >= 1"),
        FeatureInfo(f"{P}_wait_max_minutes_{w}d", P, f"Longest wait in minutes, {w} days before as_of", "minutes",
                    reason=f"waited up to {{{P}_wait_max_minutes_{w}d:.0f}} minutes {last}", fact="waiting",
                    reason_if=f"{P}_wait_max_minutes_{w}d >= 1"),
        FeatureInfo(f"{P}_handle_mean_minutes_{w}d", P, f"Average handling time in minutes, {w} days before as_of",
                    "minutes"),
    ]
    for survey, (label, top, direction) in SURVEYS.items():
        said, scale, _, worrying = SURVEY_REASONS[survey]
        column = f"{P}_{survey}_mean_{w}d"
        infos.append(FeatureInfo(
            column, P, f"Average {survey.upper()} ({label}, of {top}), {w} days before as_of",
            "score", reason=f"average {said} {{{column}:.1f}} of {top} {last}, {scale}", direction=direction,
            fact=survey.upper(), reason_if=f"{column} {worrying}"))
    infos.append(FeatureInfo(f"{P}_sentiment_mean_{w}d", P, f"Average sentiment (-1..1), {w} days before as_of",
                             "score", direction="down"))
    return infos


def catalogue(spec: InteractionsFeatures, tables: dict[str, pd.DataFrame] | None = None) -> list[FeatureInfo]:
    """The interaction features, exact for a resolved spec with `tables`, else with placeholders.

    Examples
    --------
    >>> names = [i.name for i in catalogue(InteractionsFeatures())]
    >>> "interactions_contacts_{channel}_{window}d" in names, "interactions_nps_detractor" in names
    (True, True)
    """
    generic = tables is None
    windows = ("{window}",) if generic else spec.windows
    channels = {"{channel}": "{channel}"} if generic or spec.channels is None else name_parts(spec.channels)
    topics = {"{topic}": "{topic}"} if generic or spec.topics is None else name_parts(spec.topics)
    short, long = ("{short}", "{long}") if generic else (min(spec.windows), max(spec.windows))
    infos = [
        FeatureInfo(f"{P}_days_since_last_contact", P, "Days since the last contact before as_of", "days",
                    direction="down"),
        FeatureInfo(f"{P}_days_since_last_complaint", P, "Days since the last complaint before as_of", "days",
                    reason=f"complained {{{P}_days_since_last_complaint:.0f}} days ago", direction="down",
                    fact="complaints"),
        FeatureInfo(f"{P}_open_complaint", P,
                    f"1 if a complaint of the last {long} days is marked unresolved, else 0", "flag",
                    reason="has an unresolved complaint", fact="complaints", reason_if=f"{P}_open_complaint > 0"),
    ]
    for survey, (label, top, direction) in SURVEYS.items():
        said, scale, worrying, _ = SURVEY_REASONS[survey]
        column = f"{P}_{survey}_latest"
        infos.append(FeatureInfo(column, P, f"Latest {survey.upper()} answer ({label}, of {top})",
                                 "score", reason=f"last {said} {{{column}:.0f}} of {top}, {scale}",
                                 direction=direction, fact=survey.upper(), reason_if=f"{column} {worrying}"))
    infos += [
        FeatureInfo(f"{P}_nps_detractor", P, f"1 if the latest NPS answer is {NPS_DETRACTOR_MAX} or less, else 0 "
                    "(NaN without any)", "flag", reason=f"last NPS answer {{{P}_nps_latest:.0f}} of 10, a detractor",
                    fact="NPS", reason_if=f"{P}_nps_latest <= {NPS_DETRACTOR_MAX}"),
        FeatureInfo(f"{P}_sentiment_trend", P,
                    f"Average sentiment of the last {short} days minus that of the {long} days before as_of "
                    f"(excluding the last {short})", "score",
                    reason=f"sentiment fell to {{{P}_sentiment_mean_{short}d:+.2f}} in the last {short} days",
                    direction="down", fact="sentiment",
                    reason_if=f"{P}_sentiment_mean_{short}d < 0 and {P}_sentiment_trend < 0"),
    ]
    for w in windows:
        infos += _windowed_infos(w, channels, topics, spec.repeat_contact_days)
    return infos


def _repeat_counts(
    codes: np.ndarray, timestamps: pd.Series, as_of: pd.Timestamp, windows: list[int], n: int, repeat_days: int
) -> np.ndarray:
    """Repeat contacts per customer position and window bucket, as an ``n x (k + 1)`` array.

    A contact is a repeat when the customer's previous contact before `as_of` (ties in
    time count, with a gap of 0) lies at most `repeat_days` before it. One sort by
    (customer, time) in numpy and a diff replace a SQL ``lag`` window (twice the cost).
    Bucket ``i`` holds contacts inside window ``i`` but not window ``i - 1``, as in
    :func:`build`; bucket ``k`` older history.

    Examples
    --------
    >>> ts = pd.Series(pd.to_datetime(["2024-01-20", "2024-01-25", "2024-01-01", "2024-02-01"]))
    >>> _repeat_counts(np.array([0, 0, 0, 0]), ts, pd.Timestamp("2024-02-01"), [30], 1, 7)
    array([[1., 0.]])
    """
    us = timestamps.to_numpy(dtype="datetime64[us]")
    as_of_us = pd.Timestamp(as_of).value // 1000  # the SQL literals keep microseconds, truncated
    keep = (codes >= 0) & ~np.isnat(us) & (us.view(np.int64) < as_of_us)
    pos, ts = codes[keep].astype(np.int64), us[keep].view(np.int64)
    order = np.lexsort((ts, pos))
    pos, ts = pos[order], ts[order]
    b = np.full(len(ts), len(windows), dtype=np.int64)
    for i, w in reversed(list(enumerate(windows))):
        b[ts >= (pd.Timestamp(as_of) - pd.Timedelta(days=w)).value // 1000] = i
    repeat = np.zeros(len(ts), dtype=bool)
    repeat[1:] = (pos[1:] == pos[:-1]) & (ts[1:] - ts[:-1] <= repeat_days * DAY_US)
    cells = np.bincount(pos[repeat] * (len(windows) + 1) + b[repeat], minlength=n * (len(windows) + 1))
    return cells.astype(np.float64).reshape(n, len(windows) + 1)


def build(
    tables: dict[str, pd.DataFrame], as_of: pd.Timestamp, customers: pd.Index, spec: InteractionsFeatures
) -> tuple[pd.DataFrame, list[FeatureInfo]]:
    """Interaction features at `as_of` for `customers`, from interactions strictly before it.

    Examples
    --------
    >>> ev = pd.DataFrame({
    ...     "customer_id": ["a", "a", "a"], "channel": ["phone", "phone", "chat"], "topic": [None] * 3,
    ...     "timestamp": pd.to_datetime(["2024-01-20", "2024-01-25", "2024-02-01"]),
    ...     "is_complaint": pd.array([True, True, True], dtype="boolean"),
    ...     "resolved": pd.array([False, None, False], dtype="boolean"),
    ...     "wait_seconds": [600.0, 1200.0, 60.0], "nps": [9.0, 3.0, 10.0]})
    >>> spec = resolve({"interactions": ev}, pd.Timestamp("2024-02-01"), InteractionsFeatures(windows=(30,)))
    >>> frame, _ = build({"interactions": ev}, pd.Timestamp("2024-02-01"), pd.Index(["a"]), spec)
    >>> frame.iloc[0][["interactions_complaints_unresolved_30d", "interactions_repeat_contacts_30d",
    ...                "interactions_wait_max_minutes_30d", "interactions_nps_detractor"]].tolist()
    [1.0, 1.0, 20.0, 1.0]
    """
    as_of = pd.Timestamp(as_of)
    if spec.channels is None or spec.topics is None:
        spec = resolve(tables, as_of, spec)
    infos = catalogue(spec, tables)
    since = lambda days: sql_timestamp(as_of - pd.Timedelta(days=days))  # noqa: E731
    windows = sorted(spec.windows)
    k = len(windows)
    channels, topics = name_parts(spec.channels), name_parts(spec.topics)

    # Two stages: DuckDB sums the events per customer and window bucket (bucket i holds
    # the events inside window i but not inside window i-1; bucket k is older history),
    # then numpy adds the buckets up per window with a cumulative sum. Every measure is
    # computed once per event instead of once per window, and the second stage works on
    # a few rows per customer: together what makes a million customers fast.
    bucket = " ".join(f"WHEN timestamp >= {since(w)} THEN {i}" for i, w in enumerate(windows))
    additive = {
        "contacts": "count(*)",
        **{f"contacts_{part}": f"count(*) FILTER (WHERE channel = {sql_string(v)})" for v, part in channels.items()},
        **{f"topic_{part}": f"count(*) FILTER (WHERE topic = {sql_string(v)})" for v, part in topics.items()},
        "complaints": "count(*) FILTER (WHERE complaint)",
        "complaints_unresolved": "count(*) FILTER (WHERE complaint AND resolved = false)",
        "repeat_contacts": f"count(*) FILTER (WHERE since_prev_us <= {spec.repeat_contact_days * DAY_US})",
        "escalations": "count(*) FILTER (WHERE escalated)",
        "abandoned": "count(*) FILTER (WHERE abandoned)",
        **{f"{m}_{f}": f"{f}({m})" for m in MEANS for f in ("sum", "count")},
    }
    latest = {
        "wait_max": "max(wait_seconds)",
        "last_ts": "epoch_us(max(timestamp))",
        "last_complaint_ts": "epoch_us(max(timestamp) FILTER (WHERE complaint))",
        # Latest answer: the key orders by time, then by the answer (to 0.1), so a tie on
        # the latest time goes to the larger answer and two builds agree whatever the row
        # order. (An integer key: a max over structs cost 3x the whole query.)
        **{f"{s}_last": f"arg_max({s}, epoch_us(timestamp) * 1024 + CAST(least(greatest(round({s} * 10), 0), 1023) "
                        f"AS BIGINT)) FILTER (WHERE {s} IS NOT NULL)" for s in SURVEYS},
    }
    repeat = additive.pop("repeat_contacts")
    stage1 = ", ".join(f"CAST({expr} AS DOUBLE) AS {name}" for name, expr in {**additive, **latest}.items())
    table = with_columns(tables["interactions"], OPTIONAL)
    if isinstance(table, SqlTable):
        # Over the file: positions by a join in DuckDB; only (position, time) come back, for the repeats.
        keyed = table.keyed(customers)
        frames = {"interactions": keyed}
        times = run_query(f"SELECT _pos, epoch_us(timestamp) AS us FROM interactions "
                          f"WHERE timestamp < {sql_timestamp(as_of)}", frames)
        codes = times["_pos"].to_numpy(dtype=np.int64)
        stamps = pd.Series(times["us"].to_numpy(dtype=np.int64).astype("datetime64[us]"))
        del times
    else:
        # Customer positions once, in Arrow: DuckDB then needs no join on the string id.
        codes = positions(table["customer_id"], customers)
        stamps = table["timestamp"]
        frames = {"interactions": table[[c for c in table.columns if c != "customer_id"]].assign(_pos=codes)}
    sql = f"""
        SELECT pos, b, {stage1} FROM (
            SELECT _pos AS pos, timestamp, channel, topic, resolved, wait_seconds, handle_seconds,
                   csat, nps, ces, sentiment,
                   coalesce(is_complaint, false) AS complaint,
                   coalesce(escalated, false) AS escalated,
                   coalesce(abandoned, false) AS abandoned,
                   CASE {bucket} ELSE {k} END AS b
            FROM interactions WHERE timestamp < {sql_timestamp(as_of)} AND _pos >= 0)
        GROUP BY pos, b"""
    buckets = run_query(sql, frames)
    buckets["repeat_contacts"] = _repeat_counts(
        codes, stamps, as_of, windows, len(customers), spec.repeat_contact_days
    )[buckets["pos"].to_numpy(), buckets["b"].to_numpy()]
    additive["repeat_contacts"] = repeat
    pos, b = buckets["pos"].to_numpy(), buckets["b"].to_numpy()

    def grid(name: str, fill: float) -> np.ndarray:
        """customers x (k + 1) buckets; (pos, b) is unique per row of the first stage."""
        out = np.full((len(customers), k + 1), fill)
        out[pos, b] = buckets[name].to_numpy()
        return out

    agg: dict[str, np.ndarray] = {}
    cum = {name: np.cumsum(grid(name, 0.0), axis=1) for name in additive}
    for i, w in enumerate(windows):
        for name in additive:
            if not name.endswith(("_sum", "_count")):
                agg[f"{P}_{name}_{w}d"] = cum[name][:, i]
        for m in MEANS:
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = cum[f"{m}_sum"][:, i] / np.where(cum[f"{m}_count"][:, i] > 0, cum[f"{m}_count"][:, i], np.nan)
            agg[MEANS[m].format(w=w)] = mean / 60.0 if m.endswith("_seconds") else mean
        agg[f"{P}_wait_max_minutes_{w}d"] = np.fmax.accumulate(grid("wait_max", np.nan), axis=1)[:, i] / 60.0
    for s in SURVEYS:
        # Buckets are disjoint and ordered in time (0 is the most recent), so the latest
        # answer is the one of the most recent bucket that has any.
        values = grid(f"{s}_last", np.nan)
        latest_value = np.full(len(customers), np.nan)
        for j in range(k, -1, -1):
            latest_value = np.where(np.isnan(values[:, j]), latest_value, values[:, j])
        agg[f"{P}_{s}_latest"] = latest_value
    with np.errstate(all="ignore"):
        sent_sum, sent_n = grid("sentiment_sum", 0.0), grid("sentiment_count", 0.0)
        sent_short = sent_sum[:, 0] / np.where(sent_n[:, 0] > 0, sent_n[:, 0], np.nan)
        before_n = sent_n[:, 1:k].sum(axis=1)
        sent_before = sent_sum[:, 1:k].sum(axis=1) / np.where(before_n > 0, before_n, np.nan)
    agg = pd.DataFrame(agg, index=customers)
    agg["_last"] = np.fmax.reduce(grid("last_ts", np.nan), axis=1)
    agg["_last_complaint"] = np.fmax.reduce(grid("last_complaint_ts", np.nan), axis=1)
    agg["_open"] = cum["complaints_unresolved"][:, k - 1]
    agg["_sent_short"], agg["_sent_before"] = sent_short, sent_before

    as_of_us = float(as_of.value // 1000)
    out = {
        f"{P}_days_since_last_contact": (as_of_us - agg["_last"]) / DAY_US,
        f"{P}_days_since_last_complaint": (as_of_us - agg["_last_complaint"]) / DAY_US,
        f"{P}_open_complaint": (agg["_open"] > 0).astype("float64"),
        f"{P}_nps_detractor": (agg[f"{P}_nps_latest"] <= NPS_DETRACTOR_MAX).astype("float64").where(
            agg[f"{P}_nps_latest"].notna()),
        f"{P}_sentiment_trend": agg["_sent_short"] - agg["_sent_before"],
    }
    for w in spec.windows:
        unresolved, complaints = agg[f"{P}_complaints_unresolved_{w}d"], agg[f"{P}_complaints_{w}d"]
        out[f"{P}_complaints_unresolved_share_{w}d"] = unresolved / complaints.where(complaints > 0)
    names = [i.name for i in infos]
    frame = pd.DataFrame({n: out[n] if n in out else agg[n] for n in names}, index=customers)
    return frame.astype("float64"), infos
