#!/usr/bin/env bash
# Mutation testing of the core with mutmut (configured in pyproject.toml, [tool.mutmut]): every
# small change to the definitions (an operator, a constant, a comparison) that the tests do not
# notice is a mutant that survived. Not part of CI: it runs the core's tests once per mutant.
#
#   bash scripts/mutation_testing.sh        # then: .venv/bin/mutmut results; mutmut show NAME
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
"$python" -m pip install -q "mutmut>=3.3"
"$python" -m mutmut run --max-children "${JOBS:-2}"
"$python" - <<'PY'
import json, pathlib, collections
counts = collections.Counter()
for meta in pathlib.Path("mutants").rglob("*.meta"):
    for code in json.loads(meta.read_text()).get("exit_code_by_key", {}).values():
        counts["killed" if code not in (0, None) else "survived" if code == 0 else "not run"] += 1
total = counts["killed"] + counts["survived"]
print(f"{counts['killed']} of {total} mutants killed ({100 * counts['killed'] / max(total, 1):.1f}%); "
      f"{counts['not run']} not run")
PY
