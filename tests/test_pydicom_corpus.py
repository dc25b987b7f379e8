"""``manage.py deidentify`` over every pydicom and pydicom-data test file.

At least 90 % of the distinct SOP instances come out (an instance is out when any of its
files is); every other file is rejected or quarantined with a reason in words; no output
holds a name, ID, date, institution or UID of an input (checked on the raw output bytes,
not with the verifier). The figures printed here are the README's corpus figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command

from anonymizer.deid.tests.conftest_helpers import run
from anonymizer.deid.tests.factory import make_ct
from anonymizer.processing import serialize
from tests.pydicom_corpus import deidentify_args, evaluate, gather, identifiers, leaks, write_fixed_key


@pytest.mark.slow
def test_every_pydicom_test_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.delenv("WORKBENCH_DEID_SECRET", raising=False)
    in_dir, out_dir, report = tmp_path / "in", tmp_path / "out", tmp_path / "report.json"
    corpus = gather(in_dir)
    assert len(corpus.files) > 200 and len(corpus.counted) > 50  # pydicom-data is installed
    key_file = write_fixed_key(tmp_path / "k.key")

    call_command("deidentify", *deidentify_args(in_dir, out_dir, report, key_file))
    figures = evaluate(corpus, in_dir, out_dir, report)

    with capsys.disabled():
        print("\n" + figures.summary())
        for name, status, code, message in figures.not_out:
            print(f"  {status:11} {code:20} {name}: {message}")
    assert figures.leak_files == ()
    assert all(message.strip() and code for _name, _status, code, message in figures.not_out)
    assert {status for _name, status, _code, _message in figures.not_out} <= {"rejected", "quarantined"}
    assert figures.share_out >= 0.9, figures.summary()


def test_leak_check_finds_what_an_unclean_output_holds(tmp_path: Path) -> None:
    source = make_ct(patient_name="ROE^RICHARD", patient_id="PID777")
    source.save_as(tmp_path / "in.dcm", enforce_file_format=True)
    own = identifiers(tmp_path / "in.dcm")
    assert {"ROE", "RICHARD", "PID777"} <= own.names | own.ids and str(source.StudyInstanceUID) in own.uids

    assert set(leaks(tmp_path / "in.dcm", own, own)) == {"name", "id", "uid", "date"}  # the input itself
    clean = run(source).dataset
    (tmp_path / "out.dcm").write_bytes(serialize(clean))
    assert leaks(tmp_path / "out.dcm", own, own) == []
    clean.ImageComments = "seen by pid777"  # a planted ID, lower case, inside free text
    (tmp_path / "out.dcm").write_bytes(serialize(clean))
    assert leaks(tmp_path / "out.dcm", own, own) == ["id"]
