"""Regenerates the Python code for `proto/triskel/v1/*.proto` into `src/triskel/v1/`.

python scripts/gen_proto.py          # regenerate
python scripts/gen_proto.py --check  # exit 1 if the committed code is stale
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
OUT_PACKAGE = ROOT / "src" / "triskel" / "v1"
HEADER = '"""Generated from proto/triskel/v1 by scripts/gen_proto.py. DO NOT EDIT."""\n'


def generate(out_root: Path) -> Path:
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    include = str(Path(protoc.__file__).parent / "_proto")
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    package = out_root / "triskel" / "v1"
    (package / "__init__.py").write_text(HEADER)
    return package


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed code is stale")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        names = sorted(p.name for p in fresh.iterdir())
        if args.check:
            committed = sorted(p.name for p in OUT_PACKAGE.glob("*") if p.is_file())
            _, mismatch, errors = filecmp.cmpfiles(fresh, OUT_PACKAGE, names, shallow=False)
            if committed != names or mismatch or errors:
                print(f"generated code in {OUT_PACKAGE} is stale: run python scripts/gen_proto.py")
                return 1
            print("generated code is current")
            return 0
        OUT_PACKAGE.mkdir(parents=True, exist_ok=True)
        for stale in OUT_PACKAGE.glob("*"):
            if stale.is_file():
                stale.unlink()
        for name in names:
            (OUT_PACKAGE / name).write_bytes((fresh / name).read_bytes())
        print(f"wrote {len(names)} files to {OUT_PACKAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
