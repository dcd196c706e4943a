"""Writes charts/triskel/values.schema.json from `triskel.common.chart_values`.

python scripts/gen_chart_schema.py          # regenerate
python scripts/gen_chart_schema.py --check  # exit 1 if the committed file is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from triskel.common.chart_values import values_json_schema_text

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "charts" / "triskel" / "values.schema.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args()
    text = values_json_schema_text()
    if args.check:
        current = SCHEMA_PATH.read_text() if SCHEMA_PATH.exists() else ""
        if current != text:
            print(
                f"{SCHEMA_PATH} is stale: run python scripts/gen_chart_schema.py", file=sys.stderr
            )
            return 1
        return 0
    SCHEMA_PATH.write_text(text)
    print(f"wrote {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
