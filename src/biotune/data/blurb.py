"""The 13 BLURB datasets (Gu et al. 2021), as the BLURB data-generation pipeline writes them: dataset files in
`builtin/` (one YAML each, read by biotune.data.dataset_file like a user's own), registered here in the
benchmark's order. Adding a built-in dataset: one more file there and its name below. Facts and counts:
../shared/docs/blurb.md and the data folder's SOURCES.md.
"""

from .dataset_file import builtin_dir, parse_dataset_file, to_spec
from .spec import register

ORDER = (
    "bc5-chem",
    "bc5-disease",
    "ncbi-disease",
    "bc2gm",
    "jnlpba",
    "ebm-pico",
    "chemprot",
    "ddi",
    "gad",
    "biosses",
    "hoc",
    "pubmedqa",
    "bioasq",
)


def _register_builtin() -> None:
    files = {p.stem: p for p in builtin_dir().glob("*.yaml")}
    if set(files) != set(ORDER):
        raise RuntimeError(f"built-in dataset files {sorted(files)} do not match ORDER {sorted(ORDER)}")
    for name in ORDER:
        df, _ = parse_dataset_file(files[name])
        register(to_spec(df, files[name], builtin=True))


_register_builtin()
