"""Validates EPCIS 2.0 JSON-LD documents against the EPCIS JSON schema (GS1's
EPCIS-JSON-Schema.json from github.com/gs1/EPCIS, not kept in this repository).

Usage: python3 tests/tools/epcis_schema_check.py EPCIS-JSON-Schema.json DOC.jsonld...
Needs the jsonschema package. Exit 1 if any document is invalid."""
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
bad = 0
for path in sys.argv[2:]:
    doc = json.load(open(path))
    v = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
    errs = sorted(v.iter_errors(doc), key=lambda e: list(e.path))
    if errs:
        bad += 1
        print(path, "INVALID", len(errs))
        for e in errs[:5]:
            print("  ", list(e.path)[:6], e.message[:200])
    else:
        print(path, "valid")
sys.exit(1 if bad else 0)
