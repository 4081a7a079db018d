"""Hold-out groups: a hashed control per action, capacity on treatment only, the .control file."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from churnguard.config import load_outreach_rules
from churnguard.io import sibling_path
from churnguard.outreach import (
    CONTROL_COLUMNS,
    assign_groups,
    campaign_key,
    control_draw,
    held_out,
    rank_outreach,
)
from churnguard.scoring import score, write_outreach
from churnguard.training.model import ChurnModel
from writes import fail_on_write

AS_OF = pd.Timestamp("2026-11-30")
N = 2_000


def _candidates(n: int, *, actions=("retention_call",), seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "customer_id": [f"k{i:05d}" for i in range(n)],
        "action": rng.choice(list(actions), n),
        "priority": rng.gamma(2.0, 10.0, n).round(1),  # rounded: ties broken by customer_id
        "eligible": True,
    })


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(11)
    ids = [f"c{i:05d}" for i in range(N)]
    complaints = rng.poisson(1.0, N).astype(float)
    features = pd.DataFrame({"customer_id": pd.array(ids, dtype="str"), "complaints_30d": complaints})
    y = (complaints + rng.normal(0, 1, N) > 1.5).astype(int)
    model = ChurnModel(params={"n_estimators": 15, "min_child_samples": 20}, calibration="none").fit(
        features[["complaints_30d"]], y)
    catalogue = pd.DataFrame({"name": ["complaints_30d"], "direction": ["up"],
                              "reason": ["{complaints_30d:.0f} complaints in the last 30 days"]})
    customers = pd.DataFrame({"customer_id": pd.array(ids, dtype="str"), "value": rng.uniform(100, 1000, N)})
    return {"features": features, "models": {"churn": model}, "catalogue": catalogue,
            "tables": {"customers": customers}}


def run(world, **kwargs):
    kwargs.setdefault("features", world["features"])
    kwargs.setdefault("catalogue", world["catalogue"])
    return score(world["tables"], AS_OF, world["models"], **kwargs)


# --------------------------------------------------------------------------- the draw


def test_the_draw_is_sha256_of_salt_campaign_action_and_id_read_as_a_fraction():
    draw = control_draw(["007", "7"], ["retention_call", "win_back"], salt="s", campaign="2026Q4")
    for u, key in zip(draw, ["s|2026Q4|retention_call|007", "s|2026Q4|win_back|7"]):
        assert u == int(hashlib.sha256(key.encode()).hexdigest()[:13], 16) / 16**13
    assert ((draw >= 0) & (draw < 1)).all()


def test_groups_do_not_depend_on_row_order():
    rules = load_outreach_rules()
    frame = _candidates(3_000, actions=("retention_call", "maintenance_visit"))
    groups = pd.Series(assign_groups(frame, AS_OF, rules), index=frame["customer_id"])
    shuffled = frame.sample(frac=1.0, random_state=5).reset_index(drop=True)
    again = pd.Series(assign_groups(shuffled, AS_OF, rules), index=shuffled["customer_id"])
    pd.testing.assert_series_equal(again.sort_index(), groups.sort_index())


@pytest.mark.parametrize("share", [0.10, 0.25])
def test_control_share_is_within_four_sigma_of_the_rule_on_ten_thousand_customers(share):
    n = 10_000
    rules = replace(load_outreach_rules(), control_share_per_action={"maintenance_visit": share})
    frame = _candidates(n).assign(action="maintenance_visit")
    n_control = int((assign_groups(frame, AS_OF, rules) == "control").sum())
    sigma = np.sqrt(n * share * (1 - share))
    assert abs(n_control - n * share) < 4 * sigma, (n_control, n * share, sigma)


def test_a_customer_keeps_the_group_every_night_of_a_quarter_and_is_drawn_again_the_next():
    rules = load_outreach_rules()
    frame = _candidates(2_000)
    nights = [pd.Timestamp("2026-10-01"), pd.Timestamp("2026-11-15"), pd.Timestamp("2026-12-31")]
    assert {campaign_key(d, rules) for d in nights} == {"2026Q4"}
    first = assign_groups(frame, nights[0], rules)
    for night in nights[1:]:
        assert (assign_groups(frame, night, rules) == first).all()
    assert (assign_groups(frame, pd.Timestamp("2027-01-01"), rules) != first).any()
    # A campaign named in the rules holds across quarters.
    named = replace(rules, control_campaign="spring-push")
    assert (assign_groups(frame, pd.Timestamp("2027-01-01"), named)
            == assign_groups(frame, pd.Timestamp("2026-11-15"), named)).all()


def test_the_salt_and_the_action_draw_independent_groups():
    rules = load_outreach_rules()
    frame = _candidates(2_000)
    base = assign_groups(frame, AS_OF, rules)
    assert (assign_groups(frame, AS_OF, replace(rules, control_salt="other")) != base).any()
    assert (assign_groups(frame.assign(action="win_back"), AS_OF, rules) != base).any()


def test_an_unknown_action_or_a_share_of_one_in_the_rules_is_refused():
    with pytest.raises(ValueError, match="control_share_per_action has unknown action"):
        replace(load_outreach_rules(), control_share_per_action={"carrier_pigeon": 0.1})
    with pytest.raises(ValueError, match=r"must be in \[0, 1\)"):
        replace(load_outreach_rules(), control_share=1.0)


# --------------------------------------------------------------------------- ranking and reach


def test_capacity_and_per_action_caps_count_treatment_customers_only():
    rules = replace(load_outreach_rules(), capacity_per_action={"maintenance_visit": 40})
    frame = _candidates(1_000, actions=("retention_call", "maintenance_visit"))
    frame["group"] = assign_groups(frame, AS_OF, rules)
    listed = rank_outreach(frame, rules=rules, capacity=200)
    assert len(listed) == 200 and (listed["group"] == "treatment").all()
    assert (listed["action"] == "maintenance_visit").sum() <= 40
    # The list is what the treatment rows alone would give.
    alone = rank_outreach(frame[frame["group"] == "treatment"], rules=rules, capacity=200)
    assert listed["customer_id"].tolist() == alone["customer_id"].tolist()


def test_the_control_file_holds_the_controls_the_list_reached_per_action():
    rules = replace(load_outreach_rules(), capacity_per_action={"maintenance_visit": 30})
    frame = _candidates(1_000, actions=("retention_call", "maintenance_visit"), seed=3)
    frame["group"] = assign_groups(frame, AS_OF, rules)
    listed = rank_outreach(frame, rules=rules, capacity=150)
    controls = held_out(frame, listed)
    assert not set(controls["customer_id"]) & set(listed["customer_id"])
    assert controls["rank"].tolist() == list(range(1, len(controls) + 1))
    # By hand: per action, the controls ranked above the last listed treatment customer.
    ordered = frame.sort_values(["priority", "customer_id"], ascending=[False, True]).reset_index(drop=True)
    expected = []
    for action, rows in ordered.groupby("action", sort=False):
        on_list = rows["customer_id"].isin(listed["customer_id"])
        last = rows.index[on_list].max()
        expected += rows[(rows["group"] == "control") & (rows.index < last)]["customer_id"].tolist()
    order = ordered.set_index("customer_id").index
    assert controls["customer_id"].tolist() == sorted(expected, key=order.get_loc)
    # Comparable groups: about one control for every nine listed, per action.
    for action in ("retention_call", "maintenance_visit"):
        n_listed = int((listed["action"] == action).sum())
        n_held = int((controls["action"] == action).sum())
        assert abs(n_held - n_listed / 9) < 4 * np.sqrt(n_listed / 9) + 1, (action, n_listed, n_held)


def test_without_capacity_every_control_candidate_is_held_out():
    rules = load_outreach_rules()
    frame = _candidates(500)
    frame["group"] = assign_groups(frame, AS_OF, rules)
    controls = held_out(frame, rank_outreach(frame, rules=rules))
    assert set(controls["customer_id"]) == set(frame.loc[frame["group"] == "control", "customer_id"])


def test_an_action_capped_at_zero_holds_out_nobody():
    rules = replace(load_outreach_rules(), capacity_per_action={"retention_call": 0})
    frame = _candidates(300)
    frame["group"] = assign_groups(frame, AS_OF, rules)
    assert len(held_out(frame, rank_outreach(frame, rules=rules))) == 0


# --------------------------------------------------------------------------- score and its files


def test_controls_are_never_on_the_list_nor_in_the_suppressed_file(world):
    result = run(world, capacity=300)
    controls = set(result.controls["customer_id"])
    assert len(controls) > 10
    assert not controls & set(result.outreach["customer_id"])
    assert not controls & set(result.suppressed["customer_id"])
    assert len(result.outreach) == 300
    status = result.scored.set_index("customer_id")["status"]
    assert (status.loc[list(controls)] == "control").all()
    assert (result.scored.loc[result.scored["status"] == "listed", "group"] == "treatment").all()
    assert list(result.controls.columns) == CONTROL_COLUMNS
    assert result.controls["reason_1"].notna().all()  # explained like the list


def test_score_writes_the_control_file_beside_the_list_with_the_same_bytes_every_run(world, tmp_path):
    paths = []
    for name in ("a", "b"):
        out = tmp_path / name / "outreach.csv"
        write_outreach(run(world, capacity=250), out)
        paths.append(out)
    for tag in (None, "suppressed", "control"):
        a, b = (p if tag is None else sibling_path(p, tag) for p in paths)
        assert a.read_bytes() == b.read_bytes(), tag
    control = pd.read_csv(sibling_path(paths[0], "control"), dtype={"customer_id": str})
    assert list(control.columns) == CONTROL_COLUMNS and (control["group"] == "control").all()
    assert len(control) > 0


def test_the_control_file_is_parquet_when_the_list_is(world, tmp_path):
    result = run(world, capacity=100)
    out = tmp_path / "outreach.parquet"
    write_outreach(result, out)
    control = pd.read_parquet(sibling_path(out, "control"))
    assert control["customer_id"].tolist() == result.controls["customer_id"].tolist()


def test_a_failing_control_file_leaves_no_list_behind(world, tmp_path, monkeypatch):
    result = run(world, capacity=100)
    out = tmp_path / "lists" / "outreach.csv"
    fail_on_write(monkeypatch, 3)  # list and suppressed list complete, the control file fails
    with pytest.raises(OSError, match="disk full"):
        write_outreach(result, out)
    assert list(out.parent.iterdir()) == []


def test_the_profit_curve_runs_down_the_uncapped_treatment_list_and_the_list_is_its_head(world):
    uncapped = run(world, explain="none")
    capped = run(world, explain="none", capacity=120)
    curve = capped.profit
    assert curve.n == len(uncapped.outreach)
    np.testing.assert_allclose(curve.cumulative[1:], np.cumsum(uncapped.outreach["priority"]), rtol=0, atol=1e-5)
    assert curve.at(120) == pytest.approx(capped.outreach["priority"].sum(), abs=1e-4)
    # Every listed customer's priority is positive: calling all of the uncapped list pays most.
    assert curve.best_k == curve.n and curve.best_profit > curve.at(120) > 0
