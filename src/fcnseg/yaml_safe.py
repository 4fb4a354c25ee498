"""YAML for untrusted text: safe types only, aliases and nesting bounded, every failure one ConfigError.

``yaml.safe_load`` refuses ``!!python`` tags but still expands an alias bomb ("billion laughs": a few
hundred bytes whose aliases multiply into billions of nodes once walked) and recurses without bound on
deeply nested input. :func:`load_yaml` counts aliases and depth while composing and stops early.
"""

from __future__ import annotations

from typing import Any

import yaml

from .errors import ConfigError

__all__ = ["MAX_ALIASES", "MAX_DEPTH", "MAX_NODES", "load_yaml"]

#: a config uses an anchor a handful of times at most
MAX_ALIASES = 64
#: fcnseg's configs are 3 levels deep; data.options may nest a little more
MAX_DEPTH = 24
#: nodes once every alias is expanded (a config has a few hundred)
MAX_NODES = 100_000


class _BoundedLoader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _Refused(f"more than {MAX_ALIASES} aliases (an alias bomb?)")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(f"nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> Any:
        node = super().compose_document()
        if node is not None and _expanded_size(node, {}) > MAX_NODES:
            raise _Refused(f"more than {MAX_NODES} values once its aliases are expanded (an alias bomb?)")
        return node


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Nodes under ``node`` counting each alias's target again (memoised: linear in the composed size)."""
    key = id(node)
    if key not in memo:
        memo[key] = 1  # a recursive alias counts once, not forever
        if isinstance(node, yaml.SequenceNode):
            memo[key] = 1 + sum(_expanded_size(n, memo) for n in node.value)
        elif isinstance(node, yaml.MappingNode):
            memo[key] = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    return memo[key]


class _Refused(Exception):
    pass


def load_yaml(text: str, source: str) -> Any:
    """Parse ``text`` (named ``source`` in errors) with safe types and bounded aliases and depth.

    Raises:
        ConfigError: invalid YAML, an alias bomb, too deep a nesting, or a duplicate-free mapping key
            that YAML cannot hash.
    """
    loader = None
    try:
        loader = _BoundedLoader(text)  # the reader checks the characters here already
        return loader.get_single_data()
    except _Refused as e:
        raise ConfigError(f"{source}: refused: {e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: not valid YAML ({_one_line(e)})") from None
    except (TypeError, ValueError, RecursionError) as e:  # unhashable keys, bad timestamps …
        raise ConfigError(f"{source}: not valid YAML ({type(e).__name__}: {_one_line(e)})") from None
    finally:
        if loader is not None:
            loader.dispose()


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())
