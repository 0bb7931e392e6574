"""The versioned JSON contract: requests in, results and errors out (schema version 1.x).

Other services (and the HTTP service to come) call the library through plain JSON::

    from territory import contract
    import territory as tp

    try:
        scenario, options = contract.parse_plan_request(body)   # str, bytes or a dict
        reply = contract.plan_result_to_json(tp.plan(scenario, **options))
        code = reply["code"]               # 0 ok, 3 no feasible plan (still the best found)
    except Exception as exc:
        reply, code = contract.error_to_json(exc)   # 2 bad input, 3 infeasible, 1 internal

The schemas (JSON Schema draft 2020-12) ship in ``territory/schemas/``: ``plan_request``,
``plan_result``, ``partition_request``, ``partition_result`` and ``error``, each ``.v1.json``
(``load_schema("plan_request")``).

Versions
--------
``schema_version`` is ``"MAJOR.MINOR"``. A minor version only adds optional request fields and
result fields, so this library accepts every ``1.x`` request (a field it does not know is
refused by name) and consumers of results must ignore fields they do not know. Another major
version is refused with the versions supported.

Requests
--------
``accounts`` and ``reps`` are arrays of records with the columns ``territory.read_accounts`` /
``read_reps`` accept (the same names, aliases and defaults; ``null`` means missing, so the
default applies). Each record names its fields on its own, so records may spell a field
differently (``lon`` in one, ``lng`` in another); one record giving a field twice is refused.
The records then go through the same readers as files do, so every value is checked the same
way and the messages name the row (the position in the array) and the field.

Validation is all-or-nothing and lists every problem with its JSON path (``accounts[3].lon``).
The envelope (version, calendar, options) is validated by ``jsonschema`` against the request
schema. The records are checked by a per-record loop that takes its rules (types, bounds,
required names) from the same schema's ``$defs``: ``jsonschema`` costs about 0.2 ms per record
(3 s for 20,000 accounts), too slow at national scale, while the loop costs microseconds. The
tests check that both flag the same records.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import importlib.resources
import inspect
import json
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import jsonschema
import numpy as np
import pandas as pd

from territory.errors import (
    InfeasibleError,
    InvalidInputError,
    NoSolutionError,
    Problem,
    SolverError,
    TerritoryError,
)
from territory.hours import parse_days
from territory.io import ACCOUNT_ALIASES, REP_ALIASES, _norm, read_accounts, read_reps
from territory.model import Calendar, Scenario

if TYPE_CHECKING:
    from territory.alignment import TerritoryPlan
    from territory.planning import NationalPlan

__all__ = [
    "SCHEMA_NAMES",
    "SCHEMA_VERSION",
    "SUPPORTED_MAJOR_VERSIONS",
    "RequestError",
    "error_to_json",
    "load_schema",
    "parse_partition_request",
    "parse_plan_request",
    "partition_result_to_json",
    "plan_result_to_json",
]

#: Version written into every result and error, and the newest request version understood.
#: 1.1: a plan result's rounds may have the stage "endgame" (additive).
SCHEMA_VERSION = "1.1"
#: Major versions of requests this library accepts.
SUPPORTED_MAJOR_VERSIONS: tuple[int, ...] = (1,)
#: The schema files, ``territory/schemas/<name>.v1.json``.
SCHEMA_NAMES: tuple[str, ...] = (
    "plan_request", "plan_result", "partition_request", "partition_result", "error",
)

_Kind = Literal["plan", "partition"]
_Path = tuple[str | int, ...]
_Issue = tuple[_Path, Any, str]  # JSON path, offending value, what is wrong

_NONFINITE = "not a finite number (NaN and infinities are not JSON)"
_TYPE_WORDS = {
    "number": "a number", "integer": "an integer", "string": "a string",
    "boolean": "true/false", "null": "null", "object": "an object", "array": "an array",
}
_SCHEDULE_COLUMNS = ("rep_id", "day", "date", "sequence", "account_id", "visit", "arrival",
                     "start", "departure", "arrival_min", "start_min", "departure_min",
                     "appointment")
_DROPPED_COLUMNS = ("rep_id", "account_id", "visit", "reason", "reason_text", "value")


class RequestError(InvalidInputError):
    """An invalid request: an ``InvalidInputError`` whose problems also carry JSON paths.

    Attributes
    ----------
    paths:
        ``paths[i]`` is the JSON path of ``problems[i]`` in the request (``"accounts[3].lon"``),
        or None when the problem has no single place.
    """

    def __init__(self, summary: str, problems: Sequence[Problem] = (),
                 paths: Sequence[str | None] = (), *, kind: str = "Request",
                 hint: str | None = None) -> None:
        super().__init__(summary, problems, kind=kind, hint=hint)
        paths = tuple(paths)
        self.paths: tuple[str | None, ...] = paths + (None,) * (len(self.problems) - len(paths))


# ----------------------------------------------------------------------------------------------
# schemas


@functools.cache
def _schema(name: str) -> dict[str, Any]:
    if name not in SCHEMA_NAMES:
        raise ValueError(f"unknown schema {name!r}; the schemas are {list(SCHEMA_NAMES)}")
    path = importlib.resources.files("territory") / "schemas" / f"{name}.v1.json"
    return json.loads(path.read_text(encoding="utf-8"))


def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one message of the contract, as a fresh dict.

    Parameters
    ----------
    name:
        One of ``SCHEMA_NAMES``: ``"plan_request"``, ``"plan_result"``,
        ``"partition_request"``, ``"partition_result"``, ``"error"``.

    Raises
    ------
    ValueError
        For an unknown name.
    """
    return copy.deepcopy(_schema(name))


