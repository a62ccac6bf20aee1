"""DICOMweb STOW-RS (PS3.18 10.5): instances over HTTP into the same pipeline as C-STORE.

- ``auth``: who may store (HTTP Basic users file, bearer token) and as which pacs_name;
- ``meta``: the Part-10 header of each part, read as it streams;
- ``ingest``: one request as the unit an association is for C-STORE;
- ``response``: the Store Instances Response (application/dicom+json);
- ``server``: the aiohttp listener and the request handler;
- ``telemetry``: the request's span and counts.
"""

# Submodules, not re-exported names: the listener (server) loads aiohttp, which the
# receiver imports only when STOW-RS is enabled.
__all__ = ["auth", "conformance", "ingest", "meta", "multipart", "response", "server", "telemetry"]
