"""Declarative rules: what an event does to a lead.

Rules are YAML (the shipped `default_rules.yaml`, then `$DATAFACTORY_HOME/rules/*.yaml`; a user's rule
with a shipped rule's name replaces it). Each rule names the event types it reacts to, a condition in
CEL (Common Expression Language, evaluated by cel-python: no Python eval) over the event and the lead's
current values, and its actions in order. Nothing here writes the store: `events.apply` does, in one
transaction with the events' status.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import celpy
import yaml

from datafactory_pipelines.events.types import EVENT_TYPES
from datafactory_pipelines.fields import EDITABLE_FIELDS

ACTION_PARAMS: dict[str, dict[str, tuple[str, bool]]] = {
    # action -> parameter -> (kind, required); kind: "expr" (CEL), "channel", "field", "fields", "bool"
    "set": {"field": ("field", True), "value": ("expr", True), "respect_policy": ("bool", False)},
    "copy_fields": {"fields": ("fields", True), "respect_policy": ("bool", False)},
    "add_alternate": {"channel": ("channel", True), "value": ("expr", True)},
    "make_primary": {"channel": ("channel", True), "value": ("expr", True)},
    "mark_invalid": {"channel": ("channel", True), "value": ("expr", True), "reason": ("expr", False),
                     "status": ("expr", False)},
    "queue_conflict": {"field": ("field", True), "value": ("expr", True)},
    "touch_source": {"source": ("expr", True)},
    "assign_owner": {"owner": ("expr", True)},
    "notify": {"message": ("expr", False)},
}
SETTABLE_FIELDS = tuple(EDITABLE_FIELDS)  # what `lead set` may change, a rule may change
CHANNELS = ("mobile", "email")
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_CHAIN = re.compile(r"(?<![\w.])(?:event|lead|trusted_sources)(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_ENV = celpy.Environment()


class RuleError(ValueError):
    """A rule file that cannot be used: names the file and line of each problem (`problems`, one a line)."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems) if problems else [message]


class Expression:
    """A compiled CEL expression. A bare member path (event.data.new_mobile) is looked up directly, with
    CEL's meaning (a missing key is an error); anything else runs in cel-python's interpreter."""

    def __init__(self, text: str) -> None:
        self.text = text.strip()
        self.literal_true = self.text == "true"
        self.path = self.text.split(".") if _PATH.match(self.text) and self.text not in ("true", "false") else None
        self.program = None if self.literal_true or self.path else _ENV.program(_ENV.compile(self.text))
        # CEL is pure: the result depends only on the values the expression reads, so results are kept
        # per distinct tuple of those values (the member chains it names) and most events reuse one
        self.reads = sorted({m.group(0) for m in _CHAIN.finditer(self.text)})
        self.results: dict[tuple[str, ...], Any] = {}

    def evaluate(self, plain: dict[str, Any], cel: dict[str, Any] | Callable[[], dict[str, Any]]) -> Any:
        """`plain`: the activation as JSON values; `cel`: the same as CEL values, or a function making
        them (only needed when the interpreter runs)."""
        if self.literal_true:
            return True
        if self.path:
            value: Any = plain
            for part in self.path:
                if not isinstance(value, dict) or part not in value:
                    raise RuleError(f"{self.text}: no such member {part!r}")
                value = value[part]
            return value
        key = tuple(json.dumps(_member(plain, chain.split(".")), sort_keys=True, ensure_ascii=False)
                    for chain in self.reads)
        if key in self.results:
            return self.results[key]
        try:
            result = self.program.evaluate(cel() if callable(cel) else cel)
        except celpy.CELEvalError as err:
            result = err
        if isinstance(result, celpy.CELEvalError):
            raise RuleError(f"{self.text}: {result.args[0] if result.args else result}")
        if len(self.results) > 50_000:
            self.results.clear()
        self.results[key] = _plain(result)
        return self.results[key]


_MISSING = "\x00missing"


def _member(plain: dict[str, Any], parts: list[str]) -> Any:
    """The value a member chain reaches; where the chain goes on past a non-map (`lead.mobile.size`,
    a method), the value reached so far; a missing key is a value of its own (`has()` sees it)."""
    value: Any = plain
    for part in parts:
        if not isinstance(value, dict):
            return value
        if part not in value:
            return [_MISSING, sorted(value)]
        value = value[part]
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, celpy.celtypes.BoolType):
        return bool(value)
    if isinstance(value, celpy.celtypes.StringType):
        return str(value)
    if isinstance(value, (celpy.celtypes.IntType, celpy.celtypes.UintType)):
        return int(value)
    if isinstance(value, celpy.celtypes.DoubleType):
        return float(value)
    if isinstance(value, celpy.celtypes.ListType):
        return [_plain(v) for v in value]
    if isinstance(value, celpy.celtypes.MapType):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


