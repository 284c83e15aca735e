"""Validates a FHIR R4 Bundle of Observations read from standard input with an independent implementation
(PyPI fhir.resources 6.1.0, FHIR 4.0.1). Exit 0 and "valid: N observations" when it parses; 1 with the errors when not.
Used by the end-to-end vitals test (tests/e2e.rs); scripts/test installs the package in target/fhir-venv."""

import json
import sys

import fhir.resources
from fhir.resources.bundle import Bundle
from fhir.resources.observation import Observation


def main() -> int:
    if fhir.resources.__fhir_version__ != "4.0.1":
        print(f"fhir.resources {fhir.resources.__version__} implements FHIR {fhir.resources.__fhir_version__}, not R4 (4.0.1)")
        return 1
    try:
        bundle = Bundle.parse_obj(json.load(sys.stdin))
        observations = [Observation.parse_obj(e.resource.dict()) for e in bundle.entry or []]
    except Exception as e:  # pydantic's ValidationError names every field that is wrong
        print(f"invalid: {e}")
        return 1
    if any(e.resource.resource_type != "Observation" for e in bundle.entry or []):
        print("invalid: an entry is not an Observation")
        return 1
    print(f"valid: {len(observations)} observations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