@functools.cache
def _envelope_validator(kind: _Kind) -> jsonschema.Draft202012Validator:
    """The request schema without the record items, which ``_RecordCheck`` checks."""
    schema = load_schema(f"{kind}_request")
    for array in ("accounts", "reps"):
        del schema["properties"][array]["items"]
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


# ----------------------------------------------------------------------------------------------
# checking records fast, by the rules of the schema


def _json_type(value: Any) -> str:
    """The JSON type of a Python value (``integer`` for whole floats, as JSON Schema has it)."""
    if value is None:
        return "null"
    if isinstance(value, (bool, np.bool_)):
        return "boolean"
    if isinstance(value, numbers.Integral):
        return "integer"
    if isinstance(value, numbers.Real):
        return "integer" if float(value).is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


def _type_text(types: Sequence[str]) -> str:
    words = [_TYPE_WORDS.get(t, t) for t in types]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _got(value: Any) -> str:
    kind = _json_type(value)
    return _TYPE_WORDS.get(kind, kind)


def _missing_message(names: Sequence[str]) -> str:
    also = f" (or {', '.join(names[1:])})" if len(names) > 1 else ""
    return f"missing; give {names[0]}{also}"


_BOUNDS = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
_RULE_KEYS = {"type", "description", "default", *_BOUNDS}


@dataclass(frozen=True)
class _Rule:
    """The check of one record field: its JSON types and numeric bounds."""

    types: tuple[str, ...]
    accepts: frozenset[str]
    bounds: tuple[tuple[str, float], ...]

    @classmethod
    def of(cls, node: Mapping[str, Any]) -> _Rule:
        unknown = set(node) - _RULE_KEYS
        if unknown:
            # A keyword the loop does not implement would make it disagree with the schema.
            raise RuntimeError(f"record field rule uses {sorted(unknown)}, which the record "
                               "check does not implement")
        types = node["type"]
        types = (types,) if isinstance(types, str) else tuple(types)
        accepts = set(types) | ({"integer"} if "number" in types else set())
        bounds = tuple((k, float(node[k])) for k in _BOUNDS if k in node)
        return cls(types, frozenset(accepts), bounds)

    def issue(self, value: Any) -> str | None:
        """What is wrong with ``value`` (None when nothing is)."""
        t = type(value)
        if t is str:
            kind = "string"
        elif t is float:
            if not math.isfinite(value):
                return _NONFINITE
            kind = "integer" if value.is_integer() else "number"
        elif t is int:
            kind = "integer"
        elif t is bool:
            kind = "boolean"
        elif value is None:
            kind = "null"
        else:
            if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) \
                    and not math.isfinite(float(value)):
                return _NONFINITE
            kind = _json_type(value)
        if kind not in self.accepts:
            return f"expected {_type_text(self.types)}, got {_TYPE_WORDS.get(kind, kind)}"
        if self.bounds and kind in ("integer", "number"):
            v = float(value)
            for key, bound in self.bounds:
                if key == "minimum":
                    bad = v < bound
                elif key == "exclusiveMinimum":
                    bad = v <= bound
                elif key == "maximum":
                    bad = v > bound
                else:
                    bad = v >= bound
                if bad:
                    return f"expected {_BOUNDS[key]} {bound:g}"
        return None


