#!/usr/bin/env python3
"""Generate kubelite/objects/proto_schema.json from the upstream .proto files and Go types.

kubectl sends typed writes as `application/vnd.kubernetes.protobuf`. To decode them without a
protobuf dependency, `kubelite.objects.protobuf` walks a table of messages written by this script:

    {"messages": {"k8s.io.api.apps.v1.Deployment": {"1": [json, type, card, pointer, omitempty], ...}},
     "kinds": {"apps/v1": ["k8s.io.api.apps.v1", ["Deployment", ...]], "*": [meta.v1, [...]]},
     "lists": ["k8s.io.apimachinery.pkg.apis.meta.v1.Verbs", ...]}

- field numbers and proto types come from `generated.proto` (proto2, no nesting, no enums/oneofs);
- `json` (the JSON name; "" = an embedded struct Go inlines), `pointer` and `omitempty` come from
  the Go struct tags in the package's `.go` files (matched by field number), as `encoding/json`
  decides the JSON shape from those, not from the .proto;
- `card` is 0 (optional), 1 (repeated) or 2 (map<string, type>);
- `kinds` are the types each group version registers (`register.go`, `AddKnownTypes`); "*" holds the
  meta/v1 kinds `metav1.AddToGroupVersion` registers in every group version (DeleteOptions, ...);
- `lists` are messages whose Go type is a slice (`type Verbs []string`): JSON is the bare array.

Usage: scripts/gen_proto_schema.py [--api DIR] [--apimachinery DIR] [--out FILE]
(DIRs are bare git repos of k8s.io/api and k8s.io/apimachinery; files are read at HEAD.)
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

API_REPO = "/work/.mirror/kubernetes+api/repo"
MACHINERY_REPO = "/work/.mirror/kubernetes+apimachinery/repo"
OUT = Path(__file__).resolve().parent.parent / "kubelite" / "objects" / "proto_schema.json"

# apimachinery packages the API types reference (directory -> proto package is derived from the file).
MACHINERY_DIRS = ("pkg/apis/meta/v1", "pkg/api/resource", "pkg/util/intstr", "pkg/runtime",
                  "pkg/runtime/schema")
# k8s.io/api group versions to include: every GA version (v1, v2, ...); alpha/beta ones are left out
# to keep the table small. The brief's minimum (core, apps, batch, autoscaling/v1, policy,
# coordination, discovery, events, networking, rbac) is a subset.
GA_VERSION = re.compile(r"^v\d+$")
SCALARS = {"string", "bytes", "bool", "int32", "int64"}

MESSAGE_RE = re.compile(r"^message (\w+) \{\n(.*?)^\}", re.M | re.S)
FIELD_RE = re.compile(r"^\s*(optional|repeated|required)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)", re.M)
MAP_RE = re.compile(r"^\s*map<\s*string\s*,\s*([\w.]+)\s*>\s+(\w+)\s*=\s*(\d+)", re.M)
STRUCT_RE = re.compile(r"^type (\w+) struct \{\n(.*?)^\}", re.M | re.S)
SLICE_TYPE_RE = re.compile(r"^type (\w+) \[\]\w+\s*$", re.M)
GO_FIELD_RE = re.compile(r"^\s+(?:(\w+)\s+)?(\*?[\w.\[\]*]+)\s+`([^`]*)`", re.M)
KNOWN_TYPES_RE = re.compile(r"AddKnownTypes\(\s*\w+,(.*?)\n\s*\)", re.S)


@dataclass
class GoField:
    json: str | None  # None: json:"-" (never on the wire as JSON)
    pointer: bool
    omitempty: bool


class Repo:
    def __init__(self, path: str) -> None:
        self.path = path
        out = subprocess.run(["git", "-C", path, "ls-tree", "-r", "--name-only", "HEAD"],
                             check=True, capture_output=True, text=True).stdout
        self.files = out.split()

    def read(self, name: str) -> str:
        return subprocess.run(["git", "-C", self.path, "show", f"HEAD:{name}"],
                              check=True, capture_output=True, text=True).stdout

    def go_files(self, directory: str) -> list[str]:
        return [f for f in self.files if f.rpartition("/")[0] == directory and f.endswith(".go")
                and not f.endswith("_test.go") and not f.startswith(f"{directory}/zz_generated")
                and not f.endswith("generated.pb.go")]


def strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", "", text)


def parse_proto(text: str) -> tuple[str, dict[str, dict[int, tuple[str, str, int]]]]:
    """(package, {message: {number: (proto name, type, card)}}); types are fully qualified."""
    text = strip_comments(text)
    package = re.search(r"^package ([\w.]+);", text, re.M)
    assert package, "no package"
    pkg = package.group(1)
    messages: dict[str, dict[int, tuple[str, str, int]]] = {}
    for name, body in MESSAGE_RE.findall(text):
        fields: dict[int, tuple[str, str, int]] = {}
        for label, typ, fname, num in FIELD_RE.findall(body):
            fields[int(num)] = (fname, qualify(typ, pkg), 1 if label == "repeated" else 0)
        for typ, fname, num in MAP_RE.findall(body):
            fields[int(num)] = (fname, qualify(typ, pkg), 2)
        messages[f"{pkg}.{name}"] = fields
    return pkg, messages


def qualify(typ: str, pkg: str) -> str:
    if typ in SCALARS:
        return typ
    return typ[1:] if typ.startswith(".") else f"{pkg}.{typ}"


def parse_go(sources: list[str]) -> tuple[dict[str, dict[int, GoField]], set[str]]:
    """Struct fields by protobuf field number, and the names of slice types."""
    structs: dict[str, dict[int, GoField]] = {}
    slices: set[str] = set()
    for src in sources:
        slices.update(SLICE_TYPE_RE.findall(src))
        for name, body in STRUCT_RE.findall(strip_go_comments(src)):
            structs[name] = {}
            for fname, gotype, tag in GO_FIELD_RE.findall(body):
                pb = re.search(r'protobuf:"\w+,(\d+)', tag)
                if pb:
                    structs[name][int(pb.group(1))] = go_field(fname, gotype, tag)
    return structs, slices


def strip_go_comments(src: str) -> str:
    return re.sub(r"^\s*//[^\n]*\n", "", src, flags=re.M)


def go_field(fname: str, gotype: str, tag: str) -> GoField:
    js = re.search(r'json:"([^"]*)"', tag)
    if js is None:  # no json tag: encoding/json uses the Go name (embedded types are inlined)
        return GoField(fname, gotype.startswith("*"), False)
    name, *opts = js.group(1).split(",")
    if name == "-" and not opts:
        return GoField(None, False, False)
    if not fname and not name:  # embedded struct without a JSON name: inlined
        name = ""
    return GoField(name, gotype.startswith("*"),
                   "omitempty" in opts or "omitzero" in opts)


def known_kinds(register_go: str) -> list[str]:
    kinds: list[str] = []
    for block in KNOWN_TYPES_RE.findall(register_go):
        kinds += re.findall(r"&(\w+)\{\}", block)
    return sorted(set(kinds))


def group_name(register_go: str) -> str:
    m = re.search(r'GroupName\s*=\s*"([^"]*)"', register_go)
    assert m, "no GroupName"
    return m.group(1)


def collect(api: Repo, machinery: Repo) -> dict[str, object]:
    messages: dict[str, dict[str, list[object]]] = {}
    kinds: dict[str, list[object]] = {}
    lists: set[str] = set()
    wanted: set[str] = set()
    dirs = [(machinery, d) for d in MACHINERY_DIRS]
    dirs += [(api, f.rpartition("/")[0]) for f in api.files if f.endswith("/generated.proto")]
    for repo, directory in dirs:
        pkg, protos = parse_proto(repo.read(f"{directory}/generated.proto"))
        structs, slices = parse_go([repo.read(f) for f in repo.go_files(directory)])
        for full, fields in protos.items():
            short = full.rpartition(".")[2]
            if short in slices:
                lists.add(full)
            messages[full] = table(fields, structs.get(short, {}))
        if directory == "pkg/apis/meta/v1":
            register = repo.read(f"{directory}/register.go")
            metakinds = sorted({k for k in re.findall(r"&(\w+)\{\}", register) if f"{pkg}.{k}" in protos})
            kinds["*"] = [pkg, metakinds]
        if repo is machinery or GA_VERSION.match(directory.rpartition("/")[2]):
            wanted.update(protos)
        if repo is api and GA_VERSION.match(directory.rpartition("/")[2]):
            register = repo.read(f"{directory}/register.go")
            group, version = group_name(register), directory.rpartition("/")[2]
            gv = f"{group}/{version}" if group else version
            kinds[gv] = [pkg, [k for k in known_kinds(register) if f"{pkg}.{k}" in messages]]
    keep = closure(messages, wanted)
    return {"messages": {k: messages[k] for k in sorted(keep)}, "kinds": dict(sorted(kinds.items())),
            "lists": sorted(lists & keep)}


def closure(messages: dict[str, dict[str, list[object]]], roots: set[str]) -> set[str]:
    """`roots` plus every message they reference (GA types may embed alpha ones, e.g. scheduling)."""
    keep: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        if name not in messages:
            raise SystemExit(f"unresolved message type: {name}")
        keep.add(name)
        todo += [str(f[1]) for f in messages[name].values() if f[1] not in SCALARS]
    return keep


def table(fields: dict[int, tuple[str, str, int]], go: dict[int, GoField]) -> dict[str, list[object]]:
    out: dict[str, list[object]] = {}
    for num, (pname, typ, card) in sorted(fields.items()):
        gf = go.get(num, GoField(pname, False, True))
        if gf.json is None:
            continue
        out[str(num)] = [gf.json, typ, card, int(gf.pointer), int(gf.omitempty)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--api", default=API_REPO)
    ap.add_argument("--apimachinery", default=MACHINERY_REPO)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    schema = collect(Repo(args.api), Repo(args.apimachinery))
    args.out.write_text(json.dumps(schema, separators=(",", ":")) + "\n")
    n = len(schema["messages"])  # type: ignore[arg-type]
    print(f"wrote {args.out} ({n} messages, {args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
