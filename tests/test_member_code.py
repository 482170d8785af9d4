"""Member codes (footfall/member_code.py): 9 digits with a Damm check digit, so that no phone
number, landline, ID-card number or name is ever valid; refused by the kiosk and dead-lettered by ingest over a
real Mosquitto."""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from stdnum import damm

from footfall import member_code
from footfall.cli import main as footfall_main
from footfall.clock import format_ts, utcnow
from footfall.errors import ValidationError
from footfall.messages import decode_event
from tests.conftest import footfall_env, wait_server_online, wait_until
from tests.test_ingest_mqtt import pub
from tests.test_kiosk_app import app, client_of, events  # noqa: F401 - `app` is a fixture

# The codes of issue #16 (and #11's mobile number): phone numbers with and without the country code, a Beijing
# landline with its area code, an old 15-digit ID-card number, a name.
PERSONAL = ("8613812345678", "008613812345678", "01065123456", "110105491231002", "zhangsan", "13912345678")
MORE_PERSONAL = (
    "+8613812345678",
    "11010519491231002X",
    "110105194912310021",
    "010-65123456",
    "65123456",
    "张三",
)


@pytest.mark.parametrize("text", PERSONAL + MORE_PERSONAL)
def test_personal_data_is_never_a_valid_code(text):
    with pytest.raises(ValidationError) as info:
        member_code.validate(text)
    assert info.value.field == "member"


def test_the_reason_says_what_it_looks_like():
    assert "phone number" in member_code.problem("8613812345678")
    assert "phone number" in member_code.problem("01065123456")
    assert "ID-card" in member_code.problem("110105491231002")
    assert "never a name" in member_code.problem("zhangsan")
    assert "check digit" in member_code.problem("202400170")


def test_codes_are_serial_plus_the_damm_check_digit():
    code = member_code.make(20240017)
    assert code == "20240017" + damm.calc_check_digit("20240017")  # python-stdnum, an independent oracle
    assert member_code.validate(code) == code and damm.is_valid(code)
    with pytest.raises(ValueError):
        member_code.make(1234567)  # a serial has 8 digits, no leading zero


@given(st.integers(member_code.SERIAL_MIN, member_code.SERIAL_MAX))
def test_every_made_code_is_valid_and_agrees_with_stdnum(serial):
    code = member_code.make(serial)
    assert len(code) == member_code.LENGTH and member_code.problem(code) is None
    assert code[-1] == damm.calc_check_digit(str(serial))


@given(st.integers(member_code.SERIAL_MIN, member_code.SERIAL_MAX), st.integers(0, 8), st.integers(1, 9))
def test_a_single_mistyped_digit_is_refused(serial, position, shift):
    code = member_code.make(serial)
    typo = code[:position] + str((int(code[position]) + shift) % 10) + code[position + 1 :]
    assert member_code.problem(typo) is not None


@given(st.integers(member_code.SERIAL_MIN, member_code.SERIAL_MAX), st.integers(0, 7))
def test_two_swapped_neighbours_are_refused(serial, position):
    code = member_code.make(serial)
    swapped = code[:position] + code[position + 1] + code[position] + code[position + 2 :]
    assert swapped == code or member_code.problem(swapped) is not None


def test_every_swap_of_neighbours_is_refused_exhaustively_for_two_digits():
    # The property Damm gives and MOD 11,10 lacks ("09" <-> "90"): every pair of digits, at every position.
    for serial in (10000000, 20240017, 99999999):
        code = member_code.make(serial)
        for position in range(8):
            for a in range(10):
                for b in range(10):
                    if a == b:
                        continue
                    digits = code[:position] + f"{a}{b}" + code[position + 2 :]
                    swapped = code[:position] + f"{b}{a}" + code[position + 2 :]
                    if digits[0] != "0" and swapped[0] != "0" and member_code.problem(digits) is None:
                        assert member_code.problem(swapped) is not None, (digits, swapped)