def _resolve(defs: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    prefix = "#/$defs/"
    if not ref.startswith(prefix) or len(node) != 1:
        raise RuntimeError(f"record check: unsupported reference {node!r}")
    return _resolve(defs, defs[ref[len(prefix):]])


class _RecordCheck:
    """Types, bounds and required fields of account or rep records, as the schema's
    ``$defs`` state them, checked record by record; keys are mapped to field names by the
    readers' aliases so that a record is also returned with canonical keys."""

    def __init__(self, schema: Mapping[str, Any], record: str,
                 aliases: Mapping[str, tuple[str, ...]]) -> None:
        defs = schema["$defs"]
        node = defs[record]
        unknown = set(node) - {"type", "description", "properties", "allOf",
                               "additionalProperties"}
        if unknown:
            raise RuntimeError(f"record check: {record} uses {sorted(unknown)}")
        self.by_norm = {_norm(a): f for f, names in aliases.items() for a in (f, *names)}
        self.rules: dict[str, _Rule] = {}
        for name, sub in node["properties"].items():
            field = self.by_norm.get(_norm(name), name)
            if field == name:
                self.rules[field] = _Rule.of(_resolve(defs, sub))
        self.cell = _Rule.of(_resolve(defs, node["additionalProperties"]))
        self.required: list[tuple[str, tuple[str, ...]]] = []
        for group in node.get("allOf", ()):
            names = tuple(alt["required"][0] for alt in group["anyOf"])
            self.required.append((self.canonical(names[0]), names))

    def canonical(self, key: Any) -> Any:
        return self.by_norm.get(_norm(key), key) if isinstance(key, str) else key

    def run(self, records: Sequence[Any], array: str, issues: list[_Issue]
            ) -> list[dict[str, Any]]:
        """Records with canonical keys; every problem appended to ``issues``."""
        out: list[dict[str, Any]] = []
        # Per call, not per instance: a long-running service must not collect every key
        # any caller ever sent.
        cache: dict[Any, Any] = {}
        rules, cell = self.rules, self.cell
        for i, rec in enumerate(records):
            if not isinstance(rec, Mapping):
                issues.append(((array, i), rec, f"expected an object, got {_got(rec)}"))
                continue
            renamed = False
            for key, value in rec.items():
                field = cache.get(key)
                if field is None:
                    field = cache[key] = self.canonical(key)
                renamed |= field != key
                msg = rules.get(field, cell).issue(value)
                if msg is not None:
                    issues.append(((array, i, key), value, msg))
            if renamed or not isinstance(rec, dict):
                target: dict[Any, Any] = {}
                first: dict[Any, Any] = {}
                for key, value in rec.items():
                    field = cache[key]
                    if field in target:
                        issues.append(((array, i, key), value,
                                       f"gives {field} a second time (also as "
                                       f"{first[field]!r}); send one of them"))
                        continue
                    first[field] = key
                    target[field] = value
            else:
                target = rec
            for field, names in self.required:
                if field not in target:
                    issues.append(((array, i, names[0]), None, _missing_message(names)))
            out.append(target)
        return out

    def original_key(self, record: Any, field: str) -> str:
        """The key a record used for ``field`` (the field itself when it has none)."""
        if isinstance(record, Mapping):
            for key in record:
                if self.canonical(key) == field:
                    return str(key)
        return field


@functools.cache
def _record_checks(kind: _Kind) -> tuple[_RecordCheck, _RecordCheck]:
    schema = _schema(f"{kind}_request")
    return (_RecordCheck(schema, "account", ACCOUNT_ALIASES),
            _RecordCheck(schema, "rep", REP_ALIASES))


# ----------------------------------------------------------------------------------------------
# issues -> InvalidInputError


def _path_text(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.isidentifier():
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(str(part), ensure_ascii=False)}]"
    return out or "request"


