"""The policy catalog: the data files encode the seed texts as SPEC §7 decided,
and `Catalog.resolve` turns contract terms into the right clocks and calendars."""
from __future__ import annotations

import re
import shutil
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from events.contract import ContractTerms
from policies.catalog import (
    CATALOG_DIR,
    Catalog,
    CatalogError,
    ClockTarget,
    ContractError,
    ResolvedPlan,
    load_catalog,
)

UTC = timezone.utc
H = timedelta(hours=1)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def terms(**kw) -> ContractTerms:
    kw.setdefault("customer_id", "c1")
    return ContractTerms.model_validate(kw)


def rescale_targets(**per_priority) -> dict:
    """Order-form first-response targets for every Rescale priority (hours unless given)."""
    out = {}
    for p in ("urgent", "high", "normal", "low"):
        spec = per_priority.get(p, {"amount": 4, "unit": "hours", "clock": "business"})
        out[p] = {"first_response": spec}
    return {"targets": out}


def local(zone: str, *args) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def by_binding(targets: tuple[ClockTarget, ...], metric: str) -> dict[bool, ClockTarget]:
    chosen = [t for t in targets if t.metric == metric]
    out = {t.binding: t for t in chosen}
    assert len(out) == len(chosen)
    return out


# --- loading -----------------------------------------------------------------------------


def test_loads_one_file_per_provider_with_its_version_and_seed(catalog):
    assert catalog.policies == ("neptune", "neural-magic", "rescale", "vectorize")
    sources = {p: catalog.policy(p).source for p in catalog.policies}
    # each file names the provider's published policy text it encodes (SPEC §7 lists them)
    assert sources == {
        "neural-magic": "Neural Magic Support Services Policy, updated July 1, 2024",
        "neptune": "Neptune Support plans: Basic Support and Extended Support, Service Level Agreement tables",
        "rescale": "Rescale Technical Support and Package Policy, last updated October 1, 2024",
        "vectorize": "Vectorize General Support Policy (Vectorize AI, Inc.): Service Levels; Cloud Services Service Levels",
    }
    for p in catalog.policies:
        assert re.fullmatch(r"\d{4}\.\d{1,2}\.\d+", catalog.version(p))
    assert catalog.plans("neural-magic") == ("enterprise",)
    assert catalog.plans("neptune") == ("basic", "extended")
    assert catalog.plans("rescale") == ("basic", "production", "premium", "mission-critical")
    assert catalog.plans("vectorize") == ("starter", "pro", "enterprise")


