"""Search spaces: parse, validate and sample hyperparameter ranges for ``textclass.search``.

A space maps a parameter name to one of

- a list of choices: ``[32, 64, 128]``  (CLI: ``-s num_filters=32,64,128``)
- a range: ``{"low": 1e-4, "high": 1e-2, "log": true, "int": false}``
  (CLI: ``-s learning_rate=1e-4..1e-2:log``, ``-s units=8..64:int``)
- a single value, which fixes the parameter instead of searching it (CLI: ``-s embedding_dim=50``).

Every registry model declares a default space (``ModelSpec.space``); user entries, from the CLI or
a YAML/TOML file, replace the default entry of the same name and add new ones. Everything is
checked against the model's hyperparameters before any training starts, so a typo costs a second,
not an hour: unknown names get the closest match and the allowed list; values must have the type
of the parameter's default; ranges must be non-empty (and positive on a log scale).
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textclass.errors import ParameterError, did_you_mean

#: Short names users type, mapped to the estimator's own.
ALIASES = {"lr": "learning_rate"}

#: TextClassifier arguments that are not hyperparameters of a trial.
_NOT_SEARCHABLE = {"model", "random_state", "verbose"}

#: Types of parameters whose default is None ("no limit" / "the optimizer's own"): None stays allowed.
_TYPE_HINTS = {"learning_rate": 1e-3, "max_features": 1, "num_words": 1, "maxlen": 1}

#: TextClassifier arguments that only mean something for Keras models.
_KERAS_ONLY = {"epochs", "batch_size", "optimizer", "learning_rate", "validation_split", "early_stopping", "patience"}
#: The TextClassifier training arguments each kind of model uses (PyTorch models train with AdamW).
_TRAINING_BY_KIND = {"keras": _KERAS_ONLY, "torch": _KERAS_ONLY - {"optimizer"}, "sklearn": set()}


@dataclass(frozen=True)
class Choice:
    """Pick one of ``values``."""

    values: tuple[Any, ...]


@dataclass(frozen=True)
class Range:
    """A number between ``low`` and ``high`` (inclusive); integers if ``int``; log-uniform if ``log``."""

    low: float
    high: float
    log: bool = False
    int: bool = False


@dataclass(frozen=True)
class SearchSpace:
    """A validated space: the searched parameters, and the ones fixed to a single value."""

    model: str
    params: dict[str, Choice | Range]
    fixed: dict[str, Any] = field(default_factory=dict)

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Sample one configuration through an Optuna trial (fixed values are not included)."""
        out: dict[str, Any] = {}
        for name, dist in self.params.items():
            if isinstance(dist, Choice):
                # Optuna stores only None/bool/int/float/str choices: encode anything else as JSON.
                encoded = [_encode(v) for v in dist.values]
                out[name] = _decode(trial.suggest_categorical(name, encoded), dist.values)
            elif dist.int:
                out[name] = trial.suggest_int(name, int(dist.low), int(dist.high), log=dist.log)
            else:
                out[name] = trial.suggest_float(name, dist.low, dist.high, log=dist.log)
        return out

    def decode(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Turn a trial's stored params back into the values given to the estimator."""
        out = {}
        for name, value in params.items():
            dist = self.params.get(name)
            out[name] = _decode(value, dist.values) if isinstance(dist, Choice) else value
        return out

    def grid(self) -> dict[str, list[Any]]:
        """The full grid for grid search; a float range has no grid and is refused."""
        grid: dict[str, list[Any]] = {}
        for name, dist in self.params.items():
            if isinstance(dist, Choice):
                grid[name] = [_encode(v) for v in dist.values]
            elif dist.int and not dist.log and dist.high - dist.low <= 1000:
                grid[name] = list(range(int(dist.low), int(dist.high) + 1))
            else:
                raise ParameterError(
                    f"search space: {name!r} is a continuous range ({describe(dist)}); the grid "
                    f"sampler needs a list of values, e.g. -s {name}=a,b,c, or use --sampler random/tpe"
                )
        return grid

    def grid_size(self) -> int:
        return math.prod(len(v) for v in self.grid().values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, stored with the study so a resumed search can check it is the same."""
        return {
            "model": self.model,
            "params": {k: describe(v) for k, v in sorted(self.params.items())},
            "fixed": {k: _encode(v) for k, v in sorted(self.fixed.items())},
        }


def describe(dist: Choice | Range) -> str:
    """The CLI spelling of a distribution: ``32,64,128`` or ``0.0001..0.01:log``."""
    if isinstance(dist, Choice):
        return ",".join(str(_encode(v)) for v in dist.values)
    flags = (":log" if dist.log else "") + (":int" if dist.int else "")
    fmt = (lambda v: str(int(v))) if dist.int else repr
    return f"{fmt(dist.low)}..{fmt(dist.high)}{flags}"


def parse_assignments(items: list[str] | None) -> dict[str, Any]:
    """Parse CLI ``-s name=spec`` options into raw space entries (validated later)."""
    entries: dict[str, Any] = {}
    for item in items or []:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip() or not raw.strip():
            raise ParameterError(
                f"-s {item!r}: expected name=values, e.g. -s num_filters=32,64,128 or "
                "-s learning_rate=1e-4..1e-2:log"
            )
        entries[name.strip()] = _parse_spec(raw.strip(), where=f"-s {item!r}")
    return entries


def load_space_file(path: str | Path) -> dict[str, Any]:
    """Read raw space entries from a YAML (``.yaml``/``.yml``) or TOML (``.toml``) file."""
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"{path}: search-space file not found")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            raise ParameterError(f"{path}: expected a .yaml, .yml or .toml search-space file")
    except (tomllib.TOMLDecodeError, ValueError) as e:
        if isinstance(e, ParameterError):
            raise
        raise ParameterError(f"{path}: not valid TOML: {e}") from None
    except Exception as e:  # yaml.YAMLError carries the line and column in its message
        raise ParameterError(f"{path}: not valid YAML: {' '.join(str(e).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParameterError(f"{path}: expected a mapping of parameter name to values or range")
    return {str(k): (_parse_spec(v, where=f"{path}: {k!r}") if isinstance(v, str) else v) for k, v in data.items()}


def allowed_params(spec: Any) -> dict[str, Any]:
    """Every name a trial may set for a registry model, with its default: the model's own
    hyperparameters plus the TextClassifier training arguments that apply to its kind."""
    import inspect

    from textclass.estimator import TextClassifier

    train = {
        name: p.default
        for name, p in inspect.signature(TextClassifier.__init__).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in _NOT_SEARCHABLE
    }
    train = {k: v for k, v in train.items() if k not in _KERAS_ONLY or k in _TRAINING_BY_KIND[spec.kind]}
    return {**train, **spec.defaults}


def model_space(
    model: str, overrides: Mapping[str, Any] | None = None, fixed: Mapping[str, Any] | None = None
) -> SearchSpace:
    """The registry model's default space with user ``overrides``, validated (see ``build_space``)."""
    from textclass.models import get_model

    spec = get_model(model)
    return build_space(spec.name, allowed_params(spec), spec.space, overrides, fixed)


def build_space(
    model: str,
    defaults: Mapping[str, Any],
    default_space: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    fixed: Mapping[str, Any] | None = None,
) -> SearchSpace:
    """Merge ``default_space`` with user ``overrides`` and check everything against ``defaults``.

    ``defaults`` maps every allowed hyperparameter to its default value (which gives its type);
    ``fixed`` holds plain values (``-p``, ``--epochs``) that are set but not searched.
    """
    allowed = dict(defaults)
    fixed = {_canonical(name, allowed, model): value for name, value in (fixed or {}).items()}
    # A fixed value replaces the default space's entry; only the user's own entries can clash.
    raw: dict[str, Any] = {k: v for k, v in (default_space or {}).items() if k not in fixed}
    for name, value in (overrides or {}).items():
        raw[_canonical(name, allowed, model)] = value
    params: dict[str, Choice | Range] = {}
    fixed_values: dict[str, Any] = {}
    for name, entry in raw.items():
        name = _canonical(name, allowed, model)
        dist = _to_dist(name, entry, allowed[name])
        if isinstance(dist, Choice) and len(dist.values) == 1:
            fixed_values[name] = dist.values[0]
        else:
            params[name] = dist
    for name, value in fixed.items():
        if name in params:
            raise ParameterError(
                f"{name!r} is both fixed (to {value!r}) and searched ({describe(params[name])}); "
                f"drop one, e.g. fix it with -s {name}={_encode(value)}"
            )
        fixed_values[name] = _check_value(name, value, allowed[name], where="fixed value")
    return SearchSpace(model=model, params=params, fixed=fixed_values)


def _canonical(name: str, allowed: Mapping[str, Any], model: str) -> str:
    name = ALIASES.get(name, name)
    if name not in allowed:
        names = ", ".join(sorted(allowed))
        raise ParameterError(
            f"unknown hyperparameter {name!r} for model {model!r}{did_you_mean(name, allowed)}; "
            f"allowed: {names}"
        )
    return name


def _to_dist(name: str, entry: Any, default: Any) -> Choice | Range:
    if isinstance(entry, (Choice, Range)):
        dist = entry
    elif isinstance(entry, Mapping):
        unknown = set(entry) - {"low", "high", "log", "int"}
        if unknown or not {"low", "high"} <= set(entry):
            raise ParameterError(
                f"{name!r}: a range needs keys low and high (optional: log, int); got {sorted(entry)}"
            )
        low, high = (_number(name, entry[k]) for k in ("low", "high"))
        dist = Range(low, high, log=bool(entry.get("log", False)), int=bool(entry.get("int", False)))
    elif isinstance(entry, (list, tuple)):
        dist = Choice(tuple(entry))
    else:
        dist = Choice((entry,))
    if isinstance(dist, Choice):
        if not dist.values:
            raise ParameterError(f"{name!r}: empty list of values")
        return Choice(tuple(_check_value(name, v, default) for v in dist.values))
    return _check_range(name, dist, default)


def _check_range(name: str, dist: Range, default: Any) -> Range:
    default = _TYPE_HINTS.get(name) if default is None else default
    kind = _kind(default)
    if kind not in ("int", "float", "any"):
        raise ParameterError(
            f"{name!r}: a numeric range ({describe(dist)}) for a {kind} parameter; "
            f"give a list of values instead (default: {default!r})"
        )
    as_int = dist.int or (kind == "int" and float(dist.low).is_integer() and float(dist.high).is_integer())
    if kind == "int" and not as_int:
        raise ParameterError(f"{name!r}: expected whole numbers for an integer parameter, got {describe(dist)}")
    if as_int and not (float(dist.low).is_integer() and float(dist.high).is_integer()):
        raise ParameterError(f"{name!r}: an :int range needs whole-number bounds, got {describe(dist)}")
    if not dist.low < dist.high:
        raise ParameterError(f"{name!r}: empty range {describe(dist)}: low must be below high")
    if dist.log and dist.low <= 0:
        raise ParameterError(f"{name!r}: a log range needs low > 0, got {describe(dist)}")
    problem = _interval_error(name, dist.low, dist.high, default)
    if problem:
        raise ParameterError(f"{name!r}: {problem} (default {default!r}), got {describe(dist)}")
    if as_int:
        return Range(int(dist.low), int(dist.high), log=dist.log, int=True)
    return Range(float(dist.low), float(dist.high), log=dist.log)


def _kind(default: Any) -> str:
    if default is None:
        return "any"
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    if isinstance(default, str):
        return "str"
    if isinstance(default, (list, tuple)):
        return "sequence"
    return "any"


#: Allowed intervals (low, high, high inclusive) for parameters that are not sizes.
_INTERVALS = {
    "dropout": (0.0, 1.0, False),
    "validation_split": (0.0, 1.0, False),
    "threshold": (0.0, 1.0, True),
}

#: Words a numeric parameter also takes, as a value of a list (``threshold=[0.3, 0.5, "auto"]``).
_WORDS = {"threshold": ("auto",)}

#: Float parameters that must be > 0; every integer with a positive default (a size, a count) too.
_POSITIVE = {"learning_rate", "C", "alpha"}


def _interval_error(name: str, low: float, high: float, default: Any) -> str | None:
    """Why the values low..high are out of bounds for ``name``, or None."""
    if name in _INTERVALS:
        lo, hi, hi_inclusive = _INTERVALS[name]
        if low < lo or high > hi or (high == hi and not hi_inclusive):
            return f"must be in [{lo}, {hi}{']' if hi_inclusive else ')'}"
    elif (name in _POSITIVE or (_kind(default) == "int" and default > 0)) and low <= 0:
        return "must be > 0"
    return None


def _check_value(name: str, value: Any, default: Any, where: str = "value") -> Any:
    if default is None:
        if value is None:
            return value
        default = _TYPE_HINTS.get(name)
    kind = _kind(default)
    if isinstance(value, str) and value in _WORDS.get(name, ()):
        return value
    expected = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a string"}
    words = "".join(f" or {w!r}" for w in _WORDS.get(name, ()))
    bad = ParameterError(f"{name!r}: {where} {value!r} is not {expected.get(kind, 'a list')}{words} (default: {default!r})")
    if kind == "bool":
        if not isinstance(value, bool):
            raise bad
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
            raise bad
        value = int(value)
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad
        value = float(value)
    elif kind == "str":
        if not isinstance(value, str):
            raise bad
    elif kind == "sequence":
        if not isinstance(value, (list, tuple)):
            raise bad
        value = type(default)(value)
    problem = _interval_error(name, value, value, default) if kind in ("int", "float") else None
    if problem:
        raise ParameterError(f"{name!r}: {where} {value!r} {problem} (default: {default!r})")
    return value


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ParameterError(f"{name!r}: range bound {value!r} is not a number")
    try:
        return float(value)  # YAML reads 1e-4 (no dot) as a string: accept it
    except (TypeError, ValueError):
        raise ParameterError(f"{name!r}: range bound {value!r} is not a number") from None


def _parse_spec(raw: str, *, where: str) -> Any:
    """``a,b,c`` -> list; ``lo..hi[:log][:int]`` -> range dict; a single value -> that value."""
    if ".." in raw:
        low, _, rest = raw.partition("..")
        high, *flags = rest.split(":")
        flags = [f.strip().lower() for f in flags]
        unknown = [f for f in flags if f not in ("log", "int")]
        if unknown:
            raise ParameterError(f"{where}: unknown range flag {unknown[0]!r}; expected :log and/or :int")
        try:
            lo, hi = float(low), float(high)
        except ValueError:
            raise ParameterError(f"{where}: expected a range low..high of numbers, e.g. 1e-4..1e-2:log") from None
        return {"low": lo, "high": hi, "log": "log" in flags, "int": "int" in flags}
    values = [_scalar(v) for v in _split_top(raw)]
    return values if len(values) > 1 or raw.rstrip().endswith(",") else values[0]


def _split_top(raw: str) -> list[str]:
    """Split on commas outside brackets, so ``[1,1],[1,2]`` is two values."""
    parts, depth, cur = [], 0, ""
    for ch in raw:
        depth += ch in "[(" and 1 or 0
        depth -= ch in "])" and 1 or 0
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def _scalar(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    if text[:1] in "[(":
        try:
            return tuple(json.loads(text.replace("(", "[").replace(")", "]")))
        except ValueError:
            pass
    return text.strip("'\"")


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(list(value) if isinstance(value, tuple) else value)


def _decode(stored: Any, choices: tuple[Any, ...]) -> Any:
    for choice in choices:
        if _encode(choice) == stored:
            return choice
    return stored
