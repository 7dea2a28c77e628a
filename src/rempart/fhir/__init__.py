"""The FHIR R4 facade: FHIR resources (validated with ``fhir.resources.R4B``) to and from the
capabilities' services. The profile, element by element, is in docs/fhir.md."""