def _path_key(path: _Path) -> tuple[tuple[int, int, str], ...]:
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in path)


def _short(value: Any) -> Any:
    """A value small enough for a message: containers summarised, long texts cut."""
    if isinstance(value, Mapping):
        return f"{{object with {len(value)} field(s)}}"
    if isinstance(value, (list, tuple)):
        return f"[array of {len(value)} item(s)]"
    if isinstance(value, str) and len(value) > 80:
        return value[:77] + "..."
    return value


def _raise_issues(issues: list[_Issue], kind: _Kind) -> None:
    if not issues:
        return
    # One problem per place: a NaN is also "not an integer", an unreadable date also fails
    # its pattern; the first message said it.
    seen: set[tuple[_Path, str]] = set()
    nonfinite = {path for path, _, msg in issues if msg == _NONFINITE}
    unique = []
    for path, value, msg in sorted(issues, key=lambda x: _path_key(x[0])):
        if (path, msg) in seen or (path in nonfinite and msg != _NONFINITE):
            continue
        seen.add((path, msg))
        unique.append((path, value, msg))
    problems = [Problem(row=None, id=None, field=_path_text(p), value=_short(v), message=m)
                for p, v, m in unique]
    raise RequestError(
        f"{len(problems)} problem(s) in the {kind} request; nothing was run:", problems,
        [_path_text(p) for p, _, _ in unique],
        hint=f"Fix the fields above and send the request again (schema "
             f"{kind}_request.v1.json, territory.contract.load_schema('{kind}_request')).")


def _schema_issues(error: jsonschema.ValidationError) -> list[_Issue]:
    """One jsonschema error in words, at the path of the offending field."""
    path: _Path = tuple(error.absolute_path)
    rule, value, inst = error.validator, error.validator_value, error.instance
    if rule == "required" and isinstance(inst, Mapping):
        return [((*path, n), None, "missing; required") for n in value if n not in inst]
    if rule == "dependentRequired" and isinstance(inst, Mapping):
        return [((*path, n), None, f"missing; {key} needs {n}")
                for key, needs in value.items() if key in inst for n in needs if n not in inst]
    if rule == "additionalProperties" and value is False and isinstance(inst, Mapping):
        known = sorted(error.schema.get("properties", {}))
        return [((*path, k), inst[k], f"unknown field; expected one of {', '.join(known)}")
                for k in inst if k not in known]
    if rule == "anyOf" and all(set(alt) == {"required"} for alt in value):
        names = [alt["required"][0] for alt in value]
        return [((*path, names[0]), None, _missing_message(names))]
    if rule == "type":
        types = [value] if isinstance(value, str) else list(value)
        msg = f"expected {_type_text(types)}, got {_got(inst)}"
    elif rule == "enum":
        msg = "expected one of " + ", ".join(json.dumps(v) for v in value)
    elif rule == "const":
        msg = f"expected {json.dumps(value)}"
    elif rule in _BOUNDS:
        msg = f"expected {_BOUNDS[rule]} {value:g}"
    elif rule == "minItems":
        msg = "empty; give at least one" if not inst and value == 1 else \
            f"expected at least {value} items"
    elif rule == "minLength":
        msg = "empty; give a text" if value == 1 else f"expected at least {value} characters"
    elif rule == "uniqueItems":
        msg = "has repeated items; give each once"
    elif rule == "contains" and isinstance(value, Mapping) and "const" in value:
        msg = f"must include {json.dumps(value['const'])}"
    elif rule in ("format", "pattern") and error.schema.get("format") == "date":
        msg = "not a date like 2025-03-31 (YYYY-MM-DD)"
    elif rule == "pattern":
        msg = f"does not match {value}"
    else:
        msg = error.message
    return [(path, inst, msg)]


def _nonfinite_issues(value: Any, path: _Path, issues: list[_Issue]) -> None:
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        if not math.isfinite(float(value)):
            issues.append((path, value, _NONFINITE))
    elif isinstance(value, Mapping):
        for k, v in value.items():
            _nonfinite_issues(v, (*path, k), issues)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _nonfinite_issues(v, (*path, i), issues)


# ----------------------------------------------------------------------------------------------
# requests


