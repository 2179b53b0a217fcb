"""Mapping files: example mappings against their golden output, errors with their place, filters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from hub.cli import main
from hub.journal import SqliteJournal
from hub.mapping import MappingError, MappingLoadError, load_mapping, sample_application

MAPPINGS = Path(__file__).parents[1] / "config" / "mappings"
EXAMPLES = sorted(p for p in MAPPINGS.glob("*.yaml"))


def test_there_are_example_mappings() -> None:
    assert {p.stem for p in EXAMPLES} >= {"jagd-und-fischerei", "grabungserlaubnis", "kindertagespflege"}


# Mappings of routes whose Fachverfahren assigns the Aktenzeichen: rendered with the number it gives.
ASSIGNED = {"bauantrag-mikropro": "63-BA-2026-00001"}


@pytest.mark.parametrize("mapping", EXAMPLES, ids=lambda p: p.stem)
def test_example_mapping_matches_its_golden_output(mapping: Path) -> None:
    sample = MAPPINGS / "samples" / f"{mapping.stem}.yaml"
    golden = MAPPINGS / "samples" / f"{mapping.stem}.golden.yaml"
    number = ["--file-number", ASSIGNED[mapping.stem]] if mapping.stem in ASSIGNED else []
    result = CliRunner().invoke(main, ["mapping", "test", str(mapping), str(sample), *number])
    assert result.exit_code == 0, result.output
    assert result.output == golden.read_text(encoding="utf-8")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(text, encoding="utf-8")
    return path


SAMPLE: dict[str, Any] = yaml.safe_load((MAPPINGS / "samples" / "jagd-und-fischerei.yaml").read_text())


def test_missing_field_is_an_error_naming_field_and_place(tmp_path: Path) -> None:
    mapping = load_mapping(
        write(
            tmp_path,
            """\
akte:
  type: Personenakte
  fields:
    Nachname: "{{ applicant.family_name }}"
    Beruf: "{{ form.beruf }}"
""",
        )
    )
    with pytest.raises(MappingError) as info:
        mapping.render(sample_application(SAMPLE))
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'm.yaml'}:5: akte.fields.Beruf: ")
    assert "'beruf'" in message


def test_absent_value_is_an_error_not_the_word_none(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path, 'akte: {type: A, fields: {Telefon: "{{ applicant.phone }}"}}\n'))
    with pytest.raises(MappingError, match="'phone'"):
        mapping.render(sample_application(SAMPLE))
    optional = load_mapping(
        write(tmp_path, "akte: {type: A, fields: {Telefon: \"{{ applicant.phone | default('-') }}\"}}\n")
    )
    assert optional.render(sample_application(SAMPLE)).akte.fields == {"Telefon": "-"}


def test_an_optional_search_field_is_searched_by_only_when_known(tmp_path: Path) -> None:
    text = (
        "akte:\n  type: A\n  optional: [PersonenID]\n  search:\n    Name: '{{ applicant.family_name }}'\n"
        "    PersonenID: \"{{ form.person_id | default('') }}\"\n"
    )
    mapping = load_mapping(write(tmp_path, text))
    unknown = sample_application(SAMPLE)
    known = sample_application({**SAMPLE, "form": {**SAMPLE["form"], "person_id": "P-7"}})
    name = unknown.applicant.family_name
    assert mapping.render(unknown).akte.search == {"Name": name}
    assert mapping.render(known).akte.search == {"Name": name, "PersonenID": "P-7"}
    lookup = mapping.akte_lookup(unknown)
    assert lookup is not None and lookup.search == {"Name": name}
    with pytest.raises(MappingLoadError, match="not in search: Name"):
        load_mapping(write(tmp_path, "akte: {type: A, optional: [Name], fields: {Name: x}}\n"))


def test_cli_prints_errors_with_place_and_fails(tmp_path: Path) -> None:
    bad = write(tmp_path, 'vorgang: {type: Vorgang, fields: {Betreff: "{{ form.unbekannt }}"}}\n')
    sample = MAPPINGS / "samples" / "jagd-und-fischerei.yaml"
    result = CliRunner().invoke(main, ["mapping", "test", str(bad), str(sample)])
    assert result.exit_code == 1
    assert "m.yaml:1: vorgang.fields.Betreff:" in result.output
    assert "unbekannt" in result.output


def test_cli_renders_with_the_number_a_fachverfahren_assigns(tmp_path: Path) -> None:
    unnumbered = (MAPPINGS / "jagd-und-fischerei.yaml").read_text("utf-8")
    unnumbered = unnumbered.replace('file_number:\n  pattern: "32.3-{year}-{seq:05d}"\n', "")
    mapping = write(tmp_path, unnumbered)
    sample = MAPPINGS / "samples" / "jagd-und-fischerei.yaml"
    without = CliRunner().invoke(main, ["mapping", "test", str(mapping), str(sample)])
    assert without.exit_code == 1 and "akte.fields.Aktenzeichen" in without.output
    assigned = CliRunner().invoke(
        main, ["mapping", "test", str(mapping), str(sample), "--file-number", "63-BA-7"]
    )
    assert assigned.exit_code == 0, assigned.output
    record = yaml.safe_load(assigned.output)
    assert (record["file_number"], record["akte"]["fields"]["Aktenzeichen"]) == ("63-BA-7", "63-BA-7")
    first = CliRunner().invoke(main, ["mapping", "test", str(mapping), str(sample), "--file-number", ""])
    assert first.exit_code == 0, first.output
    record = yaml.safe_load(first.output)
    assert (record["file_number"], record["akte"]["fields"]["Aktenzeichen"]) == (None, "")


def test_load_errors_name_every_problem(tmp_path: Path) -> None:
    with pytest.raises(MappingLoadError) as info:
        load_mapping(
            write(
                tmp_path,
                """\