@given(
    st.sampled_from(["", "86", "+86", "0086"]),
    st.integers(13, 19),
    st.integers(0, 10**9 - 1),
)
def test_no_mobile_number_with_any_prefix_is_valid(prefix, head, rest):
    assert member_code.problem(f"{prefix}{head}{rest:09d}") is not None


@given(st.text(alphabet=st.characters(categories=("Lu", "Ll", "Lo")), min_size=1, max_size=20))
def test_no_name_is_valid(name):
    assert member_code.problem(name) is not None


@given(st.integers(0, 10**18 - 1), st.sampled_from([7, 8, 10, 11, 12, 15, 18]))
def test_no_other_length_of_digits_is_valid(number, length):
    assert member_code.problem(f"{number % 10**length:0{length}d}") is not None


def test_the_member_command_issues_and_checks_codes():
    runner = CliRunner()
    made = runner.invoke(footfall_main, ["member", "new", "-n", "3", "--serial", "20240017"])
    assert made.exit_code == 0, made.output
    assert made.output.split() == [member_code.make(20240017 + i) for i in range(3)]
    randoms = runner.invoke(footfall_main, ["member", "new", "-n", "50"]).output.split()
    assert len(set(randoms)) == 50 and all(member_code.problem(c) is None for c in randoms)
    good = runner.invoke(footfall_main, ["member", "check", randoms[0]])
    assert good.exit_code == 0 and good.output.strip() == f"{randoms[0]}: ok"
    bad = runner.invoke(footfall_main, ["member", "check", randoms[0], "13912345678"])
    assert bad.exit_code == 1 and "13912345678: looks like a phone number" in bad.output


@pytest.mark.parametrize("text", PERSONAL)
def test_the_kiosk_refuses_them(app, text):  # noqa: F811
    client = client_of(app)
    r = client.post("/api/checkin", json={"purpose": "reading", "adults": 1, "member": text})
    assert r.status_code == 422 and r.json["field"] == "member"
    qr = client.post(
        "/api/checkin", json={"purpose": "reading", "adults": 1, "member": f"footfall-member:{text}"}
    )
    assert qr.status_code == 422
    assert events(app) == []


def checkin(event_id: str, seq: int, member: str) -> str:
    return json.dumps(
        {
            "v": 1,
            "id": event_id,
            "seq": seq,
            "ts": format_ts(utcnow()),
            "type": "checkin",
            "purpose": "reading",
            "adults": 1,
            "children": 0,
            "member": member,
        }
    )


@pytest.mark.integration
def test_ingest_dead_letters_them_over_mosquitto(broker, site_file, procs, tmp_path):
    """Whatever the sender (here Debian's mosquitto_pub, not the kiosk), ingest stores no such code."""
    procs("server", "-c", str(site_file), "--only", "ingest", env=footfall_env(broker), name="ingest")
    wait_server_online(broker)
    valid = member_code.make(20240017)
    for seq, text in enumerate(PERSONAL):
        pub(broker, "kiosk-hall", checkin(f"bad-{seq}", seq, text))
    pub(broker, "kiosk-hall", checkin("good", len(PERSONAL), valid))
    db = tmp_path / "data" / "footfall.db"

    def counts():
        with sqlite3.connect(db) as conn:
            return (
                conn.execute("select count(*) from events where type='checkin'").fetchone()[0],
                conn.execute("select count(*) from dead_letters").fetchone()[0],
            )

    wait_until(lambda: db.exists() and counts() == (1, len(PERSONAL)), 20, message="1 stored, 6 dead letters")
    with sqlite3.connect(db) as conn:
        (stored,) = conn.execute("select member from events where type='checkin'").fetchone()
        letters = conn.execute("select reason, excerpt from dead_letters order by pk").fetchall()
    assert stored == valid
    assert all(reason.startswith("member:") for reason, _ in letters), letters
    assert sorted(json.loads(excerpt)["member"] for _, excerpt in letters) == sorted(PERSONAL)
    assert decode_event(checkin("x", 0, valid)).member == valid