def parse_plan_request(obj: Mapping[str, Any] | str | bytes) -> tuple[Scenario, dict[str, Any]]:
    """Validate a plan request and build its scenario and the keyword arguments of ``plan``.

    ``territory.plan(scenario, **options)`` runs it; options left out of the request are left
    out of ``options`` too, so ``plan``'s own defaults apply.

    Parameters
    ----------
    obj:
        The request (``plan_request.v1.json``): a decoded JSON object, or its text or bytes.

    Returns
    -------
    (Scenario, dict)

    Raises
    ------
    InvalidInputError
        Not JSON, an unsupported ``schema_version``, or invalid fields: every problem is listed
        with its JSON path (a ``RequestError``), or as the readers report it, with the row
        (the position in ``accounts`` or ``reps``), the id, the field and the value.
    """
    return _parse(obj, "plan")


def parse_partition_request(obj: Mapping[str, Any] | str | bytes
                            ) -> tuple[Scenario, dict[str, Any]]:
    """Validate a partition request and build its scenario and the keyword arguments of
    ``partition`` (one territory per rep).

    ``territory.partition(scenario, **options)`` runs it; see ``parse_plan_request``.

    Raises
    ------
    InvalidInputError
        As for ``parse_plan_request``.
    """
    return _parse(obj, "partition")


class InvalidJSONError(InvalidInputError):
    """The request is not JSON (or not UTF-8): error type ``invalid_json``, code 2."""


def _decode(obj: Mapping[str, Any] | str | bytes) -> Any:
    if isinstance(obj, (str, bytes, bytearray)):
        try:
            return json.loads(obj)
        except json.JSONDecodeError as exc:
            raise InvalidJSONError(
                f"The request is not valid JSON: {exc.msg} at line {exc.lineno}, column "
                f"{exc.colno}.", hint="Send one JSON object in UTF-8.") from None
        except UnicodeDecodeError as exc:
            raise InvalidJSONError(
                f"The request is not UTF-8 text ({exc.reason} at byte {exc.start}).",
                hint="Send one JSON object in UTF-8.") from None
    return obj


def _check_version(request: Mapping[str, Any]) -> None:
    supported = ", ".join(f"{m}.x" for m in SUPPORTED_MAJOR_VERSIONS)
    hint = f'Send "schema_version": "{SCHEMA_VERSION}".'
    if "schema_version" not in request:
        raise RequestError("The request has no schema_version.",
                           [Problem(None, None, "schema_version", None,
                                    f"missing; supported versions: {supported}")],
                           ["schema_version"], hint=hint)
    version = request["schema_version"]
    parts = version.split(".") if isinstance(version, str) else []
    major = int(parts[0]) if len(parts) == 2 and all(p.isdigit() for p in parts) else None
    if major not in SUPPORTED_MAJOR_VERSIONS:
        raise RequestError(
            f"schema_version {version!r} is not supported; this library reads {supported} "
            f"(newest {SCHEMA_VERSION}).",
            [Problem(None, None, "schema_version", _short(version),
                     f"unsupported; supported versions: {supported}")],
            ["schema_version"], hint=hint)


def _parse(obj: Mapping[str, Any] | str | bytes, kind: _Kind) -> tuple[Scenario, dict[str, Any]]:
    request = _decode(obj)
    if not isinstance(request, Mapping):
        raise InvalidInputError(
            f"The {kind} request must be a JSON object, got {_got(request)}.",
            hint=f"Send an object with schema_version, accounts, reps (see "
                 f"{kind}_request.v1.json).")
    _check_version(request)
    issues: list[_Issue] = []
    _nonfinite_issues({k: v for k, v in request.items() if k not in ("accounts", "reps")},
                      (), issues)
    for error in _envelope_validator(kind).iter_errors(request):
        issues.extend(_schema_issues(error))
    account_check, rep_check = _record_checks(kind)
    records: dict[str, list[dict[str, Any]]] = {}
    for array, check in (("accounts", account_check), ("reps", rep_check)):
        if isinstance(request.get(array), (list, tuple)):
            records[array] = check.run(request[array], array, issues)
    _raise_issues(issues, kind)

    coord_system = request.get("coord_system", "wgs84")
    outside = bool(request.get("allow_outside_china", False))
    accounts = _read(read_accounts, records["accounts"], request["accounts"], "accounts",
                     account_check, "Account", coord_system=coord_system,
                     allow_outside_china=outside)
    reps = _read(read_reps, records["reps"], request["reps"], "reps", rep_check, "Rep",
                 coord_system=coord_system, allow_outside_china=outside)
    calendar = _calendar(request.get("calendar") or {})
    scenario = Scenario(accounts=accounts, reps=reps, calendar=calendar,
                        name=str(request.get("name") or f"{kind}-request"))
    options = dict(request.get("options") or {})
    _check_measures(options, accounts.frame, kind)
    return scenario, options