@dataclass
class Action:
    kind: str
    params: dict[str, Any]  # literals as given; expressions compiled


@dataclass
class Rule:
    name: str
    on: tuple[str, ...]
    when: Expression
    actions: list[Action]
    description: str = ""
    origin: str = ""  # file:line


@dataclass
class RuleSet:
    rules: list[Rule]
    trusted_sources: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def for_type(self, event_type: str) -> list[Rule]:
        return [r for r in self.rules if event_type in r.on]


class _LineLoader(yaml.SafeLoader):
    """Keeps each mapping's line, so an error can name it."""


def _mapping_with_line(loader: _LineLoader, node: yaml.MappingNode) -> dict:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    mapping["__lines__"] = {key.value: key.start_mark.line + 1 for key, _ in node.value
                            if isinstance(key, yaml.ScalarNode)}
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_line)
# YAML 1.2 booleans: `on:` is a key here, not True (YAML 1.1 reads on/off/yes/no as booleans)
_LineLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_LineLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                  list("tTfF"))


def _compile(text: object, where: str) -> Expression:
    if isinstance(text, bool):
        text = "true" if text else "false"
    if not isinstance(text, str) or not text.strip():
        raise RuleError(f"{where}: expected a CEL expression, got {text!r}")
    try:
        return Expression(text)
    except celpy.CELParseError as err:
        line, column = getattr(err, "line", None), getattr(err, "column", None)
        at = f" at line {line}, column {column} of the expression" if line and column else ""
        pointer = _caret(text, line, column)
        raise RuleError(f"{where}: CEL syntax error{at} in {text!r}{pointer}") from err


def _caret(text: str, line: int | None, column: int | None) -> str:
    """The expression's line with a caret under the column the parser stopped at (for a person to see)."""
    lines = text.splitlines()
    if not line or not column or not 0 < line <= len(lines):
        return ""
    return f"\n    {lines[line - 1]}\n    {' ' * (column - 1)}^"


def _parse_action(raw: object, where: str) -> Action:
    raw = {k: v for k, v in raw.items() if k != "__lines__"} if isinstance(raw, dict) else raw
    if not isinstance(raw, dict) or len([k for k in raw if k != "__line__"]) != 1:
        raise RuleError(f"{where}: an action is one `name: {{parameters}}` entry, got {raw!r}")
    where = f"{where.rsplit(':', 1)[0]}:{raw.get('__line__', where.rsplit(':', 1)[-1])}"
    kind = next(k for k in raw if k != "__line__")
    if kind not in ACTION_PARAMS:
        raise RuleError(f"{where}: unknown action {kind!r} (known: {', '.join(ACTION_PARAMS)})")
    given = raw[kind] or {}
    if not isinstance(given, dict):
        raise RuleError(f"{where}: {kind}: expected a mapping of parameters, got {given!r}")
    given = {k: v for k, v in given.items() if k not in ("__line__", "__lines__")}
    spec = ACTION_PARAMS[kind]
    unknown = set(given) - set(spec)
    if unknown:
        raise RuleError(f"{where}: {kind}: unknown parameter(s) {', '.join(sorted(unknown))} "
                        f"(known: {', '.join(spec)})")
    params: dict[str, Any] = {}
    for name, (kind_of, required) in spec.items():
        if name not in given:
            if required:
                raise RuleError(f"{where}: {kind}: missing parameter {name!r}")
            continue
        value = given[name]
        if kind_of == "expr":
            params[name] = _compile(value, f"{where}: {kind}.{name}")
        elif kind_of == "channel":
            if value not in CHANNELS:
                raise RuleError(f"{where}: {kind}.channel must be one of {', '.join(CHANNELS)}, got {value!r}")
            params[name] = value
        elif kind_of == "field":
            if value not in SETTABLE_FIELDS:
                raise RuleError(f"{where}: {kind}.field {value!r} is not a lead field "
                                f"({', '.join(SETTABLE_FIELDS)})")
            params[name] = value
        elif kind_of == "fields":
            if not isinstance(value, list) or not value or any(v not in SETTABLE_FIELDS for v in value):
                raise RuleError(f"{where}: {kind}.fields must list lead fields ({', '.join(SETTABLE_FIELDS)}), "
                                f"got {value!r}")
            params[name] = list(value)
        else:
            if not isinstance(value, bool):
                raise RuleError(f"{where}: {kind}.{name} must be true or false, got {value!r}")
            params[name] = value
    return Action(kind, params)