@pytest.mark.parametrize("path", sorted(CATALOG_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_every_value_in_a_catalog_file_quotes_its_source(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    uncommented = []
    for i, line in enumerate(lines):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if text.split(" #")[0].rstrip().endswith(":"):
            continue  # a key opening a block holds no value itself
        if "#" in text or (i and lines[i - 1].strip().startswith("#")):
            continue
        uncommented.append(f"{i + 1}: {line}")
    assert uncommented == []


def test_resolved_version_is_the_providers_catalog_version(catalog):
    plan = catalog.resolve(terms(policy="vectorize", plan="pro"))
    assert plan.policy_version == yaml.safe_load((CATALOG_DIR / "vectorize.yaml").read_text())["catalog_version"]
    assert (plan.policy, plan.plan) == ("vectorize", "pro")


# --- Neural Magic --------------------------------------------------------------------------


def test_neural_magic_enterprise_targets(catalog):
    plan = catalog.resolve(terms(policy="neural-magic", plan="enterprise"))
    assert plan.priorities == ("critical", "high", "medium", "low")
    # "Critical Within 30 minutes, 24 x 7": plain elapsed time on an always-open calendar
    (critical,) = plan.targets("critical")
    assert (critical.metric, critical.binding, critical.amount, critical.unit, critical.clock) == (
        "first_response", True, Decimal(30), "minutes", "calendar")
    assert critical.calendar.is_always_open and critical.duration == timedelta(minutes=30)
    # "High Within 2 Business hours"
    (high,) = plan.targets("high")
    assert (high.clock, high.unit, high.duration, high.binding) == ("business", "hours", 2 * H, True)
    # "Medium Within 2 Business days" with SPEC's 12 h day = 24 h of open time
    (medium,) = plan.targets("medium")
    assert (medium.clock, medium.unit, medium.amount) == ("business", "days", Decimal(2))
    assert medium.duration == 24 * H
    # "Low Within 5 Business days" = 60 h of open time
    (low,) = plan.targets("low")
    assert low.duration == 60 * H and low.binding


def test_neural_magic_business_hours_are_new_york_8_to_20_without_federal_holidays(catalog):
    plan = catalog.resolve(terms(policy="neural-magic", plan="enterprise", holiday_country="DE"))
    cal = plan.targets("high")[0].calendar
    assert cal.timezone == "America/New_York"
    assert cal.weekly == tuple((d, 480, 1200) for d in range(5))
    assert cal.day_length == 12 * H
    # the contract's holiday country does not change the provider's own calendar
    assert cal.holiday_regions == (("US", None),)
    ny = "America/New_York"
    assert cal.is_open(local(ny, 2026, 3, 2, 8, 0)) and not cal.is_open(local(ny, 2026, 3, 2, 20, 0))
    assert not cal.is_open(local(ny, 2026, 3, 7, 12, 0))         # Saturday
    assert not cal.is_open(local(ny, 2026, 1, 19, 12, 0))        # Martin Luther King Jr. Day
    assert cal.is_open(local(ny, 2026, 5, 1, 12, 0))             # 1 May is no US holiday
    # Medium opened Monday 09:00: 11 h on Monday, 12 h on Tuesday, the last hour Wednesday
    medium = plan.targets("medium")[0]
    opened = local(ny, 2026, 3, 2, 9, 0)
    assert cal.add_business(opened, medium.duration) == local(ny, 2026, 3, 4, 9, 0)


def test_neural_magic_rules(catalog):
    plan = catalog.resolve(terms(policy="neural-magic", plan="enterprise"))
    assert plan.customer_cannot_raise_to == frozenset({"critical"})
    assert plan.non_production_unavailable == frozenset() and plan.non_production_fallback is None
    assert plan.ticket_clocks and not plan.attainment_quarterly
    assert plan.uptime_commitment_percent is None
    assert dict(plan.pause_statuses) == {}


# --- Neptune -------------------------------------------------------------------------------


def test_neptune_extended_targets(catalog):
    plan = catalog.resolve(terms(policy="neptune", plan="extended", timezone="Europe/Berlin", holiday_country="DE"))
    assert plan.priorities == ("critical", "high", "medium", "low")
    fr, upd = plan.targets("critical")
    # "2 hours (24 hours, 7 days a week)" and "Every 2 hours ("24/7 Follow the Sun")"
    assert (fr.metric, fr.clock, fr.duration, fr.binding) == ("first_response", "calendar", 2 * H, True)
    assert (upd.metric, upd.clock, upd.duration, upd.binding) == ("update", "calendar", 2 * H, True)
    assert fr.calendar.is_always_open and upd.calendar.is_always_open
    fr, upd = plan.targets("high")
    # "6 hours (customer business hours)", "Updates every business day" (day = 8 h)
    assert (fr.clock, fr.duration, fr.binding) == ("business", 6 * H, True)
    assert (upd.metric, upd.clock, upd.unit, upd.duration, upd.binding) == ("update", "business", "days", 8 * H, True)
    fr, upd = plan.targets("medium")
    # "2 days (customer business days)", "Updates every other business day"; not binding
    assert (fr.duration, fr.binding, upd.duration, upd.binding) == (16 * H, False, 16 * H, False)
    fr, upd = plan.targets("low")
    # "5 days (customer business days)", "Updates once a week"; not binding
    assert (fr.duration, fr.binding) == (40 * H, False)
    assert (upd.clock, upd.duration, upd.binding) == ("calendar", timedelta(days=7), False)


def test_neptune_basic_targets(catalog):
    plan = catalog.resolve(terms(policy="neptune", plan="basic", timezone="America/Chicago"))
    # "8 hours (customer business hours)" and "Ongoing support during customers business hours": no timed update
    (fr,) = plan.targets("critical")
    assert (fr.metric, fr.clock, fr.duration, fr.binding) == ("first_response", "business", 8 * H, True)
    fr, upd = plan.targets("high")
    # "3 days (customer business days)" = 24 h open; "Updates every other day" = 2 calendar days
    assert (fr.duration, fr.binding) == (24 * H, True)
    assert (upd.metric, upd.clock, upd.duration, upd.binding) == ("update", "calendar", 48 * H, True)
    fr, upd = plan.targets("medium")
    assert (fr.duration, fr.binding, upd.duration, upd.binding) == (48 * H, False, timedelta(days=7), False)
    fr, upd = plan.targets("low")
    assert (fr.duration, fr.binding, upd.duration, upd.binding) == (72 * H, False, timedelta(days=14), False)


def test_neptune_runs_in_the_customers_business_hours_and_holidays(catalog):
    plan = catalog.resolve(terms(policy="neptune", plan="extended", timezone="Europe/Berlin", holiday_country="DE"))
    cal = plan.targets("high")[0].calendar
    assert (cal.timezone, cal.weekly, cal.day_length) == ("Europe/Berlin", tuple((d, 540, 1020) for d in range(5)), 8 * H)
    assert cal.holiday_regions == (("DE", None),)
    berlin = "Europe/Berlin"
    assert cal.is_open(local(berlin, 2026, 4, 30, 9, 0))
    assert not cal.is_open(local(berlin, 2026, 5, 1, 10, 0))    # Tag der Arbeit, a Friday
    # high opened Thursday 30 April 15:00: 2 h Thursday, Friday is a holiday, 4 h Monday
    assert cal.add_business(local(berlin, 2026, 4, 30, 15, 0), plan.targets("high")[0].duration) == \
        local(berlin, 2026, 5, 4, 13, 0)
    # without a holiday country the customer's calendar has no holidays
    bare = catalog.resolve(terms(policy="neptune", plan="basic", timezone="Europe/Berlin"))
    assert bare.targets("critical")[0].calendar.holiday_regions == ()


# --- Rescale -------------------------------------------------------------------------------


def test_rescale_targets_come_from_the_order_form(catalog):
    plan = catalog.resolve(terms(policy="rescale", plan="basic", region="americas", holiday_country="US",
                                 overrides=rescale_targets(low={"amount": 1, "unit": "days", "clock": "business"})))
    (low,) = plan.targets("low")
    # 1 business day of 06:00-18:00 Los Angeles = 12 h of open time
    assert (low.metric, low.binding, low.duration) == ("first_response", True, 12 * H)
    assert low.calendar.timezone == "America/Los_Angeles"
    assert low.calendar.weekly == tuple((d, 360, 1080) for d in range(5))
    assert plan.attainment_quarterly and plan.ticket_clocks and plan.uptime_commitment_percent is None


@pytest.mark.parametrize(("region", "country", "zone", "minutes", "day"), [
    ("americas", "US", "America/Los_Angeles", (360, 1080), 12),
    ("emea", "FR", "Europe/Paris", (540, 1020), 8),
    ("apac", "JP", "Asia/Tokyo", (540, 1020), 8),
    ("apac", "KR", "Asia/Seoul", (540, 1020), 8),
])
def test_rescale_basic_regional_hours(catalog, region, country, zone, minutes, day):
    plan = catalog.resolve(terms(policy="rescale", plan="basic", region=region, holiday_country=country,
                                 overrides=rescale_targets()))
    cal = plan.business_calendar("normal")
    assert cal.timezone == zone
    assert cal.weekly == tuple((d, *minutes) for d in range(5))
    assert cal.day_length == day * H
    assert cal.holiday_regions == ((country, None),)
    assert cal.holiday_timezone == zone


def test_rescale_enterprise_24x5_utc_closed_on_the_customers_local_holidays(catalog):
    plan = catalog.resolve(terms(policy="rescale", plan="production", edition="enterprise",
                                 timezone="America/Los_Angeles", holiday_country="US", overrides=rescale_targets()))
    cal = plan.business_calendar("urgent")
    assert (cal.timezone, cal.weekly, cal.day_length) == ("UTC", tuple((d, 0, 1440) for d in range(5)), 24 * H)
    # "US Pacific Time Customers will have coverage from 5:00 PM Sunday to 5:00 PM Friday" (PDT)
    assert cal.is_open(datetime(2026, 3, 16, 0, 0, tzinfo=UTC))      # Sun 17:00 PDT
    assert not cal.is_open(datetime(2026, 3, 21, 0, 0, tzinfo=UTC))  # Fri 17:00 PDT = Sat 00:00 UTC
    # Memorial Day (Mon 25 May 2026) closes the customer's local day: 07:00 UTC Mon to 07:00 UTC Tue
    assert cal.holiday_timezone == "America/Los_Angeles"
    assert not cal.is_open(datetime(2026, 5, 25, 8, 0, tzinfo=UTC))
    assert not cal.is_open(datetime(2026, 5, 26, 6, 59, tzinfo=UTC))
    assert cal.is_open(datetime(2026, 5, 26, 7, 0, tzinfo=UTC))
    assert cal.is_open(datetime(2026, 5, 25, 6, 59, tzinfo=UTC))     # Sunday 23:59 local, Monday in UTC
    # 1 business day of 24x5 is 24 h
    days = catalog.resolve(terms(policy="rescale", plan="premium", holiday_country="US", overrides=rescale_targets(
        normal={"amount": 1, "unit": "days", "clock": "business"})))
    assert days.targets("normal")[0].duration == 24 * H


def test_rescale_24x5_holiday_days_default_to_the_regions_zone_then_utc(catalog):
    emea = catalog.resolve(terms(policy="rescale", plan="premium", region="emea", holiday_country="FR",
                                 overrides=rescale_targets()))
    assert emea.business_calendar("low").holiday_timezone == "Europe/Paris"
    kr = catalog.resolve(terms(policy="rescale", plan="premium", region="apac", holiday_country="KR",
                               overrides=rescale_targets()))
    assert kr.business_calendar("low").holiday_timezone == "Asia/Seoul"
    nowhere = catalog.resolve(terms(policy="rescale", plan="premium", holiday_country="US", overrides=rescale_targets()))
    assert nowhere.business_calendar("low").holiday_timezone == "UTC"


@pytest.mark.parametrize("plan_name", ["production", "premium"])
def test_rescale_government_edition_is_basic_americas_whatever_the_region(catalog, plan_name):
    plan = catalog.resolve(terms(policy="rescale", plan=plan_name, edition="government", region="emea",
                                 holiday_country="US", overrides=rescale_targets()))
    for p in plan.priorities:
        cal = plan.business_calendar(p)
        assert (cal.timezone, cal.weekly[0], cal.day_length) == ("America/Los_Angeles", (0, 360, 1080), 12 * H)


def test_rescale_mission_critical_24x7_for_urgent_and_high_ignoring_holidays(catalog):
    plan = catalog.resolve(terms(policy="rescale", plan="mission-critical", edition="enterprise", region="americas",
                                 timezone="America/Los_Angeles", holiday_country="US", overrides=rescale_targets(
                                     urgent={"amount": 1, "unit": "hours", "clock": "business"})))
    for p in ("urgent", "high"):
        cal = plan.business_calendar(p)
        assert cal.is_always_open
        assert cal.is_open(datetime(2026, 12, 25, 12, 0, tzinfo=UTC))   # Christmas Day, a Friday
        assert cal.is_open(datetime(2026, 3, 14, 12, 0, tzinfo=UTC))    # a Saturday
    (urgent,) = plan.targets("urgent")
    assert urgent.duration == 1 * H and urgent.calendar.is_always_open
    for p in ("normal", "low"):
        cal = plan.business_calendar(p)
        assert cal.timezone == "UTC" and cal.holiday_regions == (("US", None),)
    gov = catalog.resolve(terms(policy="rescale", plan="mission-critical", edition="government",
                                holiday_country="US", overrides=rescale_targets()))
    assert gov.business_calendar("urgent").is_always_open
    # decision: a Government Edition's normal/low keep the Government (Basic Americas) hours
    assert gov.business_calendar("normal").timezone == "America/Los_Angeles"


# --- Vectorize -----------------------------------------------------------------------------


def test_vectorize_pro_objectives_and_commitments(catalog):
    plan = catalog.resolve(terms(policy="vectorize", plan="pro"))
    assert plan.priorities == ("urgent", "high", "normal", "low")
    urgent = by_binding(plan.targets("urgent"), "first_response")
    # "Urgent SLO 4 business hours" (objective), "Urgent SLA 12 business hours" (commitment)
    assert (urgent[False].duration, urgent[False].clock) == (4 * H, "business")
    assert (urgent[True].duration, urgent[True].clock) == (12 * H, "business")
    assert [t.binding for t in plan.targets("urgent")] == [False, True]
    high = by_binding(plan.targets("high"), "first_response")
    assert (high[False].duration, high[True].duration) == (12 * H, 12 * H)
    for p in ("normal", "low"):
        t = by_binding(plan.targets(p), "first_response")
        # "Normal/Low SLO/SLA 2 business days" with a 12 h day
        assert (t[False].amount, t[False].unit, t[False].duration) == (Decimal(2), "days", 24 * H)
        assert t[True].duration == 24 * H
    assert plan.uptime_commitment_percent == Decimal("99.5")
    assert plan.non_production_unavailable == frozenset({"urgent", "high"})
    assert plan.non_production_fallback == "normal"
    assert plan.customer_cannot_raise_to == frozenset()


def test_vectorize_pro_closed_on_us_and_canadian_holidays_enterprise_open(catalog):
    ny = "America/New_York"
    pro = catalog.resolve(terms(policy="vectorize", plan="pro")).targets("high")[0].calendar
    ent = catalog.resolve(terms(policy="vectorize", plan="enterprise",
                                overrides={"uptime_commitment_percent": "99.9"})).targets("high")[0].calendar
    for cal in (pro, ent):
        assert (cal.timezone, cal.weekly, cal.day_length) == (ny, tuple((d, 420, 1140) for d in range(5)), 12 * H)
    assert set(pro.holiday_regions) == {("US", None), ("CA", None)}
    canada_day = local(ny, 2026, 7, 1, 12, 0)      # Wednesday; no US holiday
    thanksgiving = local(ny, 2026, 11, 26, 12, 0)  # US only
    assert not pro.is_open(canada_day) and not pro.is_open(thanksgiving)
    assert ent.is_open(canada_day) and ent.is_open(thanksgiving)
    assert ent.holiday_regions == ()


def test_vectorize_enterprise_targets_and_order_form_uptime(catalog):
    plan = catalog.resolve(terms(policy="vectorize", plan="enterprise", overrides={"uptime_commitment_percent": "99.95"}))
    urgent = by_binding(plan.targets("urgent"), "first_response")
    assert (urgent[False].duration, urgent[True].duration) == (1 * H, 4 * H)
    high = by_binding(plan.targets("high"), "first_response")
    assert (high[False].duration, high[True].duration) == (4 * H, 8 * H)
    normal = by_binding(plan.targets("normal"), "first_response")
    assert (normal[False].duration, normal[True].duration) == (12 * H, 12 * H)
    assert plan.uptime_commitment_percent == Decimal("99.95")


def test_vectorize_starter_has_no_ticket_clocks_but_an_uptime_commitment(catalog):
    plan = catalog.resolve(terms(policy="vectorize", plan="starter"))
    assert not plan.ticket_clocks
    assert all(plan.targets(p) == () for p in plan.priorities)
    assert plan.uptime_commitment_percent == Decimal("99")


# --- overrides -----------------------------------------------------------------------------


def test_override_targets_replace_that_priority_and_metric_only(catalog):
    plan = catalog.resolve(terms(policy="vectorize", plan="pro", overrides={"targets": {"urgent": {
        "first_response": {"amount": 2, "unit": "hours"},
        "resolution": [{"amount": 8, "unit": "hours", "binding": False},
                       {"amount": 3, "unit": "days", "clock": "calendar"}],
    }}}))
    urgent = plan.targets("urgent")
    assert [(t.metric, t.binding, t.duration) for t in urgent] == [
        ("first_response", True, 2 * H),
        ("resolution", False, 8 * H),
        ("resolution", True, 72 * H),
    ]
    assert urgent[2].calendar.is_always_open and not urgent[1].calendar.is_always_open
    # the other priorities keep the catalog's targets
    assert [t.duration for t in plan.targets("high")] == [12 * H, 12 * H]


def test_override_business_hours_replace_the_calendar_and_keep_its_holidays(catalog):
    plan = catalog.resolve(terms(policy="vectorize", plan="pro", overrides={"business_hours": {
        "timezone": "America/Toronto", "weekly": [[d, 480, 960] for d in range(5)], "day_length_hours": 8}}))
    t = by_binding(plan.targets("normal"), "first_response")[True]
    assert t.calendar.timezone == "America/Toronto"
    assert t.calendar.weekly == tuple((d, 480, 960) for d in range(5))
    assert t.duration == 16 * H   # 2 business days of the order form's 8 h day
    assert set(t.calendar.holiday_regions) == {("US", None), ("CA", None)}


def test_override_business_hours_leave_round_the_clock_coverage(catalog):
    plan = catalog.resolve(terms(policy="neptune", plan="extended", timezone="Europe/Berlin", overrides={
        "business_hours": {"timezone": "Europe/Berlin", "weekly": [[d, 420, 1140] for d in range(5)],
                           "day_length_hours": 12}}))
    fr, _ = plan.targets("critical")
    assert fr.calendar.is_always_open
    assert plan.targets("medium")[0].duration == 24 * H


def test_override_pause_and_uptime(catalog):
    plan = catalog.resolve(terms(policy="vectorize", plan="pro", overrides={
        "uptime_commitment_percent": "99.9",
        "pause": {"statuses": ["waiting_on_customer"], "metrics": ["first_response", "resolution"]}}))
    assert plan.uptime_commitment_percent == Decimal("99.9")   # the order form wins over the plan's 99.5
    assert dict(plan.pause_statuses) == {"first_response": frozenset({"waiting_on_customer"}),
                                         "resolution": frozenset({"waiting_on_customer"})}
    assert plan.pauses("first_response", "waiting_on_customer")
    assert not plan.pauses("update", "waiting_on_customer")


# --- sharing, caching, errors ----------------------------------------------------------------


def test_calendars_and_plans_are_shared_between_customers(catalog):
    a = catalog.resolve(terms(customer_id="a", policy="neptune", plan="basic", timezone="Asia/Tokyo", holiday_country="JP",
                              services=[{"service_id": "a1", "monthly_fee": "10", "currency": "JPY"}]))
    b = catalog.resolve(terms(customer_id="b", policy="neptune", plan="extended", timezone="Asia/Tokyo",
                              holiday_country="JP"))
    c = catalog.resolve(terms(customer_id="c", policy="neptune", plan="basic", timezone="Asia/Tokyo", holiday_country="JP"))
    assert a.targets("high")[0].calendar is b.targets("high")[0].calendar
    assert a.targets("low") is c.targets("low")
    assert a.services[0].service_id == "a1" and c.services == ()
    assert a != c and a.targets("low") == c.targets("low")


def test_resolved_plan_is_frozen(catalog):
    plan = catalog.resolve(terms(policy="vectorize", plan="pro"))
    with pytest.raises(AttributeError):
        plan.services = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        plan.pause_statuses["update"] = frozenset({"on_hold"})  # type: ignore[index]
    with pytest.raises(AttributeError):
        plan.targets("urgent")[0].amount = Decimal(1)  # type: ignore[misc]
    hash(plan)


def test_unknown_priority_is_a_key_error(catalog):
    plan = catalog.resolve(terms(policy="vectorize", plan="pro"))
    with pytest.raises(KeyError, match="critical"):
        plan.targets("critical")


def test_resolve_rejects_terms_the_catalog_cannot_accept(catalog):
    with pytest.raises(ContractError, match=r"customer_id='c1'.*overrides\.uptime_commitment_percent.*missing"):
        catalog.resolve(terms(policy="vectorize", plan="enterprise"))


def test_describe_names_the_plan_and_its_clocks(catalog):
    text = catalog.resolve(terms(policy="vectorize", plan="pro")).describe()
    assert "vectorize / pro" in text and "99.5" in text
    assert "first_response objective 4 business hours" in text
    assert "first_response commitment 12 business hours" in text
    assert "closed on holidays US, CA" in text


@settings(max_examples=60, deadline=None)
@given(amount=st.decimals(min_value=Decimal("0.25"), max_value=Decimal("40"), places=2),
       unit=st.sampled_from(["minutes", "hours", "days"]),
       clock=st.sampled_from(["business", "calendar"]),
       region=st.sampled_from(["americas", "emea", "apac"]))
def test_order_form_target_duration_is_amount_times_the_unit(catalog, amount, unit, clock, region):
    plan = catalog.resolve(terms(policy="rescale", plan="basic", region=region, overrides=rescale_targets(
        normal={"amount": str(amount), "unit": unit, "clock": clock})))
    (t,) = plan.targets("normal")
    day = {"americas": 12 * H, "emea": 8 * H, "apac": 8 * H}[region] if clock == "business" else 24 * H
    size = {"minutes": timedelta(minutes=1), "hours": H, "days": day}[unit]
    micros = Decimal(size // timedelta(microseconds=1)) * amount
    assert t.duration == timedelta(microseconds=int(micros))
    assert t.calendar.is_always_open == (clock == "calendar")


# --- catalog file validation ---------------------------------------------------------------


def broken_catalog(tmp_path: Path, policy: str, edit) -> Path:
    for f in CATALOG_DIR.glob("*.yaml"):
        shutil.copy(f, tmp_path / f.name)
    path = tmp_path / f"{policy}.yaml"
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data))
    return tmp_path


@pytest.mark.parametrize(("policy", "edit", "field", "problem"), [
    ("vectorize", lambda d: d["plans"]["pro"]["coverage"][0].update(calendar="nine-to-five"),
     "plans.pro.coverage[0].calendar", "unknown calendar 'nine-to-five'"),
    ("neptune", lambda d: d["plans"]["basic"]["targets"]["high"]["first_response"][0].update(unit="weeks"),
     "plans.basic.targets.high.first_response[0].unit", "Input should be"),
    ("neural-magic", lambda d: d["calendars"]["business-hours"].update(timezone="America/Gotham"),
     "calendars.business-hours", "unknown IANA timezone 'America/Gotham'"),
    ("vectorize", lambda d: d["calendars"]["standard-hours-with-holidays"]["hours"][0].update(open="19:00"),
     "calendars.standard-hours-with-holidays.hours[0]", "open 19:00 must be before close 19:00"),
    ("rescale", lambda d: d.pop("catalog_version"), "catalog_version", "Field required"),
    ("vectorize", lambda d: d["rules"].update(non_production_fallback="urgent"),
     "rules.non_production_fallback", "must be a priority available for non-production"),
    ("neptune", lambda d: d["plans"]["extended"]["targets"]["critical"]["update"][0].update(calendar="customer-business-hours"),
     "plans.extended.targets.critical.update[0].calendar", "runs 24x7"),
    ("rescale", lambda d: d["plans"]["premium"].update(coverage=[{"edition": "government", "calendar": "basic-americas"}]),
     "plans.premium.coverage", "has no calendar"),
    ("neptune", lambda d: d["plans"]["basic"].update(requires=[]),
     "plans.basic.requires", "uses the contract's timezone"),
    ("vectorize", lambda d: d["calendars"]["standard-hours-with-holidays"]["holidays"].append({"country": "XX"}),
     "calendars.standard-hours-with-holidays", "unknown holiday country 'XX'"),
])
def test_catalog_errors_name_file_field_and_problem(tmp_path, policy, edit, field, problem):
    directory = broken_catalog(tmp_path, policy, edit)
    with pytest.raises(CatalogError) as info:
        load_catalog(directory)
    message = str(info.value)
    assert message.startswith(f"{policy}.yaml: ")
    assert f"{field}: " in message or f"{field}." in message
    assert problem in message


def test_catalog_file_named_after_another_policy_is_rejected(tmp_path):
    shutil.copy(CATALOG_DIR / "neptune.yaml", tmp_path / "neptune-v2.yaml")
    with pytest.raises(CatalogError, match=r"neptune-v2\.yaml: policy: .*does not match the file name"):
        load_catalog(tmp_path)


def test_resolved_plan_type():
    assert isinstance(load_catalog().resolve(terms(policy="neural-magic", plan="enterprise")), ResolvedPlan)