def _read(reader: Callable[..., Any], records: list[dict[str, Any]], original: Sequence[Any],
          array: str, check: _RecordCheck, noun: str, **kwargs: Any) -> Any:
    """Accounts or reps through their reader, with its messages and the JSON paths."""
    frame = pd.DataFrame.from_records(records)
    try:
        return reader(frame, **kwargs)
    except InvalidInputError as exc:
        paths: list[str | None] = []
        for p in exc.problems:
            if not isinstance(p.row, int) or not 0 <= p.row < len(original):
                paths.append(array)
                continue
            fields = p.field.split(",")
            if len(fields) == 1:
                paths.append(_path_text((array, p.row, check.original_key(original[p.row],
                                                                          fields[0]))))
            else:
                paths.append(_path_text((array, p.row)))
        raise RequestError(
            f"{array}: {exc.summary}", exc.problems, paths, kind=noun,
            hint=f"Fix the records above and send the request again (row N is {array}[N])."
        ) from None


def _calendar(spec: Mapping[str, Any]) -> Calendar:
    workdays = spec.get("workdays", "mon-fri")
    try:
        if not parse_days(workdays):
            raise ValueError("no working day in the week")
    except ValueError as exc:
        raise _calendar_error("calendar.workdays", workdays, str(exc)) from None
    try:
        return Calendar.weekly(int(spec.get("weeks", 4)), start=spec.get("start_date"),
                               workdays=workdays, holidays=spec.get("holidays", ()))
    except ValueError as exc:
        raise _calendar_error("calendar", spec, str(exc)) from None


def _calendar_error(path: str, value: Any, message: str) -> RequestError:
    return RequestError("The calendar cannot be built.",
                        [Problem(None, None, path, _short(value), message)], [path],
                        hint="Give workdays like 'mon-fri', and a start_date with holidays.")


def _check_measures(options: Mapping[str, Any], frame: pd.DataFrame, kind: _Kind) -> None:
    """Measure names and per-measure tolerances against the accounts, before any solving."""
    if "measures" in options:
        measures = tuple(options["measures"])
    else:
        from territory.alignment import partition
        from territory.planning import plan

        fn: Callable[..., Any] = plan if kind == "plan" else partition
        measures = tuple(inspect.signature(fn).parameters["measures"].default)
    numeric = sorted(str(c) for c in frame.columns
                     if pd.api.types.is_numeric_dtype(frame[c])
                     and not pd.api.types.is_bool_dtype(frame[c]))
    issues: list[_Issue] = []
    for i, m in enumerate(options.get("measures", ())):
        if m not in ("workload", "count") and m not in numeric:
            issues.append((("options", "measures", i), m,
                           f"unknown measure; use workload, count or a numeric account field "
                           f"({', '.join(numeric)})"))
    tolerance = options.get("tolerance")
    if isinstance(tolerance, Mapping):
        for key, value in tolerance.items():
            if key not in measures:
                issues.append((("options", "tolerance", key), value,
                               f"not one of the measures {list(measures)}"))
    _raise_issues(issues, kind)


# ----------------------------------------------------------------------------------------------
# results