def parse_rules(text: str, file_name: str) -> tuple[list[Rule], list[str]]:
    """The rules and trusted sources of one YAML text; RuleError names the file and line of a problem."""
    try:
        document = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise RuleError(f"{file_name}{line}: not valid YAML: {getattr(err, 'problem', err)}") from err
    if document is None:
        return [], []
    if isinstance(document, dict):
        document.pop("__lines__", None)
    if not isinstance(document, dict) or not isinstance(document.get("rules", []), list):
        raise RuleError(f"{file_name}:1: expected a mapping with a `rules:` list")
    trusted = document.get("trusted_sources") or []
    if not isinstance(trusted, list) or not all(isinstance(s, str) for s in trusted):
        raise RuleError(f"{file_name}:{document.get('__line__', 1)}: trusted_sources must be a list of strings")
    rules = []
    names: set[str] = set()
    problems: list[str] = []  # every problem of the file, so that one `rules check` names them all
    for raw in document.get("rules", []):
        rule = _collecting(problems, _parse_rule, raw, file_name, names)
        if rule is not None:
            rules.append(rule)
    if problems:
        raise RuleError("\n".join(problems), problems)
    return rules, list(trusted)


def _collecting(problems: list[str], parse: Any, *args: Any) -> Any:
    """parse(*args), or None with its RuleError's problems added to `problems`."""
    try:
        return parse(*args)
    except RuleError as err:
        problems.extend(err.problems)
        return None


def _parse_rule(raw: object, file_name: str, names: set[str]) -> Rule:
    line = raw.get("__line__", 1) if isinstance(raw, dict) else 1
    where = f"{file_name}:{line}"
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: a rule is a mapping with name, on, when, actions")
    lines = raw.get("__lines__", {})
    problems: list[str] = []
    unknown = set(raw) - {"name", "description", "on", "when", "actions", "__line__", "__lines__"}
    if unknown:
        problems.append(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(f"{where}: a rule needs a name")
        name = f"#{line}"
    elif name in names:
        problems.append(f"{where}: rule {name!r} is defined twice in this file")
    names.add(name)
    on = raw.get("on")
    on = [on] if isinstance(on, str) else on
    if not on or not isinstance(on, list) or any(t not in EVENT_TYPES for t in on):
        problems.append(f"{file_name}:{lines.get('on', line)}: rule {name!r}: `on` must name event types "
                        f"({', '.join(EVENT_TYPES)}), got {raw.get('on')!r}")
    when = _collecting(problems, _compile, raw.get("when", "true"),
                       f"{file_name}:{lines.get('when', line)}: rule {name!r}: when")
    actions_raw = raw.get("actions")
    actions: list[Action] = []
    if not isinstance(actions_raw, list) or not actions_raw:
        problems.append(f"{where}: rule {name!r} needs a list of actions")
    else:
        actions = [a for a in (_collecting(problems, _parse_action, a, f"{file_name}:{line}") for a in actions_raw)
                   if a is not None]
    if problems:
        raise RuleError("\n".join(problems), problems)
    return Rule(name, tuple(on), when, actions, str(raw.get("description", "")), where)


def rule_files(home: Path | None) -> list[Path]:
    shipped = Path(str(resources.files("datafactory_pipelines.rules").joinpath("default_rules.yaml")))
    own = sorted((home / "rules").glob("*.y*ml")) if home and (home / "rules").exists() else []
    return [shipped, *own]


def load_rules(home: Path | None = None) -> RuleSet:
    """The shipped rules, then the user's; a user's rule replaces a shipped one of the same name.
    Raises RuleError when any file has a problem: events are never judged by half a rule set."""
    return _load(rule_files(home), skip_invalid=False)[0]


def load_valid_rules(home: Path | None = None) -> tuple[RuleSet, list[str]]:
    """The rules of every valid file, and the problems of the files left out (what `rules list` shows)."""
    return _load(rule_files(home), skip_invalid=True)


def _load(files: list[Path], skip_invalid: bool) -> tuple[RuleSet, list[str]]:
    by_name: dict[str, Rule] = {}
    trusted: list[str] = []
    problems: list[str] = []
    loaded = []
    for path in files:
        try:
            rules, sources = parse_rules(path.read_text(encoding="utf-8"), str(path))
        except RuleError as err:
            if not skip_invalid:
                raise
            problems += err.problems
            continue
        loaded.append(path)
        trusted += sources
        for rule in rules:
            by_name.pop(rule.name, None)
            by_name[rule.name] = rule
    trusted += [s.strip() for s in os.environ.get("DATAFACTORY_TRUSTED_SOURCES", "").split(",") if s.strip()]
    return RuleSet(list(by_name.values()), trusted, [str(p) for p in loaded]), problems


def check_rule_files(home: Path | None = None) -> list[str]:
    """Every problem in every rule file (file:line: what), or none."""
    problems = []
    for path in rule_files(home):
        try:
            parse_rules(path.read_text(encoding="utf-8"), str(path))
        except RuleError as err:
            problems.extend(err.problems)
    return problems
