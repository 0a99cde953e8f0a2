"""YAML files a user writes (experiments, studies, dataset files), read with bounds.

YAML's aliases let a few hundred bytes stand for billions of values (the "billion laughs"): PyYAML builds them as
shared objects, and whatever later walks the data (a result's identity dumps the whole config) expands them. So a
file is read only when it is UTF-8 text of at most MAX_BYTES, holds one document, nests at most MAX_DEPTH levels,
and expands to at most MAX_VALUES values with every alias counted as often as it is used (a recursive alias is
refused); otherwise one line names the file, the line and the fix. The node tree comes back too, for the line
numbers of later errors (`line_of`).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from .errors import BiotuneError, first_line
from .io import read_text

MAX_BYTES = 1 << 20  # 1 MiB: the largest shipped study file is 3 KB
MAX_DEPTH = 40
MAX_VALUES = 100_000


def line_of(node, path: list) -> int | None:
    """The YAML line of the key at `path` (1-based), or of the deepest part of it that exists."""
    line = None
    for part in path:
        if not isinstance(node, yaml.MappingNode):
            break
        for key, value in node.value:
            if key.value == str(part):
                line, node = key.start_mark.line + 1, value
                break
        else:
            break
    return line


class _Bounds:
    """Walks a composed node graph (an alias is the same node object again) counting values as they expand."""

    def __init__(self, source: str):
        self.source, self.sizes, self.open = source, {}, set()

    def _fail(self, node, problem: str):
        raise BiotuneError(f"{self.source}:{node.start_mark.line + 1}: {problem}")

    def size(self, node, depth: int = 0) -> int:
        if id(node) in self.sizes:
            return self.sizes[id(node)]
        if depth > MAX_DEPTH:
            self._fail(node, f"nested more than {MAX_DEPTH} levels deep: flatten the file")
        if id(node) in self.open:
            self._fail(node, "an alias refers to a value that contains it (a recursive value): write it out")
        self.open.add(id(node))
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            children = []
        total = 1
        for child in children:
            total += self.size(child, depth + 1)
            if total > MAX_VALUES:
                self._fail(
                    child,
                    f"more than {MAX_VALUES:,} values once its aliases (*name) are expanded (a YAML "
                    "bomb?): write the values out, or use fewer aliases",
                )
        self.open.discard(id(node))
        self.sizes[id(node)] = total
        return total


def load_text(text: str, source: str):
    """(data, node tree) of YAML text, checked against the bounds above; a one-line BiotuneError naming `source`
    and the line otherwise. Empty text gives (None, None)."""
    loader = None
    try:
        loader = yaml.SafeLoader(text)  # reading starts here: a character YAML forbids fails already
        node = loader.get_single_node()
        if node is None:
            return None, None
        _Bounds(source).size(node)
        return loader.construct_document(node), node
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) + 1
        raise BiotuneError(
            f"{source}:{line}: not valid YAML (character U+{e.character:04X}, which YAML does not "
            "allow: is it a text file?)"
        ) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise BiotuneError(f"{where}: not valid YAML ({first_line(getattr(e, 'problem', None) or e)})") from None
    except RecursionError:  # nesting deep enough to exhaust the parser's own recursion before our bound
        raise BiotuneError(f"{source}: nested too deeply to read (over {MAX_DEPTH} levels): flatten the file") from None
    finally:
        if loader is not None:
            loader.dispose()


def read_yaml_file(path: Path, kind: str, fields: str) -> tuple[dict, yaml.Node]:
    """A YAML file of fields (experiment, study, dataset file) and its node tree (for line numbers), or one line
    saying what is wrong: no such file, too large, not UTF-8, not YAML (with the line), over the bounds, not a
    mapping."""
    path = Path(path)
    if not path.is_file():
        raise BiotuneError(f"{kind} file {path} does not exist")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise BiotuneError(f"{path}: {size:,} bytes; a {kind} file is at most {MAX_BYTES:,} (is it the right file?)")
    data, root = load_text(read_text(path), str(path))
    if not isinstance(data, dict):
        raise BiotuneError(f"{path}: expected a mapping of fields ({fields}, ...)")
    return data, root