def _clean(value: Any) -> Any:
    """A JSON-native value: numpy scalars unwrapped, NaN and infinities as None."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray, pd.Series, pd.Index)):
        return [_clean(v) for v in value]
    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def _records(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Rows of a frame as JSON-native dicts (column by column: fast for long schedules)."""
    if columns is not None:
        frame = frame[list(columns)]
    if len(frame) == 0:
        return []
    names = [str(c) for c in frame.columns]
    cols: list[list[Any]] = []
    for c in frame.columns:
        s = frame[c]
        dtype = s.dtype
        if isinstance(dtype, np.dtype) and dtype.kind in "biu":
            cols.append(s.to_numpy().tolist())
        elif isinstance(dtype, np.dtype) and dtype.kind == "f":
            arr = s.to_numpy(dtype=float)
            vals = arr.tolist()
            for i in np.flatnonzero(~np.isfinite(arr)):
                vals[i] = None
            cols.append(vals)
        else:
            cols.append([_clean(v) for v in s.to_numpy(dtype=object)])
    return [dict(zip(names, row, strict=True)) for row in zip(*cols, strict=True)]


def _hours(series: pd.Series) -> dict[str, float | None]:
    return {str(k): _clean(v) for k, v in series.items()}


def _territory_part(tp: TerritoryPlan) -> dict[str, Any]:
    """What partition and plan results share: balance, territories, assignment, moves."""
    balance = []
    for m, tol in zip(tp.measure_names, tp.tolerance, strict=True):
        dev = _clean(tp.territories[f"{m}_dev"].abs().max())
        balance.append({"measure": str(m), "tolerance": float(tol), "max_deviation": dev,
                        "within_tolerance": dev is not None and dev <= float(tol) + 1e-9})
    frame = tp.assignment_frame()
    assigned = tp.territory >= 0
    return {
        "balance": balance,
        "territories": _records(tp.territories),
        "assignment": _records(frame.loc[assigned], ("account_id", "territory", "rep_id")),
        "unassigned": _records(tp.unassigned, ("account_id", "reason")),
        "moved": _records(tp.moved, ("account_id", "from_rep", "to_rep", "reason")),
        "violations": [str(v) for v in tp.violations],
        "notes": [str(n) for n in tp.notes],
    }


def partition_result_to_json(tp: TerritoryPlan) -> dict[str, Any]:
    """A ``TerritoryPlan`` as a ``partition_result.v1.json`` message.

    ``code`` is the exit code a caller should end with: 0 when the plan is feasible, 3 when
    not (the plan is still the best found and is returned in full).

    Returns
    -------
    dict
        JSON-native (``json.dumps(result, allow_nan=False)`` works).
    """
    part = _territory_part(tp)
    t = tp.territories
    summary: dict[str, Any] = {
        "accounts": len(tp.account_ids), "territories": tp.n_territories,
        "feasible": bool(tp.feasible), "objective": _clean(tp.objective),
        "objective_name": str(tp.objective_name), "lower_bound": _clean(tp.lower_bound),
        "lower_bound_kind": tp.lower_bound_kind, "accounts_moved": len(tp.moved),
        "unassigned": len(tp.unassigned),
        "contiguous_territories": int(t["contiguous"].sum()),
        "sum_distance_km": _clean(t["sum_distance_km"].sum()),
        "runtime_s": float(tp.runtime_s),
    }
    for b in part["balance"]:
        dev = b["max_deviation"]
        summary[f"{b['measure']}_max_dev_pct"] = None if dev is None else 100 * dev
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "partition_result",
        "code": 0 if tp.feasible else 3,
        "name": tp.scenario.name if tp.scenario is not None else "",
        "feasible": bool(tp.feasible),
        "within_tolerance": all(b["within_tolerance"] for b in part["balance"]),
        "summary": summary,
        **part,
        "parameters": _clean(dict(tp.parameters)),
        "seed": int(tp.seed),
        "runtime_s": float(tp.runtime_s),
    }