akte:
  type: Personenakte
  fields:
    Nachname: "{{ applicant.family_name "
documents:
  - type: Antrag
    content: fax
file_number: {pattern: "63-{year}"}
""",
            )
        )
    problems = "\n".join(info.value.problems)
    assert "m.yaml:7: documents[0].content" in problems
    assert "m.yaml:8: file_number.pattern" in problems and "{seq}" in problems
    with pytest.raises(MappingLoadError) as info:
        load_mapping(write(tmp_path, 'akte: {type: A, fields: {N: "{{ applicant.family_name "}}\n'))
    assert "m.yaml:1: akte.fields.N:" in info.value.problems[0]
    with pytest.raises(MappingLoadError, match="No filter named 'gibtsnicht'"):
        load_mapping(write(tmp_path, 'akte: {type: A, fields: {N: "{{ service | gibtsnicht }}"}}\n'))


def test_sandbox_refuses_python_internals(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path, 'akte: {type: A, fields: {X: "{{ form.__class__.__mro__ }}"}}\n'))
    with pytest.raises(MappingError):
        mapping.render(sample_application(SAMPLE))
    mutate = load_mapping(write(tmp_path, 'akte: {type: A, fields: {X: "{{ form.update({}) }}"}}\n'))
    with pytest.raises(MappingError, match="not allowed"):
        mutate.render(sample_application(SAMPLE))


def test_filters(tmp_path: Path) -> None:
    mapping = load_mapping(
        write(
            tmp_path,
            """\
tables: {art: {JJS: Jahresjagdschein}}
akte:
  type: A
  fields:
    sort: "{{ applicant | sortname }}"
    initials: "{{ applicant | initials }}"
    ascii: "{{ 'Łukasiewicz-Öztürk Groß Ðorđević' | ascii }}"
    date: "{{ '2026-02-03' | date }}"
    time: "{{ received_at | date('%d.%m.%Y %H:%M') }}"
    table: "{{ 'JJS' | lookup('art') }}"
    fallback: "{{ 'XYZ' | lookup('art', 'unbekannt') }}"
""",
        )
    )
    fields = mapping.render(sample_application(SAMPLE)).akte.fields
    assert fields == {
        "sort": "Groß, Jürgen",
        "initials": "J. G.",
        "ascii": "Lukasiewicz-Oeztuerk Gross Dordevic",
        "date": "03.02.2026",
        "time": "20.11.2026 10:15",
        "table": "Jahresjagdschein",
        "fallback": "unbekannt",
    }
    missing = load_mapping(
        write(tmp_path, "tables: {t: {a: b}}\nakte: {type: A, fields: {X: \"{{ 'z' | lookup('t') }}\"}}\n")
    )
    with pytest.raises(MappingError, match="'z' is not in table 't'"):
        missing.render(sample_application(SAMPLE))


async def test_file_numbers_come_from_the_journal_and_are_never_reused(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path, 'file_number: {pattern: "63-{year}-{seq:05d}"}\n'))
    app = sample_application(SAMPLE)
    journal = SqliteJournal(tmp_path / "j.db")
    await journal.open()
    numbers = [await mapping.draw_file_number(app, journal.next_sequence) for _ in range(3)]
    await journal.close()
    reopened = SqliteJournal(tmp_path / "j.db")
    await reopened.open()
    numbers.append(await mapping.draw_file_number(app, reopened.next_sequence))
    next_year = sample_application({**SAMPLE, "received_at": "2027-01-02T10:00:00+00:00"})
    numbers.append(await mapping.draw_file_number(next_year, reopened.next_sequence))
    await reopened.close()
    assert numbers == ["63-2026-00001", "63-2026-00002", "63-2026-00003", "63-2026-00004", "63-2027-00001"]


def test_plugin_filters_are_available(tmp_path: Path) -> None:
    mapping = load_mapping(
        write(tmp_path, 'akte: {type: A, fields: {X: "{{ service | kreis }}"}}\n'),
        {"kreis": lambda value: f"Rhein-Sieg-Kreis/{value}"},
    )
    assert mapping.render(sample_application(SAMPLE)).akte.fields == {"X": "Rhein-Sieg-Kreis/jagdschein"}