def plan_result_to_json(plan: NationalPlan) -> dict[str, Any]:
    """A ``NationalPlan`` as a ``plan_result.v1.json`` message.

    Every account is either in ``assignment`` or in ``unassigned`` (with its reason); an
    assigned account whose rep could not be routed is also in ``unrouted``. ``code`` is the
    exit code a caller should end with: 0 when the territories are feasible and every rep's
    simulated workload is within ``workload_tolerance``, 3 when not (the plan is still
    returned in full), 1 when some rep's routing failed (``failed_reps``).

    Returns
    -------
    dict
        JSON-native (``json.dumps(result, allow_nan=False)`` works).
    """
    tp, routes = plan.territories, plan.routes
    part = _territory_part(tp)
    rep_of = {a["account_id"]: a["rep_id"] for a in part["assignment"]}
    listed = {u["account_id"] for u in part["unassigned"]}
    unrouted = []
    for row in _records(routes.unassigned, ("account_id", "reason")):
        if row["account_id"] in rep_of:
            unrouted.append({"account_id": row["account_id"],
                             "rep_id": rep_of[row["account_id"]], "reason": row["reason"]})
        elif row["account_id"] not in listed:
            listed.add(row["account_id"])
            part["unassigned"].append(row)
    schedule = _records(routes.schedule, _SCHEDULE_COLUMNS)
    for visit in schedule:
        visit["date"] = visit["date"] or None  # "" when the calendar has no dates
    feasible = bool(tp.feasible)
    within = bool(plan.within_tolerance)
    code = 1 if routes.failed else (0 if feasible and within else 3)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "plan_result",
        "code": code,
        "name": str(plan.scenario.name),
        "feasible": feasible,
        "within_tolerance": within,
        "workload_tolerance": float(plan.workload_tolerance),
        "summary": _records(plan.summary_table())[0],
        **part,
        "schedule": schedule,
        "dropped": _records(routes.dropped, _DROPPED_COLUMNS),
        "unrouted": unrouted,
        "failed_reps": [{"rep_id": str(r), "error": str(e)} for r, e in routes.failed.items()],
        "reps": _records(routes.reps),
        "rounds": [_clean(r.to_dict()) for r in plan.rounds],
        "simulated_workload_hours": _hours(plan.simulated_h),
        "estimated_workload_hours": _hours(plan.estimated_h),
        "parameters": _clean(dict(plan.parameters)),
        "seed": int(plan.seed),
        "runtime_s": float(plan.runtime_s),
    }


# ----------------------------------------------------------------------------------------------
# errors


def _classify(exc: BaseException) -> tuple[int, str]:
    if isinstance(exc, InvalidJSONError):
        return 2, "invalid_json"
    if isinstance(exc, InvalidInputError):
        return 2, "invalid_input"
    if isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError)):
        return 2, "invalid_json"
    if isinstance(exc, jsonschema.ValidationError):
        return 2, "invalid_input"
    if isinstance(exc, TerritoryError) and isinstance(exc, ValueError):
        return 2, "invalid_input"
    if isinstance(exc, InfeasibleError):
        return 3, "infeasible"
    if isinstance(exc, NoSolutionError):
        return 3, "no_solution"
    if isinstance(exc, SolverError):
        return 1, "solver_error"
    return 1, "internal"


def error_to_json(exc: BaseException) -> tuple[dict[str, Any], int]:
    """The ``error.v1.json`` message for an exception, and the exit code.

    Codes: 2 bad input (``InvalidInputError`` and other input errors of the library, JSON that
    cannot be decoded), 3 no feasible plan (``InfeasibleError``, ``NoSolutionError``), 1
    anything else (an internal error: the message says so). An ``InvalidInputError``'s
    problems (row, id, field, value, message, and the JSON path for a ``RequestError``) are
    listed in ``details.problems``.

    Returns
    -------
    (dict, int)
        The message (JSON-native) and the exit code, which is also ``error.code``.
    """
    code, kind = _classify(exc)
    details: dict[str, Any] = {"exception": type(exc).__name__}
    message = str(exc)
    if isinstance(exc, InvalidInputError):
        paths = getattr(exc, "paths", ())
        details["summary"] = exc.summary
        details["hint"] = exc.hint
        details["problems"] = [
            {"path": paths[i] if i < len(paths) else None, "row": _clean(p.row),
             "id": None if p.id is None else str(p.id), "field": str(p.field),
             "value": _clean(_short(p.value)), "message": str(p.message)}
            for i, p in enumerate(exc.problems)]
    elif isinstance(exc, json.JSONDecodeError):
        details["line"], details["column"] = exc.lineno, exc.colno
        message = f"The request is not valid JSON: {exc.msg} at line {exc.lineno}, column " \
                  f"{exc.colno}."
    elif kind == "internal":
        message = f"Internal error ({type(exc).__name__}: {exc}); please report it with the " \
                  "request."
    body = {"schema_version": SCHEMA_VERSION,
            "error": {"code": code, "type": kind, "message": message, "details": details}}
    return body, code
